"""Images/s and latency of the tiny SD model: through the server vs. directly on the pipeline.

    python bench/image_throughput.py [--model_path DIR] [--steps 10] [--size 64] [--requests 8] [--rounds 3]
        [--server-arg=--arbiter_background_nice=0 ...]

The in-process baseline runs in the same run, alternating with the server measurements (and which
of the two goes first) so that machine noise hits both. Concurrency 4 on the pipeline means 4
threads sharing one pipeline behind a lock (what the server's image engine does: the pipelines
share their infer requests); the "batched" row is one call with num_images_per_prompt=4, for
reference. Medians over rounds. "CPU s/image" is the serving process's user+system CPU time per
image (the bench process for the pipeline rows), which a busy machine distorts less than wall time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openvino_genai as ov_genai  # noqa: E402

from tests.server import ServerProcess  # noqa: E402


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all threads) from /proc: robust to a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(run, pid: int, images: int) -> tuple[float, list[float], float]:
    """(images/s, latencies, CPU seconds per image) of one run."""
    cpu = process_cpu_seconds(pid)
    rate, latencies = run()
    return rate, latencies, (process_cpu_seconds(pid) - cpu) / images


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Direct:
    def __init__(self, model: Path, args):
        inpainting = ov_genai.InpaintingPipeline(str(model), "CPU")
        self.pipe = ov_genai.Text2ImagePipeline(inpainting)
        self.lock = threading.Lock()
        self.args = args

    def one(self, seed: int, n: int = 1) -> float:
        started = time.perf_counter()
        with self.lock:
            self.pipe.generate("a cat", width=self.args.size, height=self.args.size,
                               num_inference_steps=self.args.steps, rng_seed=seed, num_images_per_prompt=n)
        return time.perf_counter() - started

    def run(self, concurrency: int, requests: int, n: int = 1) -> tuple[float, list[float]]:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(lambda i: self.one(i, n), range(requests)))
        return requests * n / (time.perf_counter() - started), latencies


def server_run(url: str, args, concurrency: int, requests: int) -> tuple[float, list[float]]:
    body = {"model": "tiny-sd", "prompt": "a cat", "size": f"{args.size}x{args.size}",
            "num_inference_steps": args.steps}

    async def main() -> tuple[float, list[float]]:
        latencies: list[float] = []
        counter = iter(range(requests))

        async def worker(client: httpx.AsyncClient) -> None:
            for i in counter:
                started = time.perf_counter()
                r = await client.post("/v3/images/generations", json={**body, "seed": i})
                r.raise_for_status()
                latencies.append(time.perf_counter() - started)

        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            return requests / (time.perf_counter() - started), latencies

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", type=Path, help="diffusers-layout OpenVINO IR (default: the tiny test SD)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra `serve` flag, e.g. --server-arg=--arbiter_background_nice=0")
    args = parser.parse_args()
    if args.model_path is None:
        from tests.fixtures_image import ensure_tiny_sd

        args.model_path = ensure_tiny_sd()

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"model_config_list": [{"config": {
            "name": "tiny-sd", "base_path": str(args.model_path), "task": "image_generation",
            "max_queue_size": 64}}]}))
        server = ServerProcess("--config_path", str(config), *args.server_arg, log_name="bench-images").start()
        try:
            direct = Direct(args.model_path, args)
            direct.run(1, 2)  # warm-up
            server_run(server.url, args, 1, 2)
            results: dict[str, list[tuple[float, list[float], float]]] = {}
            for round_ in range(args.rounds):
                for concurrency in (1, 4):
                    measures = [
                        (f"pipeline c={concurrency}", os.getpid(), lambda c=concurrency: direct.run(c, args.requests)),
                        (f"server   c={concurrency}", server.proc.pid,
                         lambda c=concurrency: server_run(server.url, args, c, args.requests))]
                    for name, pid, run in measures[:: 1 if round_ % 2 == 0 else -1]:  # alternate who goes first
                        results.setdefault(name, []).append(measured(run, pid, args.requests))
                batches = max(1, args.requests // 4)
                results.setdefault("pipeline batched n=4", []).append(
                    measured(lambda b=batches: direct.run(1, b, n=4), os.getpid(), batches * 4))
        finally:
            server.stop()

    print(f"\ntiny SD, {args.size}x{args.size}, {args.steps} steps, {args.requests} requests x {args.rounds} rounds "
          "(medians over rounds)\n")
    print(f"{'config':<22} {'images/s':>9} {'p50 lat s':>10} {'p90 lat s':>10} {'CPU s/image':>12}")
    summary: dict[str, tuple[float, float, float, float]] = {}
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        p50 = statistics.median(statistics.median(r[1]) for r in runs)
        p90 = statistics.median(percentile(r[1], 0.9) for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        summary[name] = (rate, p50, p90, cpu)
        print(f"{name:<22} {rate:>9.2f} {p50:>10.3f} {p90:>10.3f} {cpu:>12.3f}")
    print()
    for concurrency in (1, 4):
        s, d = summary[f"server   c={concurrency}"], summary[f"pipeline c={concurrency}"]
        print(f"c={concurrency}: server/pipeline images/s = {s[0] / d[0]:.2f}, p50 latency = {s[1] / d[1]:.2f}, "
              f"CPU per image = {s[3] / d[3]:.2f}")


if __name__ == "__main__":
    main()
