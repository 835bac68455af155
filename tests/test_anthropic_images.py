"""Anthropic Messages `image` blocks with the real `anthropic` SDK, on the tiny LLaVA (tests/fixtures_vlm.py).

Image blocks take the same path as chat's `image_url` parts (gateway/media.py): the same limits and
allowed hosts, and refusals are 400s in Anthropic's error shape naming the block.
"""
from __future__ import annotations

import base64

import anthropic
import openai
import pytest

from tests.fixtures_vlm import IMAGE_TOKENS, TEXT_LLM, VLM, data_url, image_bytes

GREEDY = {"temperature": 0}  # the tiny LLaVA runs in f32 (fixtures_vlm.py): greedy tokens are exact
QUESTION = "What is in the image?"


@pytest.fixture(scope="module")
def client(vlm_server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=vlm_server.url, api_key="unused", max_retries=0)


def base64_block(seed: int) -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                       "data": base64.b64encode(image_bytes(seed)).decode()}}


def ask(client: anthropic.Anthropic, *blocks: dict, model: str = VLM) -> anthropic.types.Message:
    content = [{"type": "text", "text": QUESTION}, *blocks]
    return client.messages.create(model=model, max_tokens=12, messages=[{"role": "user", "content": content}],
                                  extra_body=GREEDY)


def _text(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def test_the_image_changes_the_greedy_answer(client, media_host, vlm_server):
    a1, a2, b = ask(client, base64_block(0)), ask(client, base64_block(0)), ask(client, base64_block(1))
    assert _text(a1) == _text(a2)
    assert _text(a1) != _text(b)
    text_only = client.messages.create(model=VLM, max_tokens=12, extra_body=GREEDY,
                                       messages=[{"role": "user", "content": QUESTION}])
    assert a1.usage.input_tokens >= text_only.usage.input_tokens + IMAGE_TOKENS
    assert a1.stop_reason == "max_tokens" and a1.usage.output_tokens == 12
    # a URL source (an allowed host) is the same image as its bytes
    by_url = ask(client, {"type": "image", "source": {"type": "url", "url": media_host.url("a.png")}})
    assert _text(by_url) == _text(a1)
    # and the OpenAI chat route gives the same tokens for the same image
    chat = openai.OpenAI(base_url=f"{vlm_server.url}/v3", api_key="unused", max_retries=0).chat.completions.create(
        model=VLM, max_tokens=12, temperature=0, messages=[{"role": "user", "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image_url", "image_url": {"url": data_url(image_bytes(0))}}]}])
    assert chat.choices[0].message.content == _text(a1)


def test_streaming_with_an_image_equals_unary_and_count_tokens_counts_it(client):
    unary = ask(client, base64_block(1))
    with client.messages.stream(model=VLM, max_tokens=12, extra_body=GREEDY, messages=[
            {"role": "user", "content": [{"type": "text", "text": QUESTION}, base64_block(1)]}]) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == _text(unary)
    assert final.usage.input_tokens == unary.usage.input_tokens
    counted = client.messages.count_tokens(model=VLM, messages=[
        {"role": "user", "content": [{"type": "text", "text": QUESTION}, base64_block(1)]}])
    assert counted.input_tokens == unary.usage.input_tokens


@pytest.mark.parametrize("block,words", [
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "not base64!"}},
     "messages[0].content[1]: data URL is not valid base64"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                  "data": base64.b64encode(b"no picture here").decode()}},
     "messages[0].content[1]"),
    ({"type": "image", "source": {"type": "url", "url": "http://example.com/cat.png"}},
     "messages[0].content[1]: fetching images from example.com is not allowed"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                  "data": base64.b64encode(image_bytes(2, (300, 300))).decode()}},
     "messages[0].content[1]: image is larger than"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": "AAAA"}},
     "messages[0].content[1].source.media_type must be one of"),
])
def test_bad_image_blocks_are_400s_in_anthropic_shape(client, block, words):
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, block)
    body = err.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert words in body["error"]["message"]
    assert _text(ask(client, base64_block(0)))  # the server keeps serving


def test_text_only_model_refuses_images_by_block(client):
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, base64_block(0), model=TEXT_LLM)
    message = err.value.body["error"]["message"]
    assert f"Model {TEXT_LLM} does not accept images" in message and "messages[0].content[1]" in message
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model=TEXT_LLM, messages=[{"role": "user", "content": [base64_block(0)]}])
    assert _text(client.messages.create(model=TEXT_LLM, max_tokens=4, messages=[{"role": "user", "content": "hi"}]))


def test_images_only_in_user_messages(client):
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model=VLM, max_tokens=4, messages=[
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": [base64_block(0)]},
            {"role": "user", "content": "and?"}])
    assert "messages[1].content[0]: image blocks belong in user messages" in err.value.body["error"]["message"]
