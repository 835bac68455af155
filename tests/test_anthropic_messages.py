"""The Anthropic Messages API with the real `anthropic` SDK against a real server (SmolLM2, API key on).

Recent SDKs dropped `temperature` from `messages.create`'s arguments; the tests send it through
`extra_body`, as a user of such an SDK would, to decode greedily.
"""
from __future__ import annotations

import json
import typing

import anthropic
import httpx
import jsonschema
import pytest

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf
from tests.helpers import F32, metric, wait_for, write_config
from tests.server import ServerProcess

KEY = "sk-anthropic-test"
MODEL = "smol"
THINKING = "smol-thinking"
GREEDY = {"temperature": 0}  # with f32 (tests/helpers.py): stream and unary give the same tokens
HELLO = [{"role": "user", "content": "Tell me a story about a dragon."}]
ADD = {"name": "add", "description": "Add two numbers",
       "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                        "required": ["a", "b"]}}
WEATHER = {"name": "get_weather", "description": "Get the current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
THINK_TEMPLATE = """{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking %}<think>
{% endif %}{% endif %}"""
STOP_REASONS = set(typing.get_args(anthropic.types.StopReason))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anthropic")
    (folder / "key.txt").write_text(KEY + "\n")
    (folder / "think.jinja").write_text(THINK_TEMPLATE)
    gguf = str(packaged_gguf(DEFAULT_LLM_PACKAGE))
    write_config(folder / "config.json", [
        {"name": MODEL, "base_path": gguf, "task": "text_generation", "plugin_config": F32},
        {"name": THINKING, "base_path": gguf, "task": "text_generation", "plugin_config": F32,
         "chat_template": str(folder / "think.jinja"), "reasoning_parser": "qwen3"}])
    proc = ServerProcess("--config_path", str(folder / "config.json"), "--api_key_file", str(folder / "key.txt"),
                         "--metrics_enable", log_name="anthropic").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server) -> anthropic.Anthropic:
    """The SDK as a user points it at the gateway: it posts to `{base_url}/v1/messages` with `x-api-key`."""
    return anthropic.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)


def _text(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def test_unary_message_has_text_stop_reason_and_usage(client):
    short = client.messages.create(model=MODEL, max_tokens=5, messages=HELLO, extra_body=GREEDY)
    assert short.type == "message" and short.role == "assistant" and short.id.startswith("msg_")
    assert short.content[0].type == "text" and _text(short)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 5
    done = client.messages.create(model=MODEL, max_tokens=300, system="Answer in one short sentence.",
                                  messages=[{"role": "user", "content": "Hi!"}], extra_body=GREEDY)
    assert done.stop_reason == "end_turn" and done.usage.output_tokens < 300
    assert {short.stop_reason, done.stop_reason} <= STOP_REASONS


def test_max_tokens_beyond_the_context_window_is_a_cap_not_an_error(client):
    with client.messages.stream(model=MODEL, max_tokens=1_000_000, system="Answer in one short sentence.",
                                messages=[{"role": "user", "content": "Hi!"}], extra_body=GREEDY) as stream:
        r = stream.get_final_message()  # the SDK insists on streaming for a max_tokens this large
    assert r.stop_reason == "end_turn" and 0 < r.usage.output_tokens < 300


def test_stream_sends_anthropics_event_sequence_and_the_unary_text(client):
    unary = client.messages.create(model=MODEL, max_tokens=20, messages=HELLO, extra_body=GREEDY)
    events = list(client.messages.create(model=MODEL, max_tokens=20, messages=HELLO, stream=True, extra_body=GREEDY))
    kinds = [e.type for e in events]
    deltas = kinds.count("content_block_delta")
    assert kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"]
    assert deltas > 3, "text arrives in several deltas"
    assert events[0].message.usage.input_tokens == unary.usage.input_tokens
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == _text(unary)
    assert events[-2].delta.stop_reason == "max_tokens" and events[-2].usage.output_tokens == 20
    with client.messages.stream(model=MODEL, max_tokens=20, messages=HELLO, extra_body=GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == _text(final) == _text(unary)
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 20


def test_closing_a_stream_cancels_the_generation(server, client):
    with client.messages.stream(model=MODEL, max_tokens=3000, messages=HELLO, extra_body=GREEDY) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
        assert metric(server, "genai_requests_running", name=MODEL) == 1
    wait_for(lambda: metric(server, "genai_requests_running", name=MODEL) == 0, 10,
             message="the generation cancelled after the client left")


def test_stop_sequence_ends_the_turn_and_is_reported(client):
    full = _text(client.messages.create(model=MODEL, max_tokens=30, messages=HELLO, extra_body=GREEDY))
    words = full.split()
    assert len(words) > 4, full
    stop = words[len(words) // 2]
    expected = full[: full.index(stop)]
    unary = client.messages.create(model=MODEL, max_tokens=30, messages=HELLO, stop_sequences=[stop, "@@@"],
                                   extra_body=GREEDY)
    assert (unary.stop_reason, unary.stop_sequence, _text(unary)) == ("stop_sequence", stop, expected)
    with client.messages.stream(model=MODEL, max_tokens=30, messages=HELLO, stop_sequences=[stop],
                                extra_body=GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence, streamed) == ("stop_sequence", stop, expected)


def test_tool_use_round_trip(client):
    question = [{"role": "user", "content": "What is 2 plus 3?"}]
    first = client.messages.create(model=MODEL, max_tokens=100, messages=question, tools=[ADD, WEATHER],
                                   tool_choice={"type": "any"}, extra_body=GREEDY)
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.id and call.name in ("add", "get_weather")
    jsonschema.validate(call.input, {"add": ADD, "get_weather": WEATHER}[call.name]["input_schema"])
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "5"}
    second = client.messages.create(
        model=MODEL, max_tokens=30, tools=[ADD, WEATHER], extra_body=GREEDY,
        messages=[*question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}])
    assert second.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert second.usage.input_tokens > first.usage.input_tokens  # the call and its result are in the prompt


def test_named_tool_is_called_and_streamed_as_input_json(client):
    kwargs = dict(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "What's the weather in Paris?"}],
                  tools=[ADD, WEATHER], tool_choice={"type": "tool", "name": "get_weather"}, extra_body=GREEDY)
    unary = client.messages.create(**kwargs)
    events = list(client.messages.create(stream=True, **kwargs))
    start = next(e for e in events if e.type == "content_block_start")
    assert start.content_block.type == "tool_use" and start.content_block.name == "get_weather"
    pieces = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert len(pieces) > 2 and all(e.delta.type == "input_json_delta" for e in events
                                   if e.type == "content_block_delta")
    call = next(block for block in unary.content if block.type == "tool_use")
    assert json.loads("".join(pieces)) == call.input and "city" in call.input
    assert next(e for e in events if e.type == "message_delta").delta.stop_reason == "tool_use"
    with client.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [call.input]


