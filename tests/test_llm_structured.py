"""Structured output (`response_format`) with the real SmolLM2: constrained JSON always validates."""
from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.conftest import LLM

SCHEMAS = {
    "person": ({"type": "object", "properties": {"name": {"type": "string", "maxLength": 16},
                                                 "age": {"type": "integer", "minimum": 0, "maximum": 120}},
                "required": ["name", "age"], "additionalProperties": False},
               "Invent a person with a name and an age."),
    "sentiment": ({"type": "object", "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "confident": {"type": "boolean"}}, "required": ["sentiment", "confident"], "additionalProperties": False},
        "Classify the sentiment: I love this movie!"),
    "colors": ({"type": "object", "properties": {"colors": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "string", "enum": ["red", "green", "blue", "yellow"]}}}, "required": ["colors"]},
        "List some colors."),
    "order": ({"type": "object", "properties": {
        "item": {"type": "string", "maxLength": 12}, "quantity": {"type": "integer", "minimum": 1, "maximum": 9},
        "express": {"type": ["boolean", "null"]}}, "required": ["item", "quantity", "express"]},
        "Order a pizza as JSON."),
}
# 20 sampled requests: every schema, streaming and not, different seeds
SAMPLED = [(name, seed, seed % 2 == 0) for name in SCHEMAS for seed in range(5)]


def _response_format(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name][0]}}


@pytest.mark.parametrize("name,seed,stream", SAMPLED, ids=[f"{n}-{s}-{'stream' if st else 'unary'}"
                                                          for n, s, st in SAMPLED])
def test_sampled_json_schema_output_always_validates(client, name, seed, stream):
    schema, prompt = SCHEMAS[name]
    kwargs = dict(model=LLM, messages=[{"role": "user", "content": prompt}], response_format=_response_format(name),
                  max_tokens=100, temperature=1.0, seed=seed)
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = chunks[-1].choices[0].finish_reason
    else:
        r = client.chat.completions.create(**kwargs)
        text, finish = r.choices[0].message.content, r.choices[0].finish_reason
    assert finish == "stop", text
    jsonschema.validate(json.loads(text), schema)


class Person(BaseModel):
    name: str
    age: int
    city: str


def test_openai_sdk_parse_with_a_pydantic_model(client):
    # unbounded strings: room enough for the constrained object to close (the SDK raises on "length")
    r = client.chat.completions.parse(model=LLM, messages=[{"role": "user", "content": "Invent a person."}],
                                      response_format=Person, max_tokens=400, temperature=0)
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    person = r.choices[0].message.parsed
    assert isinstance(person, Person) and person.name


def test_json_object_mode_returns_a_json_object(client):
    r = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Describe Paris in JSON."}],
                                       response_format={"type": "json_object"}, max_tokens=400, temperature=0)
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_completions_endpoint_honours_response_format(http):
    r = http.post("/v3/completions", json={"model": LLM, "prompt": "The answer is", "max_tokens": 100,
                                           "temperature": 0, "response_format": _response_format("sentiment")})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] == "stop", r.text
    jsonschema.validate(json.loads(r.json()["choices"][0]["text"]), SCHEMAS["sentiment"][0])


def test_schema_outside_the_compact_grammar_still_constrains(client):
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
              "required": ["code"]}
    r = client.chat.completions.create(
        model=LLM, messages=[{"role": "user", "content": "Give an airport code."}], max_tokens=100, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "airport", "schema": schema}})
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)


@pytest.mark.parametrize("response_format,fragment", [
    pytest.param({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}}, "bogus",
                 id="schema-unknown-type"),
    pytest.param({"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}}},
                 "response_format", id="schema-dangling-ref"),
    pytest.param({"type": "regex", "regex": "[a-"}, "Regex", id="regex-unclosed"),
    pytest.param({"type": "grammar", "grammar": "root ::= ("}, "response_format", id="grammar-unclosed"),
    pytest.param({"type": "xml"}, "response_format.type", id="type-xml"),
])
def test_schema_that_cannot_be_compiled_is_a_400_and_the_server_keeps_serving(client, response_format, fragment):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
                                       response_format=response_format)
    assert fragment in info.value.body["message"] or info.value.body["param"] == fragment
    assert info.value.body["param"] == "response_format", info.value.body
    ok = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=100,
                                        temperature=0, response_format=_response_format("sentiment"))
    jsonschema.validate(json.loads(ok.choices[0].message.content), SCHEMAS["sentiment"][0])
