"""Every invalid request gets a 4xx in OpenAI's error shape, and the server keeps serving."""
from __future__ import annotations

import pytest

from tests.conftest import LLM

MSG = [{"role": "user", "content": "Hi"}]
CHAT = "/v3/chat/completions"
COMPLETIONS = "/v3/completions"

CASES = [
    # path, body, status, fragment of error.message (or the param), error.param
    pytest.param(CHAT, {"model": LLM}, 400, "messages", "messages", id="chat-messages-missing"),
    pytest.param(CHAT, {"messages": MSG}, 400, "model", "model", id="chat-model-missing"),
    pytest.param(CHAT, {"model": LLM, "messages": []}, 400, "messages", "messages", id="chat-messages-empty"),
    pytest.param(CHAT, {"model": LLM, "messages": "hello"}, 400, "messages", "messages", id="chat-messages-string"),
    pytest.param(CHAT, {"model": LLM, "messages": [{"content": "no role"}]}, 400, "role", "messages.0.role",
                 id="chat-message-without-role"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "temperature": "hot"}, 400, "temperature", "temperature",
                 id="temperature-string"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "temperature": 3}, 400, "temperature", "temperature",
                 id="temperature-above-2"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "top_p": 0}, 400, "top_p", "top_p", id="top_p-zero"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "top_p": 1.5}, 400, "top_p", "top_p", id="top_p-above-1"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "top_k": -5}, 400, "top_k", "top_k", id="top_k-negative"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "min_p": 1.0}, 400, "min_p", "min_p", id="min_p-one"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "presence_penalty": 2.5}, 400, "presence_penalty",
                 "presence_penalty", id="presence_penalty-above-2"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "frequency_penalty": -3}, 400, "frequency_penalty",
                 "frequency_penalty", id="frequency_penalty-below-minus-2"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "repetition_penalty": 0}, 400, "repetition_penalty",
                 "repetition_penalty", id="repetition_penalty-zero"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "max_tokens": 0}, 400, "max_tokens", "max_tokens",
                 id="max_tokens-zero"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "max_tokens": -1}, 400, "max_tokens", "max_tokens",
                 id="max_tokens-negative"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "max_tokens": "5"}, 400, "max_tokens", "max_tokens",
                 id="max_tokens-string"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "max_tokens": 9000}, 400, "exceeds model max length",
                 "max_tokens", id="max_tokens-beyond-context"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "seed": -1}, 400, "seed", "seed", id="seed-negative"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "stream": "yes"}, 400, "stream", "stream",
                 id="stream-string"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "stream_options": {"include_usage": True}}, 400,
                 "stream_options", "stream_options", id="stream_options-without-stream"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "stream": True, "stream_options": {"bogus": 1}}, 400, "bogus",
                 "stream_options.bogus", id="stream_options-unknown-field"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "stop": [str(i) for i in range(17)]}, 400, "stop", "stop",
                 id="stop-17-strings"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "stop": 5}, 400, "stop", "stop", id="stop-number"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "n": 0}, 400, "n", "n", id="n-zero"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "n": 2, "temperature": 0}, 400, "n > 1", "n",
                 id="n-2-greedy"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "n": 3, "best_of": 2}, 400, "best_of", "n",
                 id="n-above-best_of"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "best_of": 20}, 400, "best_of", "best_of",
                 id="best_of-at-limit"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "best_of": 2, "stream": True}, 400, "streaming", "best_of",
                 id="best_of-streaming"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "logprobs": True, "top_logprobs": 3}, 400, "top_logprobs",
                 "top_logprobs", id="top_logprobs-unsupported"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "logit_bias": {"1": 5}}, 400, "logit_bias", "logit_bias",
                 id="logit_bias-unsupported"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "tools": []}, 400, "tools", "tools", id="tools-empty"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "tool_choice": "required"}, 400, "tool_choice", "tool_choice",
                 id="tool_choice-without-tools"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "response_format": "json"}, 400, "response_format",
                 "response_format", id="response_format-string"),
    pytest.param(CHAT, {"model": LLM, "messages": MSG, "response_format": {"type": "yaml"}}, 400, "response_format",
                 "response_format", id="response_format-unknown-type"),
    pytest.param(CHAT, {"model": LLM, "messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]}, 400,
                 "name", "messages.0.tool_calls.0.function.name", id="tool_call-without-name"),
    pytest.param(CHAT, {"model": LLM, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, 400, "does not accept images",
        "messages[0].content[0]", id="image-input"),
    pytest.param(CHAT, {"model": LLM, "messages": [{"role": "user", "content": "hello " * 9000}]}, 400,
                 "exceeds model max length", "messages", id="prompt-beyond-context"),
    pytest.param(CHAT, {"model": "missing-model", "messages": MSG}, 404, "does not exist", "model",
                 id="chat-unknown-model"),
    pytest.param(COMPLETIONS, {"model": LLM}, 400, "prompt", "prompt", id="completions-prompt-missing"),
    pytest.param(COMPLETIONS, {"model": LLM, "prompt": ""}, 400, "prompt", "prompt", id="completions-prompt-empty"),
    pytest.param(COMPLETIONS, {"model": LLM, "prompt": ["a", "b"]}, 400, "one prompt", "prompt",
                 id="completions-two-prompts"),
    pytest.param(COMPLETIONS, {"model": LLM, "prompt": "x", "logprobs": 3}, 400, "logprobs", "logprobs",
                 id="completions-logprobs-3"),
    pytest.param(COMPLETIONS, {"model": LLM, "prompt": "x", "suffix": "y"}, 400, "suffix", "suffix",
                 id="completions-suffix"),
    pytest.param(COMPLETIONS, {"model": LLM, "prompt": "x", "max_tokens": 0}, 400, "max_tokens", "max_tokens",
                 id="completions-max_tokens-zero"),
    pytest.param(COMPLETIONS, {"model": LLM, "prompt": "x", "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "nope"}}}}}}, 400, "nope",
        "response_format", id="completions-schema-unknown-type"),
    pytest.param("/v3/responses", {"model": LLM}, 400, "input", "input", id="responses-input-missing"),
    # errors name the field the client sent (max_output_tokens), not the chat field it maps to
    pytest.param("/v3/responses", {"model": LLM, "input": "x", "max_output_tokens": 0}, 400, "max_output_tokens",
                 "max_output_tokens", id="responses-max_output_tokens-zero"),
    pytest.param("/v3/tokenize", {"model": LLM}, 400, "text", "text", id="tokenize-text-missing"),
]


def _good_request_works(http) -> None:
    r = http.post(CHAT, json={"model": LLM, "messages": MSG, "max_tokens": 3, "temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("path,body,status,fragment,param", CASES)
def test_invalid_request_is_rejected_then_server_still_serves(http, path, body, status, fragment, param):
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert fragment in error["message"] or fragment == error.get("param"), error
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param, error
    _good_request_works(http)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"just a string"', b"null"],
                         ids=["broken", "array", "empty", "string", "null"])
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