def test_tool_choice_none_answers_in_text(client):
    r = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Add 2 and 3."}],
                               tools=[ADD], tool_choice={"type": "none"}, extra_body=GREEDY)
    assert [b.type for b in r.content] == ["text"] and r.stop_reason != "tool_use"


def test_count_tokens_equals_the_messages_input_tokens(client):
    kwargs = dict(model=MODEL, system=[{"type": "text", "text": "You are terse."}], tools=[ADD],
                  messages=[{"role": "user", "content": [{"type": "text", "text": "Add 1 and 2."}]}])
    counted = client.messages.count_tokens(**kwargs)
    used = client.messages.create(max_tokens=1, **kwargs).usage.input_tokens
    assert counted.input_tokens == used > 20


def test_thinking_arrives_as_thinking_blocks_and_deltas(client):
    kwargs = dict(model=THINKING, max_tokens=12, messages=HELLO, thinking={"type": "adaptive"}, extra_body=GREEDY)
    unary = client.messages.create(**kwargs)
    assert unary.content[0].type == "thinking" and unary.content[0].thinking
    events = list(client.messages.create(stream=True, **kwargs))
    assert events[1].type == "content_block_start" and events[1].content_block.type == "thinking"
    streamed = "".join(e.delta.thinking for e in events if e.type == "content_block_delta")
    assert streamed == unary.content[0].thinking


def _raw(server, body: dict, headers: dict | None = None) -> httpx.Response:
    headers = {"x-api-key": KEY} if headers is None else headers
    return httpx.post(f"{server.url}/v1/messages", json=body, headers=headers, timeout=60)


@pytest.mark.parametrize("body,words", [
    ({"model": MODEL, "messages": HELLO}, "max_tokens"),
    ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}, "role"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO, "frequency_penalty": 1}, "frequency_penalty"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO, "temperature": 1.5}, "temperature"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO, "stop_sequences": [""]}, "stop_sequences"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO, "thinking": {"type": "enabled", "budget_tokens": 2000}},
     "thinking"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO, "tools": [{"name": "web_search", "type": "web_search"}]},
     "tools"),
    ({"model": MODEL, "max_tokens": 1500, "messages": HELLO, "thinking": {"type": "enabled", "budget_tokens": 1024}},
     "reasoning parser"),
    ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]}, "image"),
])
def test_invalid_requests_are_400_in_anthropics_error_shape(server, client, body, words):
    r = _raw(server, body)
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert words in error["error"]["message"]
    assert client.messages.create(model=MODEL, max_tokens=1, messages=HELLO).stop_reason == "max_tokens"


def test_sdk_raises_its_own_errors(client):
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=5, messages=HELLO)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MODEL, max_tokens=5, messages=HELLO, extra_body={"unknown_field": 1})


def test_the_key_is_taken_from_x_api_key_or_bearer(server):
    wrong = anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        wrong.messages.create(model=MODEL, max_tokens=1, messages=HELLO)
    assert refused.value.body == {"type": "error", "error": {
        "type": "authentication_error", "message": "Unauthorized request due to invalid or missing api-key"}}
    body = {"model": MODEL, "max_tokens": 1, "messages": HELLO}
    assert _raw(server, body, {}).status_code == 401
    assert _raw(server, body, {"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert _raw(server, body).status_code == 200


@pytest.mark.parametrize("prefix", ["/v3", "/v3/v1"])
def test_messages_are_served_under_the_v3_prefixes_too(server, prefix):
    r = httpx.post(f"{server.url}{prefix}/messages", json={"model": MODEL, "max_tokens": 2, "messages": HELLO},
                   headers={"x-api-key": KEY}, timeout=60)
    assert r.status_code == 200 and r.json()["usage"]["output_tokens"] == 2
