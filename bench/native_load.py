"""Compiled load generators for the bench scripts: `wrk` (HTTP/1.1) and `h2load` (HTTP/2, for gRPC).

A Python client on a 2-core machine spends about as much CPU per request as the server, so it
measures itself. `wrk` and `h2load` (Debian: `apt-get install -y wrk nghttp2-client`) cost a few
microseconds per request. With `cpu`, the generator is pinned to that core (`taskset`), so that the
server (pinned to the other core by `pin_process`) and the generator do not share one.

gRPC over h2load: a unary gRPC call is an HTTP/2 POST of one length-prefixed protobuf message with
`content-type: application/grpc`; h2load replays it. `grpc_frame` builds that body.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LoadResult:
    requests_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_ms: float = float("nan")  # the server's CPU ms per request (when its pid is given)


def available(tool: str) -> bool:
    return shutil.which(tool) is not None


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin_process(pid: int, cpus: list[int]) -> None:
    """Pin every thread of `pid` (the server: event loop, batcher, OpenVINO's pool) to `cpus`."""
    subprocess.run(["taskset", "-a", "-p", "-c", ",".join(map(str, cpus)), str(pid)], check=True,
                   capture_output=True)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of process `pid` (all its threads; None: this process) so far.

    On a shared, loaded machine a process gets whatever share the scheduler gives it, so requests/s
    mostly measures the neighbours; CPU seconds per request measure the work itself."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pinned(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and available("taskset") else []


def _lua_string(text: str) -> str:
    level = "=" * 3
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


_LUA_FOOTER = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT %d %f %f %f %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk(url: str, bodies: list[str] | None = None, connections: int = 8, seconds: float = 5.0,
        cpu: int | None = None, content_type: str = "application/json", extra_headers: dict | None = None,
        server_pid: int | None = None) -> LoadResult:
    """GET `url` (no bodies) or POST the bodies in turn, from `connections` keep-alive connections."""
    lines = []
    if bodies:
        lines.append(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{content_type}"')
        lines.append("local bodies = {" + ",".join(_lua_string(b) for b in bodies) + "}\nlocal i = 0")
        lines.append("request = function()\n  i = i % #bodies + 1\n"
                     "  return wrk.format(nil, nil, nil, bodies[i])\nend")
    for key, value in (extra_headers or {}).items():
        lines.append(f'wrk.headers["{key}"] = "{value}"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + _LUA_FOOTER)
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    try:
        out = subprocess.run([*_pinned(cpu), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                              "-s", script.name, url], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    fields = next(line.split()[1:] for line in out.splitlines() if line.startswith("WRKRESULT"))
    requests, duration, p50, p99, errors = int(fields[0]), float(fields[1]), float(fields[2]), float(fields[3]), \
        int(fields[4])
    result = LoadResult(requests / duration, p50, p99, requests, errors)
    if server_pid:
        result.server_cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / max(1, requests)
    return result


def grpc_frame(message: bytes) -> bytes:
    """gRPC's length-prefixed message: flag 0 (not compressed), 4-byte big-endian length, payload."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load_grpc(host: str, port: int, method_path: str, message: bytes, connections: int = 1,
                streams: int = 1, seconds: float = 5.0, cpu: int | None = None,
                server_pid: int | None = None) -> LoadResult:
    """Unary gRPC calls of `method_path` (e.g. /inference.GRPCInferenceService/ServerLive) with
    `connections` x `streams` calls in flight. Every call is checked for HTTP 200 by h2load; the
    caller checks one call's grpc-status with a real client first."""
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(grpc_frame(message))
        cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
        out = subprocess.run(
            [*_pinned(cpu), "h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{max(1, round(seconds))}",
             "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
             f"http://{host}:{port}{method_path}"], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"finished in [^,]+, ([\d.]+) req/s", out).group(1))
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     out)
    mean = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    # h2load prints min / max / mean per request, not percentiles: p50 is reported as the mean
    mean_ms = float(mean.group(5)) * scale[mean.group(6)] if mean else float("nan")
    max_ms = float(mean.group(3)) * scale[mean.group(4)] if mean else float("nan")
    result = LoadResult(rps, mean_ms, max_ms, int(done.group(3)), int(done.group(5)) + int(done.group(6)))
    if server_pid:
        result.server_cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / max(1, result.requests)
    return result
