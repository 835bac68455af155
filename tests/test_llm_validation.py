"""Every invalid request gets a 4xx in OpenAI's error shape, and the server keeps serving."""
from __future__ import annotations

import pytest

from tests.conftest import LLM

MSG = [{"role": "user", "content": "Hi"}]
CHAT = "/v3/chat/completions"
COMPLETIONS = "/v3/completions"

CASES = [
    # (path, body, status, fragment of error.message)
    (CHAT, {"model": LLM}, 400, "messages"),
    (CHAT, {"messages": MSG}, 400, "model"),
    (CHAT, {"model": LLM, "messages": []}, 400, "messages"),
    (CHAT, {"model": LLM, "messages": "hello"}, 400, "messages"),
    (CHAT, {"model": LLM, "messages": [{"content": "no role"}]}, 400, "role"),
    (CHAT, {"model": LLM, "messages": MSG, "temperature": "hot"}, 400, "temperature"),
    (CHAT, {"model": LLM, "messages": MSG, "temperature": 3}, 400, "temperature"),
    (CHAT, {"model": LLM, "messages": MSG, "top_p": 0}, 400, "top_p"),
    (CHAT, {"model": LLM, "messages": MSG, "top_p": 1.5}, 400, "top_p"),
    (CHAT, {"model": LLM, "messages": MSG, "top_k": -5}, 400, "top_k"),
    (CHAT, {"model": LLM, "messages": MSG, "min_p": 1.0}, 400, "min_p"),
    (CHAT, {"model": LLM, "messages": MSG, "presence_penalty": 2.5}, 400, "presence_penalty"),
    (CHAT, {"model": LLM, "messages": MSG, "frequency_penalty": -3}, 400, "frequency_penalty"),
    (CHAT, {"model": LLM, "messages": MSG, "repetition_penalty": 0}, 400, "repetition_penalty"),
    (CHAT, {"model": LLM, "messages": MSG, "max_tokens": 0}, 400, "max_tokens"),
    (CHAT, {"model": LLM, "messages": MSG, "max_tokens": -1}, 400, "max_tokens"),
    (CHAT, {"model": LLM, "messages": MSG, "max_tokens": "5"}, 400, "max_tokens"),
    (CHAT, {"model": LLM, "messages": MSG, "max_tokens": 9000}, 400, "exceeds model max length"),
    (CHAT, {"model": LLM, "messages": MSG, "seed": -1}, 400, "seed"),
    (CHAT, {"model": LLM, "messages": MSG, "stream": "yes"}, 400, "stream"),
    (CHAT, {"model": LLM, "messages": MSG, "stream_options": {"include_usage": True}}, 400, "stream_options"),
    (CHAT, {"model": LLM, "messages": MSG, "stream": True, "stream_options": {"bogus": 1}}, 400, "bogus"),
    (CHAT, {"model": LLM, "messages": MSG, "stop": [str(i) for i in range(17)]}, 400, "stop"),
    (CHAT, {"model": LLM, "messages": MSG, "stop": 5}, 400, "stop"),
    (CHAT, {"model": LLM, "messages": MSG, "n": 0}, 400, "n"),
    (CHAT, {"model": LLM, "messages": MSG, "n": 2, "temperature": 0}, 400, "n > 1"),
    (CHAT, {"model": LLM, "messages": MSG, "n": 3, "best_of": 2}, 400, "best_of"),
    (CHAT, {"model": LLM, "messages": MSG, "best_of": 20}, 400, "best_of"),
    (CHAT, {"model": LLM, "messages": MSG, "best_of": 2, "stream": True}, 400, "streaming"),
    (CHAT, {"model": LLM, "messages": MSG, "logprobs": True, "top_logprobs": 3}, 400, "top_logprobs"),
    (CHAT, {"model": LLM, "messages": MSG, "logit_bias": {"1": 5}}, 400, "logit_bias"),
    (CHAT, {"model": LLM, "messages": MSG, "tools": []}, 400, "tools"),
    (CHAT, {"model": LLM, "messages": MSG, "tool_choice": "required"}, 400, "tool_choice"),
    (CHAT, {"model": LLM, "messages": MSG, "response_format": "json"}, 400, "response_format"),
    (CHAT, {"model": LLM, "messages": MSG, "response_format": {"type": "yaml"}}, 400, "response_format"),
    (CHAT, {"model": LLM, "messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]}, 400, "name"),
    (CHAT, {"model": LLM, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, 400, "only text input"),
    (CHAT, {"model": LLM, "messages": [{"role": "user", "content": "hello " * 9000}]}, 400,
     "exceeds model max length"),
    (CHAT, {"model": "missing-model", "messages": MSG}, 404, "does not exist"),
    (COMPLETIONS, {"model": LLM}, 400, "prompt"),
    (COMPLETIONS, {"model": LLM, "prompt": ""}, 400, "prompt"),
    (COMPLETIONS, {"model": LLM, "prompt": ["a", "b"]}, 400, "one prompt"),
    (COMPLETIONS, {"model": LLM, "prompt": "x", "logprobs": 3}, 400, "logprobs"),
    (COMPLETIONS, {"model": LLM, "prompt": "x", "suffix": "y"}, 400, "suffix"),
    (COMPLETIONS, {"model": LLM, "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    (COMPLETIONS, {"model": LLM, "prompt": "x", "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "nope"}}}}}}, 400, "nope"),
    ("/v3/responses", {"model": LLM}, 400, "input"),
    ("/v3/responses", {"model": LLM, "input": "x", "max_output_tokens": 0}, 400, "max_output_tokens"),
    ("/v3/tokenize", {"model": LLM}, 400, "text"),
]


def _good_request_works(http) -> None:
    r = http.post(CHAT, json={"model": LLM, "messages": MSG, "max_tokens": 3, "temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("path,body,status,fragment", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_invalid_request_is_rejected_then_server_still_serves(http, path, body, status, fragment):
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert fragment in error["message"] or fragment == error.get("param"), error
    assert set(error) == {"message", "type", "param", "code"}
    _good_request_works(http)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"just a string"', b"null"])
def test_malformed_json_body_is_a_400(http, raw):
    r = http.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    _good_request_works(http)


def test_echo_with_zero_max_tokens_returns_the_prompt(http):
    r = http.post(COMPLETIONS, json={"model": LLM, "prompt": "Hello there", "max_tokens": 0, "echo": True})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] == "Hello there"
    assert r.json()["usage"]["completion_tokens"] == 0


def test_unknown_model_id_on_models_api_is_404(http):
    r = http.get("/v3/models/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
