"""Soak on 127.0.0.1: 64 clients mixing every kind of request against one server, with config reloads.

The server serves the default LLM, the default embeddings model (embeddings and rerank) and the
`dense` tensor model from a config file. Clients pick at random: chat streams (a third cancelled
after a few events), unary chat, completions, embeddings, rerank, KServe infers and malformed or
hostile requests (bad JSON, unknown fields, huge integers, deep JSON, out-of-vocabulary token ids).
Every --reload-seconds the config file gains or loses a second tensor model and is reloaded.

A request is *lost* when it got neither a full answer (200 JSON; a stream ending with [DONE], or
one we cancelled) nor a clean error (4xx with a JSON error body). Reports requests by kind and
status, lost requests, p50/p99 per kind, RSS at start / after warm-up / end, and open file
descriptors and threads (after warm-up, a warm-up that also loads and unloads a model once, so
that OpenVINO's and the loader's thread pools exist, and at the end, once idle). Exits 1 unless:
0 lost, 0 5xx, RSS growth after warm-up < --max-rss-growth (5 %), fds and threads back to their
warm-up values.

    python bench/soak.py                 # 2 minutes
    python bench/soak.py --long          # 10 minutes (the issue's soak)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx  # noqa: E402
from common import pct, print_table  # noqa: E402

from tests import fuzz_support  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

LLM, EMBED, TENSOR = fuzz_support.LLM_NAME, fuzz_support.EMBED_NAME, fuzz_support.TENSOR_NAME
EXTRA_TENSOR = "dense_extra"  # comes and goes with each config reload
LOST = "LOST"


class Outcome:
    def __init__(self, kind: str, status: int | str, lost: bool = False):
        self.kind, self.status, self.lost = kind, status, lost


def _clean_error(r: httpx.Response) -> bool:
    try:
        return 400 <= r.status_code < 500 and "error" in r.json()
    except ValueError:
        return False


def _unary(kind: str, r: httpx.Response) -> Outcome:
    if r.status_code == 200:
        try:
            r.json()
            return Outcome(kind, 200)
        except ValueError:
            return Outcome(kind, 200, lost=True)
    return Outcome(kind, r.status_code, lost=not _clean_error(r))


async def chat_stream(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    body = {"model": LLM, "messages": [{"role": "user", "content": f"Tell me about {rng.random()}"}],
            "max_tokens": rng.randint(4, 24), "stream": True}
    cancel_after = rng.choice([None, None, 2, 4])
    async with client.stream("POST", "/v3/chat/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return _unary("chat_stream", response)
        seen = 0
        async for line in response.aiter_lines():
            if line == "data: [DONE]":
                return Outcome("chat_stream", 200)
            if line.startswith("data: "):
                seen += 1
                if cancel_after is not None and seen >= cancel_after:
                    return Outcome("chat_stream_cancelled", 200)  # closing the stream cancels the request
        return Outcome("chat_stream", 200, lost=True)  # ended without [DONE]


async def chat_unary(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    return _unary("chat_unary", await client.post("/v3/chat/completions", json={
        "model": LLM, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": rng.randint(1, 16)}))


async def completion(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    prompt = rng.choice(["Once upon a time", [504, 3429, 314]])
    return _unary("completion", await client.post("/v3/completions", json={
        "model": LLM, "prompt": prompt, "max_tokens": rng.randint(1, 8)}))


async def embeddings(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    inputs = [f"sentence {rng.random()}" for _ in range(rng.randint(1, 8))]
    return _unary("embeddings", await client.post("/v3/embeddings", json={"model": EMBED, "input": inputs}))


async def rerank(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    documents = [f"document {rng.random()}" for _ in range(rng.randint(2, 8))]
    return _unary("rerank", await client.post("/v3/rerank", json={"model": EMBED, "query": "a query",
                                                                   "documents": documents}))


async def kserve_infer(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    rows = rng.randint(1, 16)
    data = [rng.uniform(-1, 1) for _ in range(rows * 4)]
    return _unary("kserve_infer", await client.post(f"/v2/models/{TENSOR}/infer", json={
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 4], "data": data}]}))


MALFORMED: list[tuple[str, bytes, dict[str, Any]]] = [
    ("/v3/chat/completions", b"{not json", {}),
    ("/v3/chat/completions", json.dumps({"model": LLM, "messages": [], "bogus": 1}).encode(), {}),
    ("/v3/chat/completions", json.dumps({"model": LLM, "messages": [{"role": "user", "content": "x"}],
                                         "top_k": 2**64}).encode(), {}),
    ("/v3/completions", json.dumps({"model": LLM, "prompt": [2**64], "max_tokens": 2}).encode(), {}),
    ("/v3/embeddings", json.dumps({"model": EMBED, "input": "x", "dimensions": 2**40}).encode(), {}),
    ("/v3/rerank", json.dumps({"model": EMBED, "query": "q", "documents": ["a"], "top_n": -1}).encode(), {}),
    (f"/v2/models/{TENSOR}/infer", b"[" * 5000 + b"]" * 5000, {"content-type": "application/octet-stream"}),
    (f"/v2/models/{TENSOR}/infer", json.dumps({"inputs": [{"name": "x", "datatype": "FP32",
                                                            "shape": [2**32, 2**32], "data": [1]}]}).encode(), {}),
    (f"/v2/models/{TENSOR}/infer", b"{}", {"Inference-Header-Content-Length": b"\xb2"}),
]


async def malformed(client: httpx.AsyncClient, rng: random.Random) -> Outcome:
    path, body, headers = rng.choice(MALFORMED)
    r = await client.post(path, content=body, headers={"content-type": "application/json", **headers})
    return Outcome("malformed", r.status_code, lost=not _clean_error(r))


KINDS: list[Callable[[httpx.AsyncClient, random.Random], Awaitable[Outcome]]] = [
    chat_stream, chat_stream, chat_unary, completion, embeddings, rerank, kserve_infer, kserve_infer, malformed]


def proc_stats(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "threads": int(status["Threads"]),
            "fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}


LLM_OPTIONS: dict[str, Any] = {}  # --llm-option KEY=JSON
SAMPLE_SECONDS = 30.0  # --sample-seconds


async def kv_cache_mb(client: httpx.AsyncClient) -> float:
    """The LLM's KV cache as allocated by its pipeline (genai_kv_cache_bytes), in MB."""
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("genai_kv_cache_bytes{") and f'name="{LLM}"' in line:
            return float(line.rsplit(" ", 1)[1]) / 2**20
    return 0.0


