"""Small helpers shared by the bench scripts: percentiles, table printing, one timed chat stream."""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=False)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=False)))


async def timed_chat_stream(client: Any, path: str, body: dict) -> tuple[float, float, int]:
    """(TTFT s, TPOT s, completion tokens) of one streamed chat completion; `client` is an httpx.AsyncClient
    and `body` a streaming request that asks for usage (`stream_options.include_usage`)."""
    started = time.perf_counter()
    first, completion = None, 0
    async with client.stream("POST", path, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter()
            if chunk.get("usage"):
                completion = chunk["usage"]["completion_tokens"]
    end = time.perf_counter()
    first = first or end
    return first - started, (end - first) / max(completion - 1, 1), completion


def pipeline_closed_loop(pipe: Any, add_request: Any, concurrency: int,
                         total: int) -> tuple[list[tuple[float, float, int]], float]:
    """Run `total` requests on a ContinuousBatchingPipeline, `concurrency` at a time (closed loop: each finished
    request is replaced by the next). `add_request(i)` submits request i and returns (handle, start time).
    Returns ((TTFT s, TPOT s, tokens) per request, wall seconds)."""
    import openvino_genai as ov_genai

    live: dict[int, tuple] = {}
    samples: list[tuple[float, float, int]] = []
    next_i = 0
    start = time.perf_counter()
    while next_i < min(concurrency, total):
        live[next_i] = (*add_request(next_i), [None], [0])
        next_i += 1
    while live:
        pipe.step()
        now = time.perf_counter()
        for i, (handle, t0, first, count) in list(live.items()):
            if handle.can_read():
                for out in handle.read().values():
                    if out.generated_ids and first[0] is None:
                        first[0] = now
                    count[0] += len(out.generated_ids)
            if handle.get_status() != ov_genai.GenerationStatus.RUNNING:
                del live[i]
                samples.append((first[0] - t0, (now - first[0]) / max(count[0] - 1, 1), count[0]))
                if next_i < total:
                    live[next_i] = (*add_request(next_i), [None], [0])
                    next_i += 1
    return samples, time.perf_counter() - start


class LeanHTTPClient:
    """A minimal HTTP/1.1 client for timing streamed chat completions against one server.

    On two shared cores a Python load generator competes with the server it measures: httpx spends
    a few milliseconds of CPU per streamed request, so a "burst" of 16 requests leaves the client
    spread over ~50 ms and the client's own parsing steals cores from the server's steps. This
    client writes each request as prebuilt bytes on a kept-alive connection and reads the chunked
    SSE body with asyncio streams, decoding JSON only until the first content delta and for the
    final usage chunk. `bench/llm_throughput.py --client httpx` keeps the old client for comparison.
    """

    def __init__(self, base_url: str):
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self._idle: list[tuple[Any, Any]] = []

    async def __aenter__(self) -> LeanHTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _reader, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def chat_stream(self, path: str, body: dict) -> tuple[float, float, int]:
        """(TTFT s, TPOT s, completion tokens) of one streamed chat completion (as `timed_chat_stream`)."""
        import asyncio

        payload = json.dumps(body).encode()
        request = (f"POST {self.prefix}/{path.lstrip('/')} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload
        started = time.perf_counter()
        reader, writer = self._idle.pop() if self._idle else await asyncio.open_connection(self.host, self.port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200 or b"chunked" not in head.lower():
            writer.close()
            raise RuntimeError(f"HTTP {status}: {head[:200]!r}")
        first, completion, buffer = None, 0, b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            buffer += data[:-2]
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                line = event.strip()
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                if first is None:
                    choices = json.loads(line[6:]).get("choices") or []
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        first = time.perf_counter()
                if b'"usage"' in line:
                    usage = json.loads(line[6:]).get("usage")
                    if usage:
                        completion = usage["completion_tokens"]
        end = time.perf_counter()
        self._idle.append((reader, writer))
        first = first or end
        return first - started, (end - first) / max(completion - 1, 1), completion
