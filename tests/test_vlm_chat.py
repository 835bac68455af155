"""Vision-language chat on the continuous-batching scheduler, with the openai SDK, on a tiny random LLaVA.

The model's words mean nothing; what is tested is that images reach it (they change the greedy
tokens), that image and text requests share the batch without changing each other's tokens, and
that streaming, tools, structured output, stop strings and the Responses API work with images.
"""
from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from tests.fixtures_vlm import IMAGE_TOKENS, QWEN2_VL_CHAT, TEXT_LLM, VLM, data_url, image_bytes

QUESTION = "What is in the image?"


def image_message(*seeds: int, text: str = QUESTION) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": data_url(image_bytes(seed)), "detail": "low"}}
              for seed in seeds]
    return [{"role": "user", "content": parts}]


def greedy(client: openai.OpenAI, messages: list[dict], **extra):
    return client.chat.completions.create(model=VLM, messages=messages, max_tokens=12, temperature=0, **extra)


def test_the_image_changes_the_greedy_tokens(vlm_client):
    a1 = greedy(vlm_client, image_message(0))
    a2 = greedy(vlm_client, image_message(0))
    b = greedy(vlm_client, image_message(1))
    assert a1.choices[0].message.content == a2.choices[0].message.content
    assert a1.choices[0].message.content != b.choices[0].message.content
    text_only = greedy(vlm_client, [{"role": "user", "content": QUESTION}])
    assert text_only.choices[0].message.content not in (a1.choices[0].message.content, b.choices[0].message.content)
    # usage counts the image's tokens, as the pipeline saw them
    assert a1.usage.prompt_tokens >= text_only.usage.prompt_tokens + IMAGE_TOKENS
    assert a1.usage.completion_tokens == 12


def test_images_reach_a_qwen2_vl_too(vlm_client):
    """Another architecture (3-D rotary positions, its own image tags), the same request shape."""
    def ask(messages):
        return vlm_client.chat.completions.create(model=QWEN2_VL_CHAT, messages=messages, max_tokens=10,
                                                  temperature=0)

    a, b = ask(image_message(0)), ask(image_message(1))
    text_only = ask([{"role": "user", "content": QUESTION}])
    assert a.choices[0].message.content != b.choices[0].message.content
    assert a.usage.prompt_tokens > text_only.usage.prompt_tokens


def test_two_images_in_one_message_differ_from_one(vlm_client):
    one = greedy(vlm_client, image_message(0)).choices[0].message.content
    two = greedy(vlm_client, image_message(0, 1)).choices[0].message.content
    assert one != two


def test_text_only_request_to_the_vision_model_works(vlm_client):
    reply = greedy(vlm_client, [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}])
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "length"
    plain = greedy(vlm_client, [{"role": "user", "content": "Hello"}])
    assert plain.choices[0].message.content == reply.choices[0].message.content


def test_streaming_with_an_image_equals_unary(vlm_client):
    unary = greedy(vlm_client, image_message(1)).choices[0].message.content
    chunks = list(greedy(vlm_client, image_message(1), stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == unary
    assert chunks[-1].usage.prompt_tokens > IMAGE_TOKENS


def test_stop_string_ends_an_image_answer(vlm_client):
    chunks = [c.choices[0].delta.content or "" for c in greedy(vlm_client, image_message(0), stream=True)
              if c.choices]
    text = "".join(chunks)
    # a later streamed piece (a token boundary) of plain text that occurs only there
    at = next(i for i in range(2, len(chunks))
              if chunks[i].strip().isalpha() and text.index(chunks[i]) == len("".join(chunks[:i])))
    cut = greedy(vlm_client, image_message(0), stop=[chunks[at]])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == "".join(chunks[:at])


def test_response_format_constrains_an_image_answer(vlm_client):
    schema = {"type": "object", "properties": {"animal": {"type": "string", "enum": ["cat", "dog"]}},
              "required": ["animal"], "additionalProperties": False}
    reply = vlm_client.chat.completions.create(
        model=VLM, messages=image_message(0, text="Which animal?"), max_tokens=30, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "animal", "schema": schema}})
    assert json.loads(reply.choices[0].message.content)["animal"] in ("cat", "dog")


