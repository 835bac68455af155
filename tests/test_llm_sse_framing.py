"""SSE as raw bytes: what curl -N and a hand-written httpx client see."""
from __future__ import annotations

import json
import subprocess

from tests.conftest import LLM

BODY = {"model": LLM, "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0, "max_tokens": 16, "stream": True}


def _events(raw: str) -> list[str]:
    return [line[len("data: "):] for line in raw.splitlines() if line.startswith("data: ")]


def test_curl_streams_data_events_ending_with_done(llm_server):
    out = subprocess.run(
        ["curl", "-sN", f"{llm_server.url}/v3/chat/completions", "-H", "Content-Type: application/json",
         "-d", json.dumps({**BODY, "stream_options": {"include_usage": True}})],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    events = _events(out)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert "Paris" in text
    assert usage_chunk["usage"]["completion_tokens"] >= len([c for c in chunks[1:-2]])


def test_httpx_stream_headers_and_no_usage_without_option(http):
    with http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    events = _events(raw)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])


def test_completions_stream_objects(http):
    body = {"model": LLM, "prompt": "1, 2, 3,", "max_tokens": 5, "temperature": 0, "stream": True}
    with http.stream("POST", "/v3/completions", json=body) as response:
        raw = "".join(response.iter_text())
    chunks = [json.loads(e) for e in _events(raw)[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
