"""Vision-language throughput: the HTTP server vs an in-process ContinuousBatchingPipeline, with images.

Model: the tests' tiny random LLaVA (tests/fixtures_vlm.py, built and cached on first use).
TTFT on the server is the first streamed chunk that carries a token (`logprobs` on, so a chunk is
sent even while a partial UTF-8 character holds its text back, as random models produce many).
Workload: one 224x224 PNG per request (a data URL for the server, the decoded RGB tensor for the
pipeline), the same templated prompt, fixed output length (ignore_eos), closed loop at concurrency
1, 4 and 16. Prints output tokens/s and TTFT of the image requests for both, and the ratio.
Then, on the same server with a text model (SmolLM2) beside the VLM and the arbiter on (fair):
text-chat TPOT alone vs while image requests stream on the VLM.

    .venv/bin/python bench/vlm_throughput.py [--tokens 64] [--requests-per-worker 2]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openvino as ov
import openvino_genai as ov_genai
from common import pct, pipeline_closed_loop, print_table  # noqa: E402  (also puts the repo on sys.path)
from PIL import Image

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf  # noqa: E402
from tests.fixtures_vlm import PARAMS, tiny_llava  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

VLM, TEXT = "tiny-llava", "smol"
# --size small: a LLaVA whose steps cost what a small real model's do (CLIP 4x256 on 224 px, 196 image
# tokens; Llama 8x512), so that per-token serving overhead weighs as it would in production
SMALL = {**PARAMS, "image_size": 224, "patch_size": 16,
         "vision": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4},
         "text": {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8, "num_attention_heads": 8,
                  "num_key_value_heads": 8, "max_position_embeddings": 2048}}


def png(seed: int) -> bytes:
    pixels = np.random.RandomState(seed).randint(0, 256, (224, 224, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def text(i: int) -> str:
    return f"Describe the image in detail. Variant {i}."


def scheduler_config() -> ov_genai.SchedulerConfig:
    """The server's defaults (servables/llm_options.py): prefix caching on, so requests sharing an image
    (a shared prompt prefix when the image comes first) reuse its KV blocks on both sides."""
    sc = ov_genai.SchedulerConfig()
    sc.cache_size = 0
    sc.max_num_batched_tokens = 256
    sc.max_num_seqs = 256
    sc.dynamic_split_fuse = True
    sc.enable_prefix_caching = True
    return sc


@dataclass
class Sample:
    ttft: float
    tpot: float
    tokens: int


@dataclass
class Result:
    samples: list[Sample]
    wall: float

    @property
    def tokens_per_s(self) -> float:
        return sum(s.tokens for s in self.samples) / self.wall

    def row(self, label: str, concurrency: int) -> list:
        ttft = [s.ttft * 1000 for s in self.samples]
        return [label, concurrency, self.tokens_per_s, pct(ttft, 0.5), pct(ttft, 0.99)]


def run_in_process(pipe, images: list[np.ndarray], concurrency: int, per_worker: int, tokens: int) -> Result:
    """Closed loop on the pipeline itself: the ceiling the server is compared with (no images: text only)."""
    tokenizer = pipe.get_tokenizer()
    cfg = pipe.get_config()
    cfg.max_new_tokens = tokens
    cfg.ignore_eos = True
    cfg.apply_chat_template = False  # templated here, as the server does
    total = concurrency * per_worker

    def add(i: int) -> tuple:
        t0 = time.perf_counter()  # before templating and add_request (which encodes the image), as a client's
        tag = "<ov_genai_image_0>" if images else ""
        messages = [{"role": "user", "content": tag + text(i)}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        tensors = [ov.Tensor(np.ascontiguousarray(images[i % len(images)][None]))] if images else []
        return pipe.add_request(i, prompt, tensors, cfg), t0

    samples, wall = pipeline_closed_loop(pipe, add, concurrency, total)
    return Result([Sample(*s) for s in samples], wall)


async def one_stream(client: httpx.AsyncClient, body: dict) -> Sample:
    t0 = time.perf_counter()
    if not body["stream"]:  # unary: no TTFT, only throughput
        response = await client.post("/v3/chat/completions", json=body)
        response.raise_for_status()
        return Sample(float("nan"), float("nan"), response.json()["usage"]["completion_tokens"])
    first = None
    completion = 0
    async with client.stream("POST", "/v3/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if first is None and '"logprobs":{' in line:  # a token arrived (its text may be held back)
                first = time.perf_counter()
            if '"usage":{' in line:
                completion = json.loads(line[6:])["usage"]["completion_tokens"]
    end = time.perf_counter()
    first = first or end
    return Sample(first - t0, (end - first) / max(completion - 1, 1), completion)


def image_body(i: int, urls: list[str], tokens: int, stream: bool = True) -> dict:
    """A chat request with one image (none when `urls` is empty: the text-only baseline on the same model)."""
    content = [{"type": "image_url", "image_url": {"url": urls[i % len(urls)]}}] if urls else []
    content.append({"type": "text", "text": text(i)})
    return {"model": VLM, "messages": [{"role": "user", "content": content}], "max_tokens": tokens,
            "ignore_eos": True, "temperature": 0, "stream": stream,
            **({"stream_options": {"include_usage": True}, "logprobs": True} if stream else {})}


def text_body(i: int, tokens: int) -> dict:
    return {"model": TEXT, "messages": [{"role": "user", "content": f"Write a long story, variant {i}."}],
            "max_tokens": tokens, "ignore_eos": True, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "logprobs": True}


async def closed_loop(url: str, bodies, concurrency: int, per_worker: int) -> Result:
    samples: list[Sample] = []
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def worker(w: int) -> None:
            for k in range(per_worker):
                samples.append(await one_stream(client, bodies(w * per_worker + k)))

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return Result(samples, time.perf_counter() - start)


async def text_under_image_load(url: str, urls: list[str], tokens: int) -> tuple[Result, Result]:
    """Text TPOT alone, then with 16 image streams running on the VLM at the same time."""
    alone = await closed_loop(url, lambda i: text_body(i, tokens), 4, 2)
    stop = asyncio.Event()

    async def image_load() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            i = 0
            while not stop.is_set():
                await asyncio.gather(*(one_stream(client, image_body(i + k, urls, 16)) for k in range(16)))
                i += 16

    load = asyncio.create_task(image_load())
    await asyncio.sleep(0.5)
    loaded = await closed_loop(url, lambda i: text_body(i, tokens), 4, 2)
    stop.set()
    await load
    return alone, loaded


MEASUREMENTS = ("in-process", "server stream", "server unary", "in-process text", "server stream text")


def measure(label: str, pipe, images: list[np.ndarray], urls: list[str], url: str, concurrency: int,
            per_worker: int, tokens: int) -> Result:
    """One round of one of MEASUREMENTS ("text": the same model without images)."""
    with_images = not label.endswith("text")
    if label.startswith("in-process"):
        return run_in_process(pipe, images if with_images else [], concurrency, per_worker, tokens)
    shown = urls if with_images else []
    stream = label != "server unary"
    return asyncio.run(closed_loop(url, lambda i: image_body(i, shown, tokens, stream), concurrency, per_worker))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--requests-per-worker", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--size", choices=["tiny", "small"], default="tiny",
                        help="tiny: the tests' model (steps of ~1 ms); small: a larger random LLaVA")
    parser.add_argument("--repeats", type=int, default=1, help="rounds per measurement (alternating); medians")
    args = parser.parse_args()

    model = tiny_llava() if args.size == "tiny" else tiny_llava(SMALL, "bench-llava-small")
    raw = [png(seed) for seed in range(4)]
    images = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.uint8) for b in raw]
    urls = ["data:image/png;base64," + base64.b64encode(b).decode() for b in raw]
    # the properties the server gives a text_generation model under the arbiter (scheduler/arbiter.py
    # thread_defaults): without them a pinned in-process baseline suffers more from other load on the host
    pipe = ov_genai.ContinuousBatchingPipeline(str(model), scheduler_config(), "CPU",
                                               {"ENABLE_CPU_PINNING": False})
    folder = Path(tempfile.mkdtemp(prefix="bench-vlm-"))
    config = {"model_config_list": [{"config": {"name": VLM, "base_path": str(model)}},
                                    {"config": {"name": TEXT, "base_path": str(packaged_gguf(DEFAULT_LLM_PACKAGE)),
                                                "task": "text_generation"}}]}
    (folder / "config.json").write_text(json.dumps(config))
    server = ServerProcess("--config_path", str(folder / "config.json"), "--arbiter", "fair",
                           log_name="bench-vlm").start()
    try:
        run_in_process(pipe, images, 2, 1, 8)  # warm-up both sides
        asyncio.run(closed_loop(server.url, lambda i: image_body(i, urls, 8), 2, 1))
        rows, ratios = [], []
        n = args.requests_per_worker
        for c in args.concurrency:
            runs: dict[str, list[Result]] = {}
            for _ in range(args.repeats):  # alternate the five measurements so drift hits them alike
                for label in MEASUREMENTS:
                    runs.setdefault(label, []).append(measure(label, pipe, images, urls, server.url, c, n, args.tokens))
            med = {label: sorted(rs, key=lambda r: r.tokens_per_s)[len(rs) // 2] for label, rs in runs.items()}
            local, remote, unary = med["in-process"], med["server stream"], med["server unary"]
            local_text, remote_text = med["in-process text"], med["server stream text"]
            rows += [med[label].row(label, c) for label in med]
            ratios.append((c, remote.tokens_per_s / local.tokens_per_s, unary.tokens_per_s / local.tokens_per_s,
                           remote_text.tokens_per_s / local_text.tokens_per_s))
        print(f"\n{args.size} random LLaVA, one 224x224 PNG per request, {args.tokens} new tokens "
              f"(ignore_eos), {n} requests per worker, median of {args.repeats} round(s)")
        print_table(["path", "conc", "out tok/s", "TTFT p50 ms", "TTFT p99 ms"], rows)
        print()
        for c, ratio, unary_ratio, text_ratio in ratios:
            print(f"concurrency {c:>2}: server/in-process = {ratio:.2f}x streaming, {unary_ratio:.2f}x unary; "
                  f"text-only on the same model {text_ratio:.2f}x streaming")
        alone, loaded = asyncio.run(text_under_image_load(server.url, urls, args.tokens))
        tpot_alone = pct([s.tpot * 1000 for s in alone.samples], 0.5)
        tpot_loaded = pct([s.tpot * 1000 for s in loaded.samples], 0.5)
        print(f"\nSmolLM2 text chat, 4 streams, TPOT p50: alone {tpot_alone:.2f} ms, with 16 image streams on the "
              f"VLM {tpot_loaded:.2f} ms ({tpot_loaded / tpot_alone:.2f}x; arbiter fair)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