def write_config(directory: Path, with_extra: bool) -> Path:
    path = fuzz_support.write_config(directory)
    config = json.loads(path.read_text())
    for entry in config["model_config_list"]:
        entry["config"].pop("max_tokens_limit", None)
        if entry["config"]["name"] == LLM:
            entry["config"].update(LLM_OPTIONS)
    if with_extra:
        dense = next(e["config"]["base_path"] for e in config["model_config_list"] if e["config"]["name"] == TENSOR)
        config["model_config_list"].append({"config": {"name": EXTRA_TENSOR, "base_path": dense}})
    path.write_text(json.dumps(config))
    return path


async def soak(url: str, clients: int, seconds: float, directory: Path | None, reload_seconds: float,
               outcomes: Counter, latency: dict[str, list[float]], reloads: list[int],
               pid: int = 0, rss_series: list[tuple[int, int]] | None = None) -> None:
    deadline = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                kind = rng.choice(KINDS)
                started = time.perf_counter()
                try:
                    outcome = await kind(client, rng)
                except httpx.HTTPError as exc:
                    outcome = Outcome(kind.__name__, type(exc).__name__, lost=True)
                latency[outcome.kind].append(time.perf_counter() - started)
                outcomes[(outcome.kind, outcome.status, outcome.lost)] += 1

    async def reloader() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            while directory is not None and time.monotonic() + reload_seconds < deadline:
                await asyncio.sleep(reload_seconds)
                write_config(directory, with_extra=len(reloads) % 2 == 0)
                reloads.append((await client.post("/v1/config/reload")).status_code)

    async def sampler() -> None:  # RSS and KV cache every --sample-seconds: a plateau is warm-up, a climb a leak
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while rss_series is not None and time.monotonic() < deadline:
                rss_series.append((round(proc_stats(pid)["rss_mb"]), round(await kv_cache_mb(client))))
                await asyncio.sleep(min(SAMPLE_SECONDS, max(deadline - time.monotonic(), 0.0)))

    await asyncio.gather(reloader(), sampler(), *(worker(i) for i in range(clients)))
    if directory is not None and len(reloads) % 2:  # end as it started: without the extra model
        write_config(directory, with_extra=False)
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            reloads.append((await client.post("/v1/config/reload")).status_code)


