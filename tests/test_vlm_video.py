"""Video input and the context-length check with media, with the openai SDK, on the tiny random Qwen2-VL.

Videos are encoded in the test with PyAV (random noise, MP4). The model's words mean nothing; what
is tested is that the sampled frames reach it (two videos give different greedy tokens), that
streaming works, that every refused video is a 400 naming its part, and that image and video tokens
count against the model's context as text tokens do.
"""
from __future__ import annotations

import httpx
import openai
import pytest

from tests.fixtures_vlm import (
    LIMITS,
    QWEN2_VL_CHAT,
    QWEN2_VL_SHORT,
    SHORT_CONTEXT,
    TEXT_LLM,
    VLM,
    blank_png,
    data_url,
    image_bytes,
    video_bytes,
)

QUESTION = "What happens in the video?"


def video_message(*urls: str, text: str = QUESTION) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": text}]
    parts += [{"type": "video_url", "video_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]


def video_url(seed: int, **shape) -> str:
    return data_url(video_bytes(seed, **shape), "video/mp4")


def ask(client: openai.OpenAI, messages: list[dict], model: str = QWEN2_VL_CHAT, **extra):
    extra.setdefault("max_tokens", 10)
    return client.chat.completions.create(model=model, messages=messages, temperature=0, **extra)


def refused(client: openai.OpenAI, messages: list[dict], model: str = QWEN2_VL_CHAT, **extra) -> dict:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, messages, model, **extra)
    assert caught.value.status_code == 400
    return caught.value.body


def test_the_video_changes_the_greedy_tokens(vlm_client):
    a1 = ask(vlm_client, video_message(video_url(0)))
    a2 = ask(vlm_client, video_message(video_url(0)))
    b = ask(vlm_client, video_message(video_url(1)))
    text_only = ask(vlm_client, [{"role": "user", "content": QUESTION}])
    assert a1.choices[0].message.content == a2.choices[0].message.content
    assert a1.choices[0].message.content != b.choices[0].message.content
    # 8 frames at 4 fps sampled at --video_fps 4 = 8 frames, capped by --max_video_frames 6; Qwen2-VL
    # turns each pair of 64x48 frames into 2x2 merged patches: 3 x 4 tokens + 2 markers
    assert a1.usage.prompt_tokens == text_only.usage.prompt_tokens + 3 * 4 + 2


def test_a_video_and_an_image_in_one_message(vlm_client):
    image = {"type": "image_url", "image_url": {"url": data_url(image_bytes(0))}}
    both = video_message(video_url(0))
    both[0]["content"].append(image)
    video_only = ask(vlm_client, video_message(video_url(0)))
    reply = ask(vlm_client, both)
    assert reply.choices[0].message.content != video_only.choices[0].message.content
    assert reply.usage.prompt_tokens > video_only.usage.prompt_tokens


def test_streaming_with_a_video_equals_unary(vlm_client):
    unary = ask(vlm_client, video_message(video_url(2))).choices[0].message.content
    chunks = list(ask(vlm_client, video_message(video_url(2)), stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == unary
    assert chunks[-1].usage.completion_tokens == 10


def test_videos_from_an_allowed_host_and_the_local_folder(vlm_client, vlm_server, media_host):
    inline = ask(vlm_client, video_message(video_url(0))).choices[0].message.content
    assert ask(vlm_client, video_message(media_host.url("/a.mp4"))).choices[0].message.content == inline
    assert ask(vlm_client, video_message("a.mp4")).choices[0].message.content == inline
    body = refused(vlm_client, video_message(media_host.url("/a.mp4", host="localhost")))
    assert body["param"] == "messages[0].content[1]" and "--allowed_media_domains" in body["message"]


def test_models_list_shows_video_input(vlm_server):
    models = {m["id"]: m for m in httpx.get(f"{vlm_server.url}/v3/models").json()["data"]}
    assert models[QWEN2_VL_CHAT]["input_modalities"] == ["text", "image", "video"]
    assert models[VLM]["input_modalities"] == ["text", "image"]
    assert models[QWEN2_VL_SHORT]["max_model_len"] == SHORT_CONTEXT


def test_models_without_video_answer_400(vlm_client):
    for model in (VLM, TEXT_LLM):  # LLaVA takes images but no video in OpenVINO GenAI; a text model neither
        body = refused(vlm_client, video_message(video_url(0)), model)
        assert body["message"] == f"Model {model} does not accept video (messages[0].content[1])"
        assert body["param"] == "messages[0].content[1]"


@pytest.mark.parametrize("url, says", [
    (data_url(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50, "video/mp4"), "is not a video file that can be decoded"),
    (data_url(image_bytes(0), "image/png"), "data URL media type must be video/*"),
    (data_url(video_bytes(3, frames=60, size=(160, 120)), "video/mp4"), f"larger than {LIMITS['max_video_bytes']}"),
    ("data:video/mp4;base64,not base64!", "not valid base64"),
    ("ftp://example.com/a.mp4", "unsupported video URL scheme"),
], ids=["corrupt", "not-a-video", "too-large", "bad-base64", "scheme"])
def test_bad_videos_are_400s_naming_the_part(vlm_client, url, says):
    body = refused(vlm_client, [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": video_url(0)}},
        {"type": "text", "text": "and"},
        {"type": "video_url", "video_url": {"url": url}}]}])
    assert body["param"] == "messages[0].content[2]"
    assert says in body["message"]


def test_too_many_videos_and_a_malformed_part(vlm_client):
    body = refused(vlm_client, video_message(*[video_url(0)] * 3))
    assert body["param"] == "messages[0].content[3]" and "more than 2 videos" in body["message"]
    body = refused(vlm_client, [{"role": "user", "content": [{"type": "video_url", "video_url": {"uri": "x"}}]}])
    assert body["param"].startswith("messages") and "messages.0.content" in body["message"]
    assert ask(vlm_client, video_message(video_url(0))).choices[0].message.content  # still serving


# --- the context-length check counts image and video tokens -------------------------------------

def big_image() -> dict:  # one colour, so a few KB; Qwen2-VL gives it 3x3 merged patches + 2 markers
    return {"type": "image_url", "image_url": {"url": data_url(blank_png((900, 900)))}}


def image_prompt(images: int) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is in the image?"}] + [big_image()] * images}]


def test_images_count_against_the_context(vlm_client):
    one = ask(vlm_client, image_prompt(1), QWEN2_VL_SHORT, max_tokens=1)
    prompt = one.usage.prompt_tokens  # the pipeline's own count, text and image tokens
    room = SHORT_CONTEXT - prompt
    text = ask(vlm_client, [{"role": "user", "content": "What is in the image?"}], QWEN2_VL_SHORT, max_tokens=1)
    assert text.usage.prompt_tokens + room + 1 <= SHORT_CONTEXT  # counting the text alone would let this pass
    body = refused(vlm_client, image_prompt(1), QWEN2_VL_SHORT, max_tokens=room + 1)
    assert body["param"] == "max_tokens"
    assert body["message"] == (f"Number of prompt tokens: {prompt} + max tokens value: {room + 1} "
                               f"exceeds model max length: {SHORT_CONTEXT}")
    assert ask(vlm_client, image_prompt(1), QWEN2_VL_SHORT, max_tokens=room).usage.completion_tokens <= room
    body = refused(vlm_client, image_prompt(3), QWEN2_VL_SHORT)
    assert body["param"] == "messages" and "exceeds model max length" in body["message"]


def test_without_max_tokens_the_answer_stops_at_the_context(vlm_client):
    reply = vlm_client.chat.completions.create(model=QWEN2_VL_SHORT, messages=image_prompt(1), temperature=0,
                                               extra_body={"ignore_eos": True})
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.prompt_tokens + reply.usage.completion_tokens == SHORT_CONTEXT


def test_video_tokens_count_against_the_context(vlm_client):
    videos = [video_url(seed, frames=4, size=(300, 300)) for seed in (0, 1)]  # 2 x (2 x 4x4 patches + 2)
    body = refused(vlm_client, video_message(*videos), QWEN2_VL_SHORT)
    assert body["param"] == "messages" and "exceeds model max length" in body["message"]
