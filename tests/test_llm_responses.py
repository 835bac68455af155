"""The Responses API and /tokenize through the real openai SDK and SmolLM2."""
from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.conftest import LLM

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                          "required": ["city"]}}


def test_unary_response_answers_with_usage(client):
    r = client.responses.create(model=LLM, input="What is the capital of France?", max_output_tokens=30,
                                temperature=0)
    assert r.status == "completed" and r.object == "response"
    assert "Paris" in r.output_text
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.input_tokens > 5 and 0 < r.usage.output_tokens <= 30
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_streamed_response_has_the_typed_event_sequence_and_same_text(client):
    unary = client.responses.create(model=LLM, input="What is the capital of France?", max_output_tokens=30,
                                    temperature=0)
    events = list(client.responses.create(model=LLM, input="What is the capital of France?", max_output_tokens=30,
                                          temperature=0, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == unary.output_text == events[-1].response.output_text


def test_sdk_stream_helper_and_instructions(client):
    with client.responses.stream(model=LLM, input="What is the capital of France?", instructions="Answer briefly.",
                                 max_output_tokens=60, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(deltas) and final.output_text


def test_max_output_tokens_makes_the_response_incomplete(client):
    r = client.responses.create(model=LLM, input="Write a long story about a dragon.", max_output_tokens=5,
                                temperature=0)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 5


def test_message_items_and_v1_prefix(llm_server):
    v1 = openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="unused", max_retries=0)
    r = v1.responses.create(model=LLM, max_output_tokens=20, temperature=0, input=[
        {"role": "system", "content": "You are a geography assistant."},
        {"role": "user", "content": [{"type": "input_text", "text": "What is the capital of France?"}]}])
    assert "Paris" in r.output_text


def test_function_call_out_and_its_output_back_in(client):
    r = client.responses.create(model=LLM, input="What's the weather in Paris?", tools=[WEATHER],
                                tool_choice="required", max_output_tokens=80, temperature=0)
    calls = [item for item in r.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].call_id
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER["parameters"])
    follow_up = client.responses.create(model=LLM, tools=[WEATHER], max_output_tokens=30, temperature=0, input=[
        {"role": "user", "content": "What's the weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name, "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 24 degrees"}])
    assert follow_up.status in ("completed", "incomplete") and follow_up.output


def test_streamed_function_call_events(client):
    events = list(client.responses.create(model=LLM, input="What's the weather in Paris?", tools=[WEATHER],
                                          tool_choice="required", max_output_tokens=80, temperature=0, stream=True))
    kinds = [e.type for e in events]
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.name == "get_weather"
    assert "response.function_call_arguments.delta" in kinds
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(arguments) == json.loads(done.arguments)
    final = events[-1].response
    assert final.output[0].type == "function_call" and json.loads(final.output[0].arguments) == json.loads(arguments)


class City(BaseModel):
    name: str
    country: str


def test_text_format_json_schema_and_sdk_parse(client):
    r = client.responses.parse(model=LLM, input="Name a big city.", text_format=City, max_output_tokens=400,
                               temperature=0)
    assert r.status == "completed", r.output_text
    assert isinstance(r.output_parsed, City) and r.output_parsed.name


@pytest.mark.parametrize("kwargs,fragment,param", [
    pytest.param({"input": ""}, "input", "input", id="input-empty-string"),
    pytest.param({"input": []}, "input", "input", id="input-empty-list"),
    pytest.param({"input": "x", "tool_choice": "required"}, "tool_choice", "tool_choice",
                 id="tool_choice-without-tools"),
    pytest.param({"input": [{"type": "mystery"}]}, "mystery", "input", id="input-unknown-item-type"),
    # reported under the chat name text.format maps to
    pytest.param({"input": "x", "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "bogus"}}}},
                 "bogus", "response_format", id="text-format-uncompilable"),
])
def test_invalid_responses_requests_are_400(client, kwargs, fragment, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=LLM, max_output_tokens=5, **kwargs)
    assert fragment in info.value.body["message"] or fragment == info.value.body["param"], info.value.body
    assert info.value.body["param"] == param, info.value.body
    assert client.responses.create(model=LLM, input="Hi", max_output_tokens=5).status in ("completed", "incomplete")


def test_tokenize_returns_the_ids_the_model_counts(http, client):
    one = http.post("/v3/tokenize", json={"model": LLM, "text": "Hello world"})
    assert one.status_code == 200, one.text
    tokens = one.json()["tokens"]
    assert tokens and all(isinstance(t, int) for t in tokens)
    completion = client.completions.create(model=LLM, prompt="Hello world", max_tokens=1)
    assert completion.usage.prompt_tokens == len(tokens)
    many = http.post("/v1/tokenize", json={"model": LLM, "text": ["Hello world", "a"], "max_length": 1}).json()
    assert many["tokens"] == [tokens[:1], many["tokens"][1]] and len(many["tokens"][1]) == 1
    padded = http.post("/v3/tokenize", json={"model": LLM, "text": ["a", "Hello world"], "max_length": 4,
                                             "pad_to_max_length": True}).json()["tokens"]
    assert [len(t) for t in padded] == [4, 4]
    bad = http.post("/v3/tokenize", json={"model": LLM, "text": 5})
    assert bad.status_code == 400
    assert http.post("/v3/tokenize", json={"model": LLM, "text": "ok"}).status_code == 200