def test_forced_tool_call_with_an_image(vlm_client):
    tools = [{"type": "function", "function": {"name": "describe", "parameters": {
        "type": "object", "properties": {"color": {"type": "string", "enum": ["red", "blue"]}},
        "required": ["color"]}}}]
    reply = vlm_client.chat.completions.create(
        model=VLM, messages=image_message(1, text="Describe the image."), tools=tools, tool_choice="required",
        max_tokens=60, temperature=0)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "describe"
    assert json.loads(call.function.arguments)["color"] in ("red", "blue")


def test_responses_api_input_image_matches_chat(vlm_client):
    url = data_url(image_bytes(1))
    response = vlm_client.responses.create(model=VLM, max_output_tokens=12, temperature=0, input=[
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION},
                                     {"type": "input_image", "image_url": url, "detail": "auto"}]}])
    chat = greedy(vlm_client, image_message(1)).choices[0].message.content
    assert response.output_text == chat
    assert response.usage.input_tokens > IMAGE_TOKENS
    streamed = vlm_client.responses.create(model=VLM, max_output_tokens=12, temperature=0, stream=True, input=[
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION},
                                     {"type": "input_image", "image_url": url}]}])
    deltas = "".join(e.delta for e in streamed if e.type == "response.output_text.delta")
    assert deltas == chat


def test_twenty_image_and_twenty_text_streams_get_their_solo_tokens(vlm_client, vlm_server):
    """A batch of mixed image and text requests gives each request the tokens it gets alone."""
    requests = [image_message(seed % 4) for seed in range(20)] + \
               [[{"role": "user", "content": f"Count to {i % 4 + 2}."}] for i in range(20)]
    solo = {}
    for messages in requests[:4] + requests[20:24]:
        solo[json.dumps(messages)] = greedy(vlm_client, messages).choices[0].message.content

    async def one(client: openai.AsyncOpenAI, messages: list[dict]) -> str:
        stream = await client.chat.completions.create(model=VLM, messages=messages, max_tokens=12,
                                                      temperature=0, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=f"{vlm_server.url}/v3", api_key="unused", max_retries=0) as client:
            return await asyncio.gather(*(one(client, m) for m in requests))

    results = asyncio.run(run())
    for messages, text in zip(requests, results, strict=True):
        assert text == solo[json.dumps(messages)]


def test_text_only_model_refuses_images_by_name(vlm_client):
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                             {"type": "image_url", "image_url": {"url": data_url(image_bytes(0))}}]}]
    with pytest.raises(openai.BadRequestError) as err:
        vlm_client.chat.completions.create(model=TEXT_LLM, messages=messages, max_tokens=4)
    assert f"Model {TEXT_LLM} does not accept images" in err.value.body["message"]
    assert err.value.body["param"] == "messages[0].content[1]"
    with pytest.raises(openai.BadRequestError) as err:
        vlm_client.responses.create(model=TEXT_LLM, max_output_tokens=4, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": data_url(image_bytes(0))}]}])
    assert err.value.body["param"] == "input[0].content[0]"
    assert "does not accept images" in err.value.body["message"]
    # and text still works on it
    reply = vlm_client.chat.completions.create(model=TEXT_LLM, messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=4)
    assert reply.choices[0].message.content


def test_models_list_shows_image_input(vlm_server):
    models = {m["id"]: m for m in httpx.get(f"{vlm_server.url}/v3/models").json()["data"]}
    assert models[VLM]["input_modalities"] == ["text", "image"]
    assert models[TEXT_LLM]["input_modalities"] == ["text"]
    assert models[VLM]["max_model_len"] == 2048
