"""How much does swapping a model under load (config change + reload) disturb running streams?

Runs 4 streaming chats on a config-file server twice: undisturbed, then with the model's entry
changed and reloaded mid-stream (the new instance loads while the old one keeps generating).
Prints the median and max gap between stream chunks and tokens/s, with the ratio to the baseline.

    .venv/bin/python bench/reload_swap.py
"""
from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures_models import smollm2_gguf  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

STREAMS, TOKENS = 4, 256
BODY = {"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": TOKENS,
        "ignore_eos": True, "temperature": 0, "stream": True}


def write(config: Path, **options) -> None:
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "m", "base_path": str(smollm2_gguf()), **options}}]}))


async def one(client: httpx.AsyncClient) -> list[float]:
    stamps = []
    async with client.stream("POST", "/v3/chat/completions", json={**BODY, "model": "m"}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                stamps.append(time.monotonic())
    return stamps


def run(url: str, during=None) -> tuple[float, float, float]:
    async def main():
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            return await asyncio.gather(*(one(client) for _ in range(STREAMS)))

    if during:
        threading.Timer(1.0, during).start()
    started = time.monotonic()
    results = asyncio.run(main())
    elapsed = time.monotonic() - started
    gaps = [b - a for stamps in results for a, b in zip(stamps, stamps[1:], strict=False)]
    return statistics.median(gaps) * 1000, max(gaps) * 1000, STREAMS * TOKENS / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        write(config)
        server = ServerProcess("--config_path", str(config), "--file_system_poll_wait_seconds", "0",
                               log_name="bench-reload").start()
        try:
            run(server.url)  # warm-up
            base = run(server.url)

            def swap():
                write(config, max_num_seqs=128)
                httpx.post(f"{server.url}/v1/config/reload", timeout=600)

            swapped = run(server.url, during=swap)
        finally:
            server.stop()
    print(f"{'run':<22}{'median gap ms':>15}{'max gap ms':>12}{'tok/s':>9}")
    for name, (med, worst, tps) in (("baseline", base), ("swap mid-stream", swapped)):
        print(f"{name:<22}{med:>15.1f}{worst:>12.1f}{tps:>9.1f}")
    print(f"ratio swap/baseline: median gap {swapped[0] / base[0]:.2f}, tok/s {swapped[2] / base[2]:.2f}")


if __name__ == "__main__":
    main()
