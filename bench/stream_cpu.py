"""CPU time per streamed token: the server (split by thread) vs the in-process pipeline, same workload.

On a shared 2-core machine tokens/s swing with everyone else's load; CPU seconds per token do much
less, and they say where the serving overhead goes: the event loop (HTTP, SSE formatting and
writes, request preparation), the engine thread (step driving, reading results, detokenization,
add_request), OpenVINO's own worker threads (inference), other Python threads (image decoding).
Workload: C closed-loop streaming chat clients for S seconds (`--model vlm`: the tests' tiny random
LLaVA with one 224x224 PNG per request and logprobs on, as bench/vlm_throughput.py; `--model text`:
SmolLM2), fixed output length. Python thread names come from `py-spy dump` (installed with the
test tools); without it the server is one row.

    .venv/bin/python bench/stream_cpu.py [--model vlm|text] [--concurrency 16] [--seconds 20]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import openvino as ov
import openvino_genai as ov_genai
from common import pipeline_closed_loop, print_table  # noqa: E402  (also puts the repo on sys.path)
from PIL import Image
from vlm_throughput import TEXT, VLM, image_body, one_stream, png, scheduler_config

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf  # noqa: E402
from tests.fixtures_vlm import tiny_llava  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
NATIVE = "OpenVINO worker threads"


def thread_cpu(pid: int, names: dict[str, str]) -> collections.Counter:
    """CPU seconds (user + system) of each thread of `pid`, summed by thread name."""
    out: collections.Counter = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[names.get(tid, NATIVE)] += (int(fields[11]) + int(fields[12])) / TICK
    return out


def python_thread_names(pid: int) -> dict[str, str]:
    """OS thread id -> Python thread name ("event loop" for the main thread), from `py-spy dump`."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {}
    dump = subprocess.run([spy, "dump", "-p", str(pid)], capture_output=True, text=True).stdout
    names = {}
    for tid, name in re.findall(r'Thread (\d+) \(\w+\): "([^"]+)"', dump):
        name = re.sub(r"_\d+$", "_N", name)
        names[tid] = ("event loop" if name == "MainThread" else "engine thread" if name.startswith("llm-engine")
                      else f"Python thread {name}")
    return names


def text_body(i: int, tokens: int) -> dict:
    return {"model": TEXT, "messages": [{"role": "user", "content": f"Write a long story, variant {i}."}],
            "max_tokens": tokens, "ignore_eos": True, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}


async def closed_loop(url: str, body, concurrency: int, seconds: float) -> tuple[int, float]:
    stop_at = time.perf_counter() + seconds
    tokens = 0
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def worker(w: int) -> None:
            nonlocal tokens
            i = w * 100_000
            while time.perf_counter() < stop_at:
                sample = await one_stream(client, body(i))  # awaited first: `tokens += await ...` loses updates
                tokens += sample.tokens
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return tokens, time.perf_counter() - start


def server_cpu(model: str, concurrency: int, seconds: float, tokens: int) -> tuple[dict[str, float], float]:
    """(microseconds of CPU per token by thread group, tokens/s)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-stream-cpu-"))
    path = tiny_llava() if model == "vlm" else packaged_gguf(DEFAULT_LLM_PACKAGE)
    entry = {"name": VLM if model == "vlm" else TEXT, "base_path": str(path)}
    (folder / "config.json").write_text(json.dumps({"model_config_list": [{"config": entry}]}))
    urls = ["data:image/png;base64," + base64.b64encode(png(seed)).decode() for seed in range(4)]

    def body(i: int) -> dict:
        return image_body(i, urls, tokens) if model == "vlm" else text_body(i, tokens)

    server = ServerProcess("--config_path", str(folder / "config.json"), "--arbiter", "fair",
                           log_name="bench-stream-cpu").start()
    try:
        asyncio.run(closed_loop(server.url, body, concurrency, 3))  # warm-up
        assert server.proc is not None
        names = python_thread_names(server.proc.pid)
        before = thread_cpu(server.proc.pid, names)
        produced, wall = asyncio.run(closed_loop(server.url, body, concurrency, seconds))
        after = thread_cpu(server.proc.pid, names)
    finally:
        server.stop()
    return {k: (after[k] - before.get(k, 0)) / produced * 1e6 for k in after}, produced / wall


def in_process_cpu(model: str, concurrency: int, seconds: float, tokens: int) -> tuple[dict[str, float], float]:
    path = tiny_llava() if model == "vlm" else packaged_gguf(DEFAULT_LLM_PACKAGE)
    pipe = ov_genai.ContinuousBatchingPipeline(str(path), scheduler_config(), "CPU", {"ENABLE_CPU_PINNING": False})
    tokenizer = pipe.get_tokenizer()
    cfg = pipe.get_config()
    cfg.max_new_tokens = tokens
    cfg.ignore_eos = True
    cfg.apply_chat_template = False
    image = np.asarray(Image.open(io.BytesIO(png(0))).convert("RGB"), dtype=np.uint8)

    def add(i: int) -> tuple:
        t0 = time.perf_counter()
        if model == "vlm":
            prompt = tokenizer.apply_chat_template([{"role": "user", "content": f"<ov_genai_image_0>Variant {i}."}],
                                                   add_generation_prompt=True)
            return pipe.add_request(i, prompt, [ov.Tensor(np.ascontiguousarray(image[None]))], cfg), t0
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": f"Write a long story, variant {i}."}],
                                               add_generation_prompt=True)
        return pipe.add_request(i, tokenizer.encode(prompt, add_special_tokens=False).input_ids, cfg), t0

    pipeline_closed_loop(pipe, add, concurrency, concurrency)  # warm-up
    main = str(threading.get_native_id())
    names = {main: "main thread (drives step)"}
    before = thread_cpu(os.getpid(), names)
    start = time.perf_counter()
    samples: list = []
    while time.perf_counter() - start < seconds:  # closed loops of 4 requests per client, for about `seconds`
        more, _ = pipeline_closed_loop(pipe, add, concurrency, concurrency * 4)
        samples += more
    wall = time.perf_counter() - start
    after = thread_cpu(os.getpid(), names)
    produced = sum(s[2] for s in samples)
    return {k: (after[k] - before.get(k, 0)) / produced * 1e6 for k in after}, produced / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["vlm", "text"], default="vlm")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    local, local_rate = in_process_cpu(args.model, args.concurrency, args.seconds, args.tokens)
    remote, remote_rate = server_cpu(args.model, args.concurrency, args.seconds, args.tokens)
    rows = [["in-process", k, v] for k, v in sorted(local.items(), key=lambda kv: -kv[1])]
    rows += [["server", k, v] for k, v in sorted(remote.items(), key=lambda kv: -kv[1]) if v > 0.05]
    print(f"\n{args.model}, {args.concurrency} closed-loop streams, {args.tokens} tokens per request, "
          f"~{args.seconds:.0f} s")
    print_table(["side", "threads", "CPU us/token"], rows)
    total_local, total_remote = sum(local.values()), sum(remote.values())
    print(f"\nCPU per token: in-process {total_local:.0f} us, server {total_remote:.0f} us "
          f"({total_remote / total_local:.2f}x); tokens/s in-process {local_rate:.0f}, server {remote_rate:.0f} "
          f"({remote_rate / local_rate:.2f}x)")


if __name__ == "__main__":
    main()
