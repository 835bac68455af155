"""Many streams at once, streams dropped mid-way, disconnects and overload."""
from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.conftest import LLM
from tests.helpers import metric, wait_for
from tests.server import ServerProcess

MSG = [{"role": "user", "content": "Tell me a long story about a dragon."}]


def wait_idle(http, timeout: float = 30.0) -> None:
    wait_for(lambda: metric(http, "genai_requests_running", name=LLM) == 0
             and metric(http, "genai_requests_waiting", name=LLM) == 0, timeout, 0.1, "no LLM request running")


def finished_generations(http) -> float:
    """Generations that ran to their end (a cancelled one is never reported as finished)."""
    return metric(http, "genai_e2e_request_latency_seconds_count", name=LLM, default=0.0)


def test_sixteen_concurrent_streams_all_complete(llm_server):
    async def one(client, i):
        stream = await client.chat.completions.create(
            model=LLM, messages=[{"role": "user", "content": f"Count to {i + 3}."}], max_tokens=24,
            temperature=0, stream=True, stream_options={"include_usage": True})
        text, usage, finish = "", None, None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        return text, usage, finish

    async def run():
        client = openai.AsyncOpenAI(base_url=f"{llm_server.url}/v3", api_key="unused", max_retries=0)
        results = await asyncio.gather(*(one(client, i) for i in range(16)))
        await client.close()
        return results

    results = asyncio.run(run())
    assert len(results) == 16
    for text, usage, finish in results:
        assert text and finish in ("stop", "length")
        assert usage.completion_tokens <= 24


def test_dropped_streams_leave_nothing_running(llm_server, http):
    async def drop_after_two_chunks(client, choices=1):
        body = {"model": LLM, "messages": MSG, "max_tokens": 2000, "ignore_eos": True, "stream": True,
                **({"n": choices, "temperature": 1.0} if choices > 1 else {})}  # n > 1: one request per choice
        async with client.stream("POST", "/v3/chat/completions", json=body) as response:
            seen = 0
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen += 1
                    if seen == 3:  # role chunk + two content chunks
                        return True
        return False

    async def run():
        async with httpx.AsyncClient(base_url=llm_server.url, timeout=60) as client:
            return await asyncio.gather(*(drop_after_two_chunks(client, 1 + i % 4 // 3) for i in range(8)))

    finished = finished_generations(http)
    assert all(asyncio.run(run()))
    wait_idle(http, timeout=10)  # 8 x 2000 tokens would run for a minute if they were not cancelled
    assert finished_generations(http) == finished  # none of the 8 ran to its end
    r = http.post("/v3/chat/completions", json={"model": LLM, "messages": MSG, "max_tokens": 5, "temperature": 0})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5


def test_unary_client_disconnect_cancels_generation(llm_server, http):
    body = {"model": LLM, "messages": MSG, "max_tokens": 2000, "ignore_eos": True}
    finished = finished_generations(http)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{llm_server.url}/v3/chat/completions", json=body, timeout=1.0)
    wait_idle(http, timeout=10)
    assert finished_generations(http) == finished  # stopped, not run to its 2000 tokens


@pytest.fixture(scope="module")
def tiny_queue_server():
    server = ServerProcess("--metrics_enable", "--max_num_seqs", "1", "--max_queue_size", "1",
                           log_name="tiny-queue").start()
    yield server
    server.stop()


@pytest.mark.slow
def test_full_queue_answers_503_with_retry_after_then_recovers(tiny_queue_server):
    body = {"model": LLM, "messages": MSG, "max_tokens": 60, "ignore_eos": True, "temperature": 0}

    async def run():
        async with httpx.AsyncClient(base_url=tiny_queue_server.url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v3/chat/completions", json=body) for _ in range(6)))

    responses = asyncio.run(run())
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 2 and 503 in statuses, statuses
    rejected = next(r for r in responses if r.status_code == 503)
    assert rejected.headers["Retry-After"] == "1"
    assert rejected.json()["error"]["type"] == "server_overloaded"
    ok = httpx.post(f"{tiny_queue_server.url}/v3/chat/completions", json={**body, "max_tokens": 3}, timeout=60)
    assert ok.status_code == 200
    # the openai SDK retries a 503 by itself and then succeeds
    client = openai.OpenAI(base_url=f"{tiny_queue_server.url}/v3", api_key="unused", max_retries=5)
    r = client.chat.completions.create(model=LLM, messages=MSG, max_tokens=3)
    assert r.choices[0].message.content is not None
