"""Tools and tool_choice with the real SmolLM2 (generic JSON tool format, tool-guided generation)."""
from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from tests.conftest import LLM

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two numbers",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                   "required": ["a", "b"]}}}
TOOLS = [WEATHER, ADD]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
PROMPTS = ["What's the weather in Paris?", "What is 2 plus 3?", "Is it raining in Tokyo?", "Add 10 and 32.",
           "How warm is Berlin today?", "Sum 7 and 8, please.", "Weather in Rome?", "What is 40 plus 2?"]


def _assert_valid_calls(calls) -> None:
    assert calls
    for call in calls:
        assert call.type == "function" and call.id
        assert call.function.name in SCHEMAS
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


@pytest.mark.parametrize("seed", range(len(PROMPTS)))
def test_tool_choice_required_always_yields_a_valid_call(client, seed):
    r = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": PROMPTS[seed]}], tools=TOOLS,
                                       tool_choice="required", max_tokens=100, seed=seed)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    _assert_valid_calls(choice.message.tool_calls)


def test_named_function_is_the_one_called(client):
    weather = [{"role": "user", "content": "What's the weather in Paris?"}]
    r = client.chat.completions.create(model=LLM, messages=weather,
                                       tools=TOOLS, tool_choice={"type": "function", "function": {"name": "add"}},
                                       max_tokens=80, temperature=0)
    calls = r.choices[0].message.tool_calls
    _assert_valid_calls(calls)
    assert {c.function.name for c in calls} == {"add"}


def test_flat_tool_definitions_are_accepted_as_by_ovms(client):
    flat = {"type": "function", **ADD["function"]}
    r = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Add 1 and 2."}], tools=[flat],
                                       tool_choice="required", max_tokens=80, temperature=0)
    _assert_valid_calls(r.choices[0].message.tool_calls)


def test_streamed_tool_call_deltas_rebuild_the_unary_call(client):
    kwargs = dict(model=LLM, messages=[{"role": "user", "content": "What's the weather in Paris?"}], tools=TOOLS,
                  tool_choice="required", max_tokens=100, temperature=0)
    unary = client.chat.completions.create(**kwargs).choices[0].message.tool_calls
    chunks = [c for c in client.chat.completions.create(stream=True, **kwargs) if c.choices]
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    first = deltas[0]
    assert first.index == 0 and first.id and first.type == "function" and first.function.name == unary[0].function.name
    assert len(deltas) > 2, "arguments arrive in several fragments"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.index == 0)
    assert json.loads(arguments) == json.loads(unary[0].function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_sdk_stream_helper_accumulates_tool_calls(client):
    with client.chat.completions.stream(model=LLM, messages=[{"role": "user", "content": "Add 2 and 3."}], tools=TOOLS,
                                        tool_choice="required", max_tokens=100, temperature=0) as stream:
        final = stream.get_final_completion()
    _assert_valid_calls(final.choices[0].message.tool_calls)


def test_tool_results_go_back_into_the_conversation(client):
    first = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Weather in Paris?"}],
                                           tools=TOOLS, tool_choice="required", max_tokens=100, temperature=0)
    call = first.choices[0].message.tool_calls[0]
    messages = [{"role": "user", "content": "Weather in Paris?"},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 degrees"}]
    r = client.chat.completions.create(model=LLM, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=40,
                                       temperature=0)
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason in ("stop", "length")
    baseline = client.chat.completions.create(model=LLM, messages=messages[:1], tools=TOOLS, tool_choice="none",
                                              max_tokens=1)
    assert r.usage.prompt_tokens > baseline.usage.prompt_tokens + 20  # the call and its result are in the prompt


def test_tools_are_shown_to_the_model(client):
    without = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    with_tools = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Hi"}], tools=TOOLS,
                                                max_tokens=1)
    none = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Hi"}], tools=TOOLS,
                                          tool_choice="none", max_tokens=1)
    assert with_tools.usage.prompt_tokens > without.usage.prompt_tokens + 50
    assert none.usage.prompt_tokens == without.usage.prompt_tokens


def test_auto_without_a_call_is_plain_content(client):
    r = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Say hello in French."}],
                                       tools=TOOLS, tool_choice="auto", max_tokens=30, temperature=0)
    message = r.choices[0].message
    if message.tool_calls:  # the model may still decide to call: then it must be a valid call
        _assert_valid_calls(message.tool_calls)
        assert r.choices[0].finish_reason == "tool_calls"
    else:
        assert message.content and r.choices[0].finish_reason in ("stop", "length")


def test_parallel_tool_calls_may_return_several_calls(client):
    r = client.chat.completions.create(
        model=LLM, messages=[{"role": "user", "content": "Weather in Paris and in Rome?"}], tools=[WEATHER],
        tool_choice="required", parallel_tool_calls=True, max_tokens=150, temperature=0)
    _assert_valid_calls(r.choices[0].message.tool_calls)


@pytest.mark.parametrize("extra,fragment,param", [
    pytest.param({"tool_choice": "required"}, "tool_choice", "tool_choice", id="tool_choice-without-tools"),
    pytest.param({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope",
                 "tool_choice", id="tool_choice-unknown-function"),
    pytest.param({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice",
                 "tool_choice", id="tool_choice-unknown-mode"),
    pytest.param({"tools": [{"type": "retrieval"}]}, "tools", "tools.0.type", id="tool-not-a-function"),
    pytest.param({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools",
                 "tools.0.function.name", id="function-without-name"),
    pytest.param({"tools": [WEATHER, WEATHER]}, "Duplicate", "tools", id="duplicate-function"),
])
def test_invalid_tool_requests_are_400(client, extra, fragment, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=5, **extra)
    body = info.value.body
    assert fragment in body["message"] or fragment == body["param"], body
    assert body["param"] == param, body
    ok = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Add 1 and 2"}], tools=TOOLS,
                                        tool_choice="required", max_tokens=80, temperature=0)
    _assert_valid_calls(ok.choices[0].message.tool_calls)
