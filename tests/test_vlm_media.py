"""Where chat images may come from, and their limits: every refusal is a 400 naming the part.

The server (tests/fixtures_vlm.py) allows http(s) images from 127.0.0.1 only, files only under its
media folder, 3 images per request, 60 000 bytes and 1 000 000 pixels per image, and a 2 s fetch timeout.
A local HTTP server on 127.0.0.1 serves the images; `localhost` is the same machine under another
host name, so it stands for a host that is not allowed.
"""
from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from PIL import Image

from tests.fixtures_vlm import VLM, blank_png, data_url, image_bytes

PART = "messages[0].content[1]"


def ask(client: openai.OpenAI, url: str):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is in the image?"},
                                             {"type": "image_url", "image_url": {"url": url}}]}]
    return client.chat.completions.create(model=VLM, messages=messages, max_tokens=8, temperature=0)


def refused(client: openai.OpenAI, url: str, fragment: str, param: str = PART) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, url)
    assert err.value.body["param"] == param
    assert param in err.value.body["message"]
    assert fragment in err.value.body["message"], err.value.body["message"]


def answer(client: openai.OpenAI, url: str) -> str:
    return ask(client, url).choices[0].message.content


def test_allowed_host_is_fetched_and_gives_the_data_url_tokens(vlm_client, media_host):
    expected = answer(vlm_client, data_url(image_bytes(0)))
    assert answer(vlm_client, media_host.url("a.png")) == expected
    assert answer(vlm_client, media_host.url("redirect-same/a.png")) == expected  # same-host redirect
    assert answer(vlm_client, media_host.url("b.png")) != expected


def test_remote_url_from_an_unlisted_host_is_refused(vlm_client, media_host):
    refused(vlm_client, media_host.url("a.png", host="localhost"), "--allowed_media_domains")
    refused(vlm_client, "https://example.com/cat.png", "not allowed")


def test_redirect_to_another_host_is_refused(vlm_client, media_host):
    refused(vlm_client, media_host.url("redirect-other/a.png"), "redirects to another host")


def test_remote_fetch_limits(vlm_client, media_host):
    refused(vlm_client, media_host.url("big.png"), "larger than 60000 bytes")
    refused(vlm_client, media_host.url("missing.png"), "HTTP 404")
    refused(vlm_client, media_host.url("slow.png"), "timed out")


def test_local_files_only_under_the_allowed_folder(vlm_client, vlm_server):
    media = vlm_server.media
    expected = answer(vlm_client, data_url(image_bytes(0)))
    assert answer(vlm_client, (media / "a.png").as_uri()) == expected
    assert answer(vlm_client, "a.png") == expected  # relative to the allowed folder
    refused(vlm_client, str(media / ".." / "outside.png"), "'..'")
    refused(vlm_client, (vlm_server.folder / "outside.png").as_uri(), "outside the allowed folder")
    refused(vlm_client, str(media / "escape.png"), "outside the allowed folder")  # a symlink out
    refused(vlm_client, "/etc/passwd", "outside the allowed folder")


def test_decoding_limits_and_corrupt_images(vlm_client):
    refused(vlm_client, data_url(image_bytes(2, (300, 300))), "larger than 60000 bytes")
    refused(vlm_client, data_url(blank_png((1500, 1000))), "1500000 pixels")  # a small file, a large bitmap
    refused(vlm_client, data_url(b"garbage" * 50), "not a PNG, JPEG, WebP or GIF")
    refused(vlm_client, data_url(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50), "not a valid image")
    png = image_bytes(0)
    refused(vlm_client, data_url(png[: len(png) // 2]), "not a valid image")  # truncated
    refused(vlm_client, "data:image/png;base64,@@not-base64@@", "not valid base64")
    refused(vlm_client, "data:text/plain;base64," + base64.b64encode(b"hi").decode(), "image/*")
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")
    refused(vlm_client, data_url(bmp.getvalue(), "image/bmp"), "not a PNG, JPEG, WebP or GIF")
    refused(vlm_client, "ftp://127.0.0.1/a.png", "unsupported image URL scheme")


def test_jpeg_webp_and_gif_first_frame_are_accepted(vlm_client):
    frames = [Image.new("RGB", (40, 30), color) for color in ("red", "blue")]
    for fmt, media_type in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        assert answer(vlm_client, data_url(image_bytes(0, fmt=fmt), media_type))
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    red = io.BytesIO()
    frames[0].save(red, format="PNG")
    assert answer(vlm_client, data_url(gif.getvalue(), "image/gif")) == answer(vlm_client, data_url(red.getvalue()))


def test_too_many_images_names_the_first_one_over(vlm_client):
    parts = [{"type": "text", "text": "Compare."}] + [
        {"type": "image_url", "image_url": {"url": data_url(image_bytes(seed))}} for seed in range(4)]
    with pytest.raises(openai.BadRequestError) as err:
        vlm_client.chat.completions.create(model=VLM, messages=[{"role": "user", "content": parts}], max_tokens=4)
    assert err.value.body["param"] == "messages[0].content[4]"
    assert "more than 3 images" in err.value.body["message"]


def test_video_and_bad_parts_are_400s(vlm_client):
    with pytest.raises(openai.BadRequestError) as err:
        vlm_client.chat.completions.create(model=VLM, max_tokens=4, messages=[{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}]}])
    assert err.value.body["param"] == "messages[0].content[0]"
    with pytest.raises(openai.BadRequestError):
        vlm_client.chat.completions.create(model=VLM, max_tokens=4, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url(image_bytes(0)), "detail": "ultra"}}]}])
    with pytest.raises(openai.BadRequestError) as err:
        vlm_client.responses.create(model=VLM, max_output_tokens=4, input=[{"role": "user", "content": [
            {"type": "input_text", "text": "hi"}, {"type": "input_image", "file_id": "file-123"}]}])
    assert err.value.body["param"] == "input[0].content[1]"


def test_server_keeps_serving_after_the_refusals(vlm_client, vlm_server):
    assert httpx.get(f"{vlm_server.url}/v2/health/ready").status_code == 200
    assert answer(vlm_client, data_url(image_bytes(1)))
    log = vlm_server.log()
    assert "Traceback" not in log and '"status":500' not in log
