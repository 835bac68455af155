"""LLM throughput: the HTTP server vs an in-process ContinuousBatchingPipeline, same workload, one run.

Workload: synthetic chat prompts, fixed output length (ignore_eos), closed loop at concurrency
1, 4 and 16 (each of C workers sends its next request as soon as the previous one ends).
Prints output tokens/s, TTFT p50/p99 and TPOT p50/p99 for both, and the ratio server/in-process.

    .venv/bin/python bench/llm_throughput.py [--tokens 128] [--requests-per-worker 2] [--repeats 1]
        [--server-arg=--admission_window_ms=0 ...]   (extra `serve` flags, e.g. to compare options)
        [--inference-precision f32|bf16|f16|plugin]   (both sides; default: the server's default)
        [--peer-url http://127.0.0.1:8080/v1 --peer-model NAME]

`--peer-url` adds a column for any OpenAI-compatible server already running on this machine (for
example llama.cpp's llama-server or vLLM on the same GGUF): the same closed-loop streams, and our
ratio to it. The bench never starts or downloads a peer.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from dataclasses import dataclass

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402
import openvino_genai as ov_genai  # noqa: E402
from common import LeanHTTPClient, pct, pipeline_closed_loop, print_table, timed_chat_stream  # noqa: E402  (also puts the repo on sys.path)

from servables.llm_options import LLMOptions  # noqa: E402
from servables.sources import DEFAULT_LLM_NAME, DEFAULT_LLM_PACKAGE, packaged_gguf  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

CLIENT = "lean"  # --client
TOPICS = ["the sea", "a mountain", "a city at night", "an old library", "a robot", "the desert", "a violin",
          "a train journey", "winter", "a garden", "the moon", "a storm", "a market", "a lighthouse", "a forest",
          "a bakery"]


def prompt(i: int, round_id: int = 0) -> list[dict]:
    """Request i of a round. Every prompt is new from its first KV block on (the round and variant lead the
    message, and SmolLM2's system prompt is shorter than a block): with prompts shared between rounds or
    sides, TTFT compared which side kept which prefix blocks cached, not the serving path."""
    topic = TOPICS[i % len(TOPICS)]
    return [{"role": "user", "content": f"Round {round_id}, variant {i}: write a long story about {topic}."}]


@dataclass
class Sample:
    ttft: float
    tpot: float
    tokens: int


@dataclass
class Result:
    samples: list[Sample]
    wall: float

    def row(self, label: str, concurrency: int) -> list:
        tokens = sum(s.tokens for s in self.samples)
        ttft = [s.ttft * 1000 for s in self.samples]
        tpot = [s.tpot * 1000 for s in self.samples]
        return [label, concurrency, tokens / self.wall, pct(ttft, 0.5), pct(ttft, 0.99), pct(tpot, 0.5),
                pct(tpot, 0.99)]

    @property
    def ttft_p50(self) -> float:
        return pct([s.ttft for s in self.samples], 0.5)

    @property
    def tokens_per_s(self) -> float:
        return sum(s.tokens for s in self.samples) / self.wall


def scheduler_config() -> ov_genai.SchedulerConfig:
    """The server's defaults (servables/llm_options.py)."""
    sc = ov_genai.SchedulerConfig()
    sc.cache_size = 0
    sc.max_num_batched_tokens = 256
    sc.max_num_seqs = 256
    sc.dynamic_split_fuse = True
    sc.enable_prefix_caching = True
    return sc


def pipeline_properties(precision: str | None) -> dict:
    """The properties the server compiles the model with: its inference precision and, under the arbiter,
    CPU pinning off (scheduler/arbiter.py thread_defaults)."""
    options = LLMOptions.from_dict({"inference_precision": precision} if precision else {})
    return {"ENABLE_CPU_PINNING": False, **options.pipeline_properties()}


def run_in_process(pipe, tokenizer, concurrency: int, per_worker: int, tokens: int, round_id: int = 0) -> Result:
    """Closed loop on the pipeline itself: the ceiling the server is compared with."""
    total = concurrency * per_worker
    prompts = [tokenizer.apply_chat_template(prompt(i, round_id), add_generation_prompt=True) for i in range(total)]
    ids = [tokenizer.encode(p, add_special_tokens=False).input_ids.data for p in prompts]
    cfg = pipe.get_config()
    cfg.max_new_tokens = tokens
    cfg.ignore_eos = True
    cfg.apply_chat_template = False

    def add(i: int) -> tuple:
        return pipe.add_request(i, ov.Tensor(np.asarray(ids[i])), cfg), time.perf_counter()

    samples, wall = pipeline_closed_loop(pipe, add, concurrency, total)
    return Result([Sample(*s) for s in samples], wall)


async def _one_stream(client: httpx.AsyncClient | LeanHTTPClient, i: int, tokens: int, model: str,
                      round_id: int) -> Sample:
    body = {"model": model, "messages": prompt(i, round_id), "max_tokens": tokens, "ignore_eos": True,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    if isinstance(client, LeanHTTPClient):
        return Sample(*await client.chat_stream("chat/completions", body))
    return Sample(*await timed_chat_stream(client, "chat/completions", body))


async def _server_round(url: str, concurrency: int, per_worker: int, tokens: int,
                        model: str = DEFAULT_LLM_NAME, round_id: int = 0) -> Result:
    """Closed loop against an OpenAI-compatible API rooted at `url` (ours: <server>/v3)."""
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=concurrency + 4)
    client_cm = (LeanHTTPClient(url) if CLIENT == "lean"
                 else httpx.AsyncClient(base_url=url.rstrip("/") + "/", timeout=600, limits=limits))
    async with client_cm as client:
        async def worker(w: int) -> None:
            for k in range(per_worker):
                samples.append(await _one_stream(client, w * per_worker + k, tokens, model, round_id))

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return Result(samples, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--requests-per-worker", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=1, help="alternate in-process/server rounds; medians")
    parser.add_argument("--server-arg", action="append", default=[], help="an extra `serve` flag (repeatable)")
    parser.add_argument("--inference-precision", choices=["f32", "bf16", "f16", "plugin"],
                        help="the model's inference precision, in process and in the server (default: server's)")
    parser.add_argument("--peer-url", help="an OpenAI-compatible API already running, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--peer-model", default="default", help="the `model` to send to the peer")
    parser.add_argument("--client", choices=["lean", "httpx"], default="lean",
                        help="the load generator: a minimal HTTP client (bench/common.py LeanHTTPClient) or httpx")
    args = parser.parse_args()
    global CLIENT
    CLIENT = args.client

    properties = pipeline_properties(args.inference_precision)
    pipe = ov_genai.ContinuousBatchingPipeline(str(packaged_gguf(DEFAULT_LLM_PACKAGE)), scheduler_config(), "CPU",
                                               properties)
    tokenizer = pipe.get_tokenizer()
    precision_flag = ["--inference_precision", args.inference_precision] if args.inference_precision else []
    server = ServerProcess(*args.server_arg, *precision_flag, log_name="bench-llm").start()
    try:
        ours = f"{server.url}/v3"
        run_in_process(pipe, tokenizer, 2, 1, 16)  # warm-up every side
        asyncio.run(_server_round(ours, 2, 1, 16))
        if args.peer_url:
            asyncio.run(_server_round(args.peer_url, 2, 1, 16, args.peer_model))
        rounds = itertools.count(1)  # round 0 was the warm-up
        median_of = lambda runs: sorted(runs, key=lambda r: r.tokens_per_s)[len(runs) // 2]  # noqa: E731
        rows, ratios, peer_ratios = [], [], []
        for c in args.concurrency:
            local_runs, server_runs, peer_runs = [], [], []
            for _ in range(args.repeats):
                round_id = next(rounds)  # the same new prompts for every side of this round
                local_runs.append(run_in_process(pipe, tokenizer, c, args.requests_per_worker, args.tokens, round_id))
                server_runs.append(asyncio.run(_server_round(ours, c, args.requests_per_worker, args.tokens,
                                                             round_id=round_id)))
                if args.peer_url:
                    peer_runs.append(asyncio.run(_server_round(args.peer_url, c, args.requests_per_worker,
                                                               args.tokens, args.peer_model, round_id)))
            local, remote = median_of(local_runs), median_of(server_runs)
            rows += [local.row("in-process", c), remote.row("server", c)]
            ratios.append((c, remote.tokens_per_s / local.tokens_per_s, remote.tokens_per_s, local.tokens_per_s,
                           remote.ttft_p50 / local.ttft_p50))
            if peer_runs:
                peer = median_of(peer_runs)
                rows.append(peer.row("peer", c))
                peer_ratios.append((c, remote.tokens_per_s / peer.tokens_per_s, remote.ttft_p50 / peer.ttft_p50))
        print(f"\nSmolLM2-135M Q4_1 GGUF, {args.tokens} new tokens (ignore_eos), properties {properties}, "
              f"server flags {args.server_arg + precision_flag}, "
              f"{args.requests_per_worker} requests per worker, median of {args.repeats} round(s)")
        print_table(["path", "conc", "out tok/s", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms"], rows)
        print()
        for c, ratio, _remote_tps, _, ttft_ratio in ratios:
            print(f"concurrency {c:>2}: server/in-process = {ratio:.2f}x tokens/s, TTFT p50 {ttft_ratio:.2f}x")
        for c, ratio, ttft_ratio in peer_ratios:
            print(f"concurrency {c:>2}: server/peer ({args.peer_url}) = {ratio:.2f}x tokens/s, "
                  f"TTFT p50 {ttft_ratio:.2f}x")
        by_c = {c: tps for c, _, tps, _, _ in ratios}
        if 1 in by_c and 16 in by_c:
            print(f"server tokens/s at 16 vs 1: {by_c[16] / by_c[1]:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
