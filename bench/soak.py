"""Bounded soak on 127.0.0.1: many concurrent clients mixing chat streams (some cancelled mid-way),
unary chat, embeddings (when the server has an embeddings model) and malformed requests.

Reports requests served, results by status, p50/p99 latency per kind (round 1), and the server's RSS
before, after a first round and after a second one (the second round's growth must stay under
--max-rss-growth-mb). Stops by itself after --seconds.

    .venv/bin/python bench/soak.py [--clients 64] [--seconds 180]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx  # noqa: E402
from common import pct, print_table  # noqa: E402

from servables.sources import DEFAULT_LLM_NAME  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

EMBEDDINGS_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def chat_stream(client: httpx.AsyncClient, rng: random.Random) -> tuple[str, int]:
    body = {"model": DEFAULT_LLM_NAME, "messages": [{"role": "user", "content": f"Tell me about {rng.random()}"}],
            "max_tokens": rng.randint(8, 48), "stream": True}
    cancel_after = rng.choice([None, None, 2, 5])
    async with client.stream("POST", "/v3/chat/completions", json=body) as response:
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen += 1
                if cancel_after is not None and seen >= cancel_after:
                    return "chat_stream_cancelled", response.status_code
        return "chat_stream", response.status_code


async def chat_unary(client: httpx.AsyncClient, rng: random.Random) -> tuple[str, int]:
    r = await client.post("/v3/chat/completions", json={
        "model": DEFAULT_LLM_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": rng.randint(1, 16)})
    return "chat_unary", r.status_code


async def embeddings(client: httpx.AsyncClient, rng: random.Random) -> tuple[str, int]:
    r = await client.post("/v3/embeddings", json={"model": EMBEDDINGS_MODEL, "input": f"sentence {rng.random()}"})
    return "embeddings", r.status_code


async def malformed(client: httpx.AsyncClient, rng: random.Random) -> tuple[str, int]:
    bodies = [b"{not json", b'{"model": "x"}', b'{"model": "%s", "messages": []}' % DEFAULT_LLM_NAME.encode(),
              b'{"model": "%s", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}'
              % DEFAULT_LLM_NAME.encode()]
    r = await client.post("/v3/chat/completions", content=rng.choice(bodies),
                          headers={"Content-Type": "application/json"})
    return "malformed", r.status_code


async def soak(url: str, clients: int, seconds: float, with_embeddings: bool) -> tuple[Counter, dict]:
    kinds = [chat_stream, chat_stream, chat_unary, malformed] + ([embeddings, embeddings] if with_embeddings else [])
    statuses: Counter = Counter()
    latency: dict[str, list[float]] = defaultdict(list)
    deadline = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                kind = rng.choice(kinds)
                started = time.perf_counter()
                try:
                    name, status = await kind(client, rng)
                except httpx.HTTPError as exc:
                    name, status = kind.__name__, type(exc).__name__
                latency[name].append(time.perf_counter() - started)
                statuses[(name, status)] += 1

    await asyncio.gather(*(worker(i) for i in range(clients)))
    return statuses, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--max-rss-growth-mb", type=float, default=200)
    args = parser.parse_args()
    server = ServerProcess("--metrics_enable", log_name="soak").start()
    try:
        models = {m["id"] for m in httpx.get(f"{server.url}/v3/models").json()["data"]}
        asyncio.run(soak(server.url, 4, 5, EMBEDDINGS_MODEL in models))  # warm-up, then measure RSS
        before = rss_mb(server.proc.pid)
        statuses, latency = asyncio.run(soak(server.url, args.clients, args.seconds, EMBEDDINGS_MODEL in models))
        time.sleep(2)
        after = rss_mb(server.proc.pid)
        # a second round: growth that continues here is a leak; growth that stops was warm-up
        # (the dynamic KV cache and OpenVINO's per-shape kernels grow to the peak load and stay)
        again_statuses, _ = asyncio.run(soak(server.url, args.clients, args.seconds, EMBEDDINGS_MODEL in models))
        time.sleep(2)
        final = rss_mb(server.proc.pid)
        statuses.update(again_statuses)
        running = [line for line in httpx.get(f"{server.url}/metrics").text.splitlines()
                   if line.startswith("genai_requests_running{")]
    finally:
        server.stop()
    total = sum(statuses.values())
    print(f"\nsoak: {args.clients} clients for 2 x {args.seconds:.0f} s -> {total} requests "
          f"({total / (2 * args.seconds):.1f} req/s)")
    print_table(["kind", "status", "count"], [[k, s, n] for (k, s), n in sorted(statuses.items(), key=str)])
    print()
    print_table(["kind", "n", "p50 ms", "p99 ms"],
                [[k, len(v), pct(v, 0.5) * 1000, pct(v, 0.99) * 1000] for k, v in sorted(latency.items())])
    print(f"\nserver RSS: {before:.0f} MB before, {after:.0f} MB after round 1 ({after - before:+.0f} MB), "
          f"{final:.0f} MB after round 2 ({final - after:+.0f} MB; bound {args.max_rss_growth_mb:.0f} MB)")
    print("running after soak:", running)
    unexpected = {k: n for k, n in statuses.items() if isinstance(k[1], str) or k[1] >= 500}
    print("unexpected results:", unexpected or "none")
    if final - after > args.max_rss_growth_mb or unexpected:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