def settle(pid: int, target: dict[str, float], seconds: float = 30) -> dict[str, float]:
    """Stats once fds and threads are back to `target` (or after `seconds`): idle pools wind down."""
    deadline = time.monotonic() + seconds
    stats = proc_stats(pid)
    while time.monotonic() < deadline and (stats["fds"] > target["fds"] or stats["threads"] > target["threads"]):
        time.sleep(0.5)
        stats = proc_stats(pid)
    return stats


def trimmed_rss(pid: int) -> float:
    """RSS once glibc gave back what it can (SIGUSR2 -> malloc_trim(0), bench/heap/sitecustomize.py)."""
    import signal

    os.kill(pid, signal.SIGUSR2)
    time.sleep(2)  # the handler runs when the event loop next wakes (at most its select timeout)
    return proc_stats(pid)["rss_mb"]


def heap_snapshot(pid: int, directory: Path, number: int) -> Any:
    """Ask a server started with --tracemalloc for its Python heap (SIGUSR1, bench/heap/sitecustomize.py)."""
    import signal
    import tracemalloc

    os.kill(pid, signal.SIGUSR1)
    path = directory / f"{number}.snapshot"
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no heap snapshot {path}")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(path))


def print_heap_growth(warmed: Any, end: Any, top: int = 15) -> None:
    diff = end.compare_to(warmed, "lineno")
    total = sum(d.size_diff for d in diff)
    print(f"\nPython heap (tracemalloc): {sum(s.size for s in warmed.statistics('filename')) / 2**20:.1f} MB "
          f"after warm-up, {total / 2**20:+.2f} MB at the end; largest changes:")
    print_table(["where", "MB", "+MB", "+blocks"],
                [[str(d.traceback[0]), d.size / 2**20, d.size_diff / 2**20, d.count_diff] for d in diff[:top]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--long", action="store_true", help="10 minutes (overrides --seconds)")
    parser.add_argument("--warmup-seconds", type=float, default=60)
    parser.add_argument("--reload-seconds", type=float, default=60, help="0: no config reloads")
    parser.add_argument("--max-rss-growth", type=float, default=0.05, help="fraction of the post-warm-up RSS")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment of the server, e.g. LD_PRELOAD=libjemalloc.so.2 or MALLOC_ARENA_MAX=2")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace the server's Python heap; print its growth after warm-up by source line")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="RSS and KV cache sampling period")
    parser.add_argument("--kinds", default="", help="comma-separated subset of the request kinds (default: all)")
    parser.add_argument("--llm-option", action="append", default=[], metavar="KEY=JSON",
                        help="an LLM config option, e.g. cache_size=1 or enable_prefix_caching=false")
    args = parser.parse_args()
    seconds = 600 if args.long else args.seconds
    global SAMPLE_SECONDS
    SAMPLE_SECONDS = args.sample_seconds
    if args.kinds:
        wanted = set(args.kinds.split(","))
        KINDS[:] = [kind for kind in KINDS if kind.__name__ in wanted]
    for option in args.llm_option:
        key, _, value = option.partition("=")
        LLM_OPTIONS[key] = json.loads(value)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        heap_dir = directory / "heap"
        heap_dir.mkdir()
        env = dict(item.partition("=")[::2] for item in args.server_env)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent / "heap"), os.environ.get("PYTHONPATH", "")])
        if args.tracemalloc:
            env["GENAI_HEAP_DIR"] = str(heap_dir)
        server = ServerProcess("--config_path", str(write_config(directory, with_extra=False)), "--metrics_enable",
                               "--file_system_poll_wait_seconds", "0", log_name="soak", env=env).start()
        try:
            pid = server.proc.pid
            start = proc_stats(pid)
            warm: Counter = Counter()
            asyncio.run(soak(server.url, args.clients, args.warmup_seconds, None, 0, warm, defaultdict(list), []))
            for with_extra in (True, False):  # one load and unload: the loader's thread pool exists from here on
                write_config(directory, with_extra)
                httpx.post(f"{server.url}/v1/config/reload", timeout=300).raise_for_status()
            warmed = settle(pid, {"fds": 0, "threads": 0}, 5)
            heap = [heap_snapshot(pid, heap_dir, 1)] if args.tracemalloc else []
            outcomes: Counter = Counter()
            latency: dict[str, list[float]] = defaultdict(list)
            reloads: list[int] = []
            rss_series: list[tuple[int, int]] = []
            started = time.monotonic()
            asyncio.run(soak(server.url, args.clients, seconds, directory if args.reload_seconds > 0 else None,
                             args.reload_seconds, outcomes, latency, reloads, pid, rss_series))
            elapsed = time.monotonic() - started
            end = settle(pid, warmed)
            if args.tracemalloc:
                heap.append(heap_snapshot(pid, heap_dir, 2))
            trimmed = trimmed_rss(pid)
            running = [line for line in httpx.get(f"{server.url}/metrics").text.splitlines()
                       if line.startswith(("genai_requests_running{", "genai_requests_waiting{"))]
            faults = server.log().count("unhandled error")
        finally:
            server.stop()

    total = sum(outcomes.values())
    lost = sum(n for (_, _, is_lost), n in outcomes.items() if is_lost)
    server_errors = sum(n for (_, status, _), n in outcomes.items() if isinstance(status, int) and status >= 500)
    print(f"\nsoak: {args.clients} clients for {elapsed:.0f} s (after {args.warmup_seconds:.0f} s warm-up, "
          f"{sum(warm.values())} requests) -> {total} requests ({total / elapsed:.1f} req/s); "
          f"config reloads: {reloads}")
    print_table(["kind", "status", "lost", "count"],
                [[k, s, "LOST" if is_lost else "", n] for (k, s, is_lost), n in sorted(outcomes.items(), key=str)])
    print()
    print_table(["kind", "n", "p50 ms", "p99 ms"],
                [[k, len(v), pct(v, 0.5) * 1000, pct(v, 0.99) * 1000] for k, v in sorted(latency.items())])
    growth = (end["rss_mb"] - warmed["rss_mb"]) / warmed["rss_mb"]
    print()
    print_table(["", "start", "after warm-up", "end"],
                [[name, start[name], warmed[name], end[name]] for name in ("rss_mb", "fds", "threads")])
    print(f"\nRSS at the end after malloc_trim(0): {trimmed:.0f} MB "
          f"({(trimmed - warmed['rss_mb']) / warmed['rss_mb'] * 100:+.1f} % after warm-up)")
    print(f"RSS growth after warm-up: {growth * 100:+.1f} % (bound {args.max_rss_growth * 100:.0f} %); "
          f"lost: {lost}; 5xx: {server_errors}; server faults logged: {faults}")
    print(f"(RSS, KV cache) every {SAMPLE_SECONDS:.0f} s (MB):", rss_series)
    print("gauges after the soak:", running)
    if len(heap) == 2:
        print_heap_growth(*heap)
    ok = (not lost and not server_errors and not faults and growth < args.max_rss_growth
          and end["fds"] <= warmed["fds"] and end["threads"] <= warmed["threads"]
          and all(status in (200, 201) for status in reloads))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
