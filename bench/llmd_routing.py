"""Does routing on the vLLM metrics beat round robin when one replica is slow? (a picker simulation)

Starts 3 replicas of the default SmolLM2 server on 127.0.0.1 (`--arbiter fair`, `--max_num_seqs`
slots each). Replica 0 is made slow: background clients keep all its slots busy with long
generations, so a request sent there waits for one of them to end. Then, per policy, 64 clients
stream short chats (8 tokens) back to back for `--seconds`:
  round_robin  replica i % 3
  picker       what the Gateway API Inference Extension's endpoint picker does: scrape every
               replica's /metrics every 50 ms and send each request to the lowest
               vllm:num_requests_waiting, then the lowest vllm:kv_cache_usage_perc
Prints TTFT p50/p90/p99 per policy, the share of requests each replica got, and the ratio of each
p99 to round robin's (the in-run baseline). Not a product feature: the router lives here only.

    .venv/bin/python bench/llmd_routing.py [--seconds 20] [--clients 64] [--max_num_seqs 32]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from common import pct, print_table  # noqa: E402  (puts the repo on sys.path)
from prometheus_client.parser import text_string_to_metric_families

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

MODEL = "smollm2"
PROMPT = [{"role": "user", "content": "Name a colour and a fruit."}]
STORY = [{"role": "user", "content": "Tell me a long story about a dragon."}]
SCRAPE_SECONDS = 0.05  # the endpoint picker's default metrics refresh interval
TIMEOUT_SECONDS = 60.0  # a short request that got no token in this time is given up


@dataclass
class ReplicaState:
    url: str
    waiting: float = 0.0
    running: float = 0.0
    kv: float = 0.0


@dataclass
class Picker:
    """Routes on the last scraped vllm:* gauges (ties go to the next replica in turn)."""

    replicas: list[ReplicaState]
    turn: itertools.count = field(default_factory=itertools.count)

    def choose(self) -> int:
        start = next(self.turn)
        order = [(start + i) % len(self.replicas) for i in range(len(self.replicas))]
        return min(order, key=lambda i: (self.replicas[i].waiting, self.replicas[i].kv))

    async def scrape_forever(self, http: httpx.AsyncClient) -> None:
        while True:
            await asyncio.gather(*(self._scrape(http, r) for r in self.replicas), return_exceptions=True)
            await asyncio.sleep(SCRAPE_SECONDS)

    @staticmethod
    async def _scrape(http: httpx.AsyncClient, replica: ReplicaState) -> None:
        text = (await http.get(f"{replica.url}/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("model_name") != MODEL:
                    continue
                if sample.name == "vllm:num_requests_waiting":
                    replica.waiting = sample.value
                elif sample.name == "vllm:num_requests_running":
                    replica.running = sample.value
                elif sample.name == "vllm:kv_cache_usage_perc":
                    replica.kv = sample.value


async def stream_chat(http: httpx.AsyncClient, url: str, messages: list, max_tokens: int,
                      ignore_eos: bool = False) -> float | None:
    """Seconds to the first content token; None when the request failed (an HTTP error status, a broken
    connection; counted as failed); TIMEOUT_SECONDS when no token
    came in that time (the request is abandoned, so a percentile over such values is a lower bound)."""
    body = {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": ignore_eos}
    started = time.monotonic()
    first = None
    try:
        async with asyncio.timeout(None if ignore_eos else TIMEOUT_SECONDS):
            async with http.stream("POST", f"{url}/v3/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    return None
                async for line in response.aiter_lines():
                    if first is None and line.startswith("data: {"):
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        if choices[0].get("delta", {}).get("content"):
                            first = time.monotonic() - started
    except TimeoutError:
        return first if first is not None else TIMEOUT_SECONDS
    except httpx.TransportError:  # e.g. a pooled keep-alive connection the server had just closed
        return None
    return first


async def keep_busy(http: httpx.AsyncClient, url: str, streams: int, stop: asyncio.Event) -> None:
    """`streams` long generations on one replica, each replaced when it ends (staggered lengths)."""
    rng = random.Random(0)

    async def one() -> None:
        while not stop.is_set():
            await stream_chat(http, url, STORY, rng.randint(50, 250), ignore_eos=True)

    await asyncio.gather(*(one() for _ in range(streams)))


async def run_policy(policy: str, urls: list[str], clients: int, seconds: float, picker: Picker,
                     http: httpx.AsyncClient) -> tuple[list[float], Counter, int, int]:
    ttfts: list[float] = []
    sent: Counter = Counter()
    failures = timeouts = 0
    rr = itertools.count()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal failures, timeouts
        while time.monotonic() < deadline:
            index = next(rr) % len(urls) if policy == "round_robin" else picker.choose()
            sent[index] += 1
            ttft = await stream_chat(http, urls[index], PROMPT, 8)
            if ttft is None:
                failures += 1
            else:
                ttfts.append(ttft)
                timeouts += ttft >= TIMEOUT_SECONDS

    await asyncio.gather(*(client() for _ in range(clients)))
    return ttfts, sent, failures, timeouts


async def measure(urls: list[str], args: argparse.Namespace) -> list[list]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        picker = Picker([ReplicaState(u) for u in urls])
        scraper = asyncio.create_task(picker.scrape_forever(http))
        stop = asyncio.Event()
        busy = asyncio.create_task(keep_busy(http, urls[0], args.max_num_seqs, stop))
        while picker.replicas[0].running < args.max_num_seqs:  # replica 0 is full before we measure
            await asyncio.sleep(0.2)
        rows = []
        baseline = None
        for policy in ("round_robin", "picker"):
            ttfts, sent, failures, timeouts = await run_policy(policy, urls, args.clients, args.seconds, picker, http)
            p99 = pct(ttfts, 0.99)
            baseline = baseline or p99
            total = sum(sent.values())
            shares = "/".join(f"{100 * sent[i] / total:.0f}" for i in range(len(urls)))
            rows.append([policy, len(ttfts), failures, timeouts, pct(ttfts, 0.5), pct(ttfts, 0.9), p99, shares,
                         f"{p99 / baseline:.2f}"])
        stop.set()
        scraper.cancel()
        busy.cancel()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="load per policy")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--cache_size", type=int, default=1,
                        help="GB of KV cache per replica: a fixed size, as vLLM preallocates, so that "
                             "vllm:kv_cache_usage_perc compares replicas")
    parser.add_argument("--max_num_seqs", type=int, default=32, help="sequence slots per replica")
    args = parser.parse_args()
    gguf = str(packaged_gguf(DEFAULT_LLM_PACKAGE))
    servers = [ServerProcess("--model_path", gguf, "--model_name", MODEL, "--arbiter", "fair", "--metrics_enable",
                             "--metrics_list", "genai_requests_running", "--max_num_seqs", str(args.max_num_seqs),
                             "--cache_size", str(args.cache_size),
                             log_name=f"llmd-{i}") for i in range(3)]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(lambda server: server.start(), servers))
        print(f"3 replicas ready in {time.monotonic() - started:.0f} s; replica 0 kept busy with "
              f"{args.max_num_seqs} long generations; {args.clients} clients, {args.seconds:.0f} s per policy")
        rows = asyncio.run(measure([s.url for s in servers], args))
    finally:
        for server in servers:
            server.stop()
    print_table(["policy", "requests", "failed", f"no token in {TIMEOUT_SECONDS:.0f} s", "TTFT p50 s", "TTFT p90 s",
                 "TTFT p99 s", "share % r0/r1/r2", "p99 vs round_robin"], rows)


if __name__ == "__main__":
    main()
