"""OpenAI images API on a tiny random Stable Diffusion model, through the real openai SDK."""
from __future__ import annotations

import asyncio
import base64
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tests.fixtures_image import ensure_tiny_sd
from tests.helpers import F32, metric, wait_for, write_config
from tests.server import ServerProcess

MODEL = "tiny-sd"
SPLIT_MODEL = "tiny-sd-split"  # the same files, compiled per part (text encoder, denoiser, VAE)
STATIC_MODEL = "tiny-sd-static"  # the same files, reshaped to static shapes (as NPU needs)
GEN = "/v3/images/generations"
EDITS = "/v3/images/edits"
MAX_UPLOAD = 200_000
FAST = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("images") / "config.json", [
        {"name": MODEL, "base_path": str(ensure_tiny_sd()), "task": "image_generation",
         "max_resolution": "512x512", "default_num_inference_steps": 3, "max_num_inference_steps": 1000,
         "max_num_images_per_prompt": 4, "max_queue_size": 1, "max_upload_bytes": MAX_UPLOAD},
        {"name": SPLIT_MODEL, "base_path": str(ensure_tiny_sd()), "device": "CPU CPU CPU", "plugin_config": F32,
         "default_resolution": "32x16", "max_upload_bytes": MAX_UPLOAD},
        {"name": STATIC_MODEL, "base_path": str(ensure_tiny_sd()), "resolution": "32x16", "num_images_per_prompt": 2,
         "max_upload_bytes": MAX_UPLOAD}])
    server = ServerProcess("--config_path", str(config), "--metrics_enable", log_name="images").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sdk(image_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{image_server.url}/v3", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def http(image_server):
    with httpx.Client(base_url=image_server.url, timeout=120) as client:
        yield client


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(width: int, height: int, seed: int = 0) -> bytes:
    return png_bytes(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def openai_mask(width: int, height: int) -> bytes:
    """OpenAI's mask convention: opaque everywhere except a transparent square to repaint."""
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[height // 4: 3 * height // 4, width // 4: 3 * width // 4, 3] = 0
    return png_bytes(rgba, "RGBA")


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body even without files (httpx would send a urlencoded form then)."""
    boundary = "genai-gateway-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                     f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG"
    image.load()
    return image


def image_metric(http, family: str) -> float:
    return metric(http, family, name=MODEL)


def wait_idle(http, timeout: float = 60.0) -> None:
    wait_for(lambda: image_metric(http, "genai_requests_running") == 0
             and image_metric(http, "genai_requests_waiting") == 0, timeout, 0.1, "no image request running")


# --- generations ---------------------------------------------------------------------------------

def test_generate_returns_n_decodable_pngs_of_the_requested_size(sdk):
    result = sdk.images.generate(model=MODEL, prompt="a red cat", n=3, size="64x32", response_format="b64_json",
                                 extra_body=FAST)
    assert isinstance(result.created, int) and result.created > 0
    assert len(result.data) == 3
    for item in result.data:
        assert item.url is None
        image = decode(item.b64_json)
        assert image.size == (64, 32) and image.mode == "RGB"


def test_default_size_is_the_models_and_width_height_are_accepted(http):
    r = http.post(GEN, json={"model": MODEL, "prompt": "a dog", **FAST})
    assert r.status_code == 200, r.text
    assert decode(r.json()["data"][0]["b64_json"]).size == (64, 64)  # the tiny model's own default
    r = http.post(GEN, json={"model": MODEL, "prompt": "a dog", "width": 48, "height": 16, **FAST})
    assert r.status_code == 200, r.text
    assert decode(r.json()["data"][0]["b64_json"]).size == (48, 16)


def test_same_seed_gives_the_same_bytes_and_another_seed_differs(sdk):
    def one(seed: int) -> str:
        r = sdk.images.generate(model=MODEL, prompt="a cat", size="32x32", extra_body={**FAST, "seed": seed})
        return r.data[0].b64_json

    first, again, other = one(7), one(7), one(8)
    assert first == again
    assert first != other


def test_unseeded_requests_differ(sdk):
    a = sdk.images.generate(model=MODEL, prompt="a cat", size="32x32", extra_body=FAST).data[0].b64_json
    b = sdk.images.generate(model=MODEL, prompt="a cat", size="32x32", extra_body=FAST).data[0].b64_json
    assert a != b


def test_ovms_extensions_change_the_image(sdk):
    def one(**extra) -> str:
        seed = {} if "rng_seed" in extra else {"seed": 3}
        return sdk.images.generate(model=MODEL, prompt="a cat", size="32x32",
                                   extra_body={**FAST, **seed, **extra}).data[0].b64_json

    plain = one()
    assert one(negative_prompt="a dog") != plain
    assert one(guidance_scale=1.0) != plain
    assert one(num_inference_steps=3) != plain
    assert one(rng_seed=3) == plain  # OVMS's name for the seed


def test_per_part_devices_and_plugin_config_are_accepted_and_the_default_resolution_comes_from_config(sdk):
    models = {m.id: m for m in sdk.models.list().data}
    assert models[SPLIT_MODEL].model_extra["kind"] == "image"
    assert models[SPLIT_MODEL].model_extra["modes"] == ["text2image", "image2image", "inpainting"]
    assert models[SPLIT_MODEL].model_extra["default_resolution"] == "32x16"
    assert models[MODEL].model_extra["default_resolution"] == "64x64"  # the model's own
    r = sdk.images.generate(model=SPLIT_MODEL, prompt="a cat", extra_body={**FAST, "seed": 4})
    assert decode(r.data[0].b64_json).size == (32, 16)
    again = sdk.images.generate(model=SPLIT_MODEL, prompt="a cat", extra_body={**FAST, "seed": 4})
    assert again.data[0].b64_json == r.data[0].b64_json  # seeded generation on the split model is reproducible


def test_static_shape_model_serves_its_compiled_shape_and_rejects_others(http):
    r = http.post(GEN, json={"model": STATIC_MODEL, "prompt": "a cat", **FAST})
    assert r.status_code == 200, r.text
    assert [decode(d["b64_json"]).size for d in r.json()["data"]] == [(32, 16), (32, 16)]
    body, headers = multipart({"model": STATIC_MODEL, "prompt": "a dog", "num_inference_steps": "4",
                               "strength": "0.5"}, [("image", noise_png(64, 64))])
    r = http.post(EDITS, content=body, headers=headers)  # GenAI encodes one image per batch only
    _assert_error(r, 400, "does not support image2image")
    for extra, fragment in (({"size": "64x64"}, "static resolution 32x16"), ({"n": 1}, "n=2"),
                            ({"guidance_scale": 1.0}, "guidance_scale=7.5")):
        _assert_error(http.post(GEN, json={"model": STATIC_MODEL, "prompt": "a", **FAST, **extra}), 400, fragment)
        _good_request_works(http)


def test_v1_prefix_serves_images_too(image_server):
    client = openai.OpenAI(base_url=f"{image_server.url}/v1", api_key="unused", max_retries=0)
    r = client.images.generate(model=MODEL, prompt="a cat", size="16x16", extra_body=FAST)
    assert decode(r.data[0].b64_json).size == (16, 16)


# --- edits -------------------------------------------------------------------------------------

def test_edit_without_mask_is_image_to_image(sdk):
    source = noise_png(64, 48)
    result = sdk.images.edit(model=MODEL, image=("in.png", source, "image/png"), prompt="a dog", n=2,
                             extra_body={"num_inference_steps": 4, "strength": 0.5, "seed": 1})
    assert len(result.data) == 2
    assert all(decode(d.b64_json).size == (64, 48) for d in result.data)  # the input's size by default
    resized = sdk.images.edit(model=MODEL, image=("in.png", source, "image/png"), prompt="a dog", size="32x32",
                              extra_body={"num_inference_steps": 4, "strength": 0.5, "seed": 1})
    assert decode(resized.data[0].b64_json).size == (32, 32)


def test_edit_with_mask_is_inpainting(sdk):
    source = noise_png(64, 64, seed=1)
    body = {"num_inference_steps": 2, "seed": 5}
    masked = sdk.images.edit(model=MODEL, image=("in.png", source, "image/png"),
                             mask=("mask.png", openai_mask(64, 64), "image/png"), prompt="a dog", n=2,
                             extra_body=body)
    assert len(masked.data) == 2
    assert all(decode(d.b64_json).size == (64, 64) for d in masked.data)
    again = sdk.images.edit(model=MODEL, image=("in.png", source, "image/png"),
                            mask=("mask.png", openai_mask(64, 64), "image/png"), prompt="a dog", n=2,
                            extra_body=body)
    assert [d.b64_json for d in again.data] == [d.b64_json for d in masked.data]
    unmasked = sdk.images.edit(model=MODEL, image=("in.png", source, "image/png"), prompt="a dog",
                               extra_body={**body, "strength": 1.0})
    assert unmasked.data[0].b64_json != masked.data[0].b64_json


def test_jpeg_input_and_grayscale_mask_are_accepted(http):
    buffer = io.BytesIO()
    Image.open(io.BytesIO(noise_png(32, 32))).save(buffer, format="JPEG")
    gray_mask = np.zeros((32, 32), dtype=np.uint8)
    gray_mask[8:24, 8:24] = 255
    r = http.post(EDITS, data={"model": MODEL, "prompt": "a cat", "num_inference_steps": "2"},
                  files={"image": ("in.jpg", buffer.getvalue(), "image/jpeg"),
                         "mask": ("m.png", png_bytes(gray_mask, "L"), "image/png")})
    assert r.status_code == 200, r.text
    assert decode(r.json()["data"][0]["b64_json"]).size == (32, 32)


# --- cancellation and admission ----------------------------------------------------------------

def test_client_disconnect_stops_generation_within_steps(image_server, http):
    wait_idle(http)
    steps_before = image_metric(http, "genai_image_steps")
    cancelled_before = image_metric(http, "genai_image_requests_cancelled")
    images_before = image_metric(http, "genai_images_generated")

    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=f"{image_server.url}/v3", api_key="unused", max_retries=0)
        task = asyncio.create_task(client.images.generate(
            model=MODEL, prompt="a long one", size="64x64", extra_body={"num_inference_steps": 1000}))
        while image_metric(http, "genai_image_steps") < steps_before + 3:  # it is running
            assert not task.done(), task
            await asyncio.sleep(0.05)
        task.cancel()  # the SDK closes the connection
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()

    asyncio.run(run())
    wait_for(lambda: image_metric(http, "genai_image_requests_cancelled") == cancelled_before + 1, 120)
    wait_idle(http)
    steps_run = image_metric(http, "genai_image_steps") - steps_before
    assert 3 <= steps_run < 1000
    assert image_metric(http, "genai_images_generated") == images_before
    r = http.post(GEN, json={"model": MODEL, "prompt": "a cat", **FAST})
    assert r.status_code == 200 and len(r.json()["data"]) == 1


def test_full_queue_answers_503_then_queued_and_running_requests_cancel_cleanly(image_server, http):
    wait_idle(http)
    cancelled_before = image_metric(http, "genai_image_requests_cancelled")
    long_body = {"model": MODEL, "prompt": "slow", "size": "64x64", "num_inference_steps": 1000}

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(base_url=image_server.url, timeout=300) as client:
            running = asyncio.create_task(client.post(GEN, json=long_body))
            await asyncio.to_thread(wait_for, lambda: image_metric(http, "genai_requests_running") == 1, 120)
            queued = asyncio.create_task(client.post(GEN, json=long_body))  # max_queue_size is 1
            await asyncio.to_thread(wait_for, lambda: image_metric(http, "genai_requests_waiting") == 1, 120)
            rejected = await client.post(GEN, json=long_body)
            for task in (queued, running):
                task.cancel()
            await asyncio.gather(queued, running, return_exceptions=True)
            return rejected

    rejected = asyncio.run(run())
    assert rejected.status_code == 503
    assert rejected.headers["Retry-After"] == "1"
    assert rejected.json()["error"]["type"] == "server_overloaded"
    wait_for(lambda: image_metric(http, "genai_image_requests_cancelled") == cancelled_before + 2, 120)
    wait_idle(http)
    r = http.post(GEN, json={"model": MODEL, "prompt": "a cat", **FAST})
    assert r.status_code == 200


# --- validation --------------------------------------------------------------------------------

A = {"model": MODEL, "prompt": "a"}
GEN_CASES = [
    # body, status, fragment of error.message (or the param), error.param
    pytest.param({"model": MODEL}, 400, "prompt", "prompt", id="prompt-missing"),
    pytest.param({"prompt": "a cat"}, 400, "model", "model", id="model-missing"),
    pytest.param({"model": MODEL, "prompt": ""}, 400, "prompt", "prompt", id="prompt-empty"),
    pytest.param({"model": MODEL, "prompt": 5}, 400, "prompt", "prompt", id="prompt-number"),
    pytest.param({**A, "n": 0}, 400, "n", "n", id="n-zero"),
    pytest.param({**A, "n": 5}, 400, "maxNumImagesPerPrompt", "n", id="n-above-limit"),
    pytest.param({**A, "n": "2"}, 400, "n", "n", id="n-string"),
    pytest.param({**A, "n": 2, "num_images_per_prompt": 2}, 400, "num_images_per_prompt", "num_images_per_prompt",
                 id="n-and-num_images_per_prompt"),
    pytest.param({**A, "size": "64"}, 400, "WxH", "size", id="size-one-number"),
    pytest.param({**A, "size": "64x64x64"}, 400, "WxH", "size", id="size-three-numbers"),
    pytest.param({**A, "size": "0x64"}, 400, "greater than 0", "size", id="size-zero-width"),
    pytest.param({**A, "size": "1024x64"}, 400, "maximum resolution", "size", id="size-above-max_resolution"),
    pytest.param({**A, "size": "63x64"}, 400, "multiples of 2", "size", id="size-odd-width"),
    pytest.param({**A, "size": "64x64", "width": 64}, 400, "size", "size", id="size-and-width"),
    pytest.param({**A, "height": 0}, 400, "height", "height", id="height-zero"),
    pytest.param({**A, "response_format": "url"}, 400, "Only b64_json is supported", "response_format",
                 id="response_format-url"),
    pytest.param({**A, "num_inference_steps": 0}, 400, "num_inference_steps", "num_inference_steps",
                 id="steps-zero"),
    pytest.param({**A, "num_inference_steps": 1001}, 400, "maxNumInferenceSteps", "num_inference_steps",
                 id="steps-above-limit"),
    pytest.param({**A, "num_inference_steps": 2.5}, 400, "num_inference_steps", "num_inference_steps",
                 id="steps-fraction"),
    pytest.param({**A, "guidance_scale": -1}, 400, "guidance_scale", "guidance_scale", id="guidance_scale-negative"),
    pytest.param({**A, "guidance_scale": "high"}, 400, "guidance_scale", "guidance_scale",
                 id="guidance_scale-string"),
    pytest.param({**A, "strength": 1.5}, 400, "strength", "strength", id="strength-above-1"),
    # GenAI's own checks: their errors name no parameter
    pytest.param({**A, "strength": 0.5, "num_inference_steps": 1}, 400, "Text 2 image", None,
                 id="strength-in-text2image"),
    pytest.param({**A, "negative_prompt": "b", "guidance_scale": 1.0, "num_inference_steps": 1}, 400,
                 "negative prompt", None, id="negative_prompt-without-guidance"),
    pytest.param({**A, "prompt_2": "b", "num_inference_steps": 1}, 400, "Prompt 2", None,
                 id="prompt_2-on-stable-diffusion"),
    pytest.param({**A, "seed": -1}, 400, "seed", "seed", id="seed-negative"),
    pytest.param({**A, "seed": 2**64}, 400, "seed", "seed", id="seed-too-large"),
    pytest.param({**A, "seed": 1, "rng_seed": 1}, 400, "rng_seed", "rng_seed", id="seed-and-rng_seed"),
    pytest.param({**A, "max_sequence_length": 0}, 400, "max_sequence_length", "max_sequence_length",
                 id="max_sequence_length-zero"),
    pytest.param({**A, "quality": "hd"}, 400, "quality", "quality", id="quality-unsupported"),
    pytest.param({**A, "style": "vivid"}, 400, "style", "style", id="style-unsupported"),
    pytest.param({**A, "user": "me"}, 400, "user", "user", id="user-unsupported"),
    pytest.param({**A, "stream": True}, 400, "stream", "stream", id="stream-unsupported"),
    pytest.param({**A, "partial_images": 2}, 400, "partial_images", "partial_images",
                 id="partial_images-unsupported"),
    pytest.param({"model": "missing-model", "prompt": "a"}, 404, "does not exist", "model", id="unknown-model"),
]


def _good_request_works(http) -> None:
    r = http.post(GEN, json={"model": MODEL, "prompt": "a cat", "size": "16x16", **FAST})
    assert r.status_code == 200, r.text
    assert decode(r.json()["data"][0]["b64_json"]).size == (16, 16)


_UNCHECKED = object()


def _assert_error(r: httpx.Response, status: int, fragment: str, param: object = _UNCHECKED) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"] or fragment == error.get("param"), error
    if param is not _UNCHECKED:
        assert error["param"] == param, error


@pytest.mark.parametrize("body,status,fragment,param", GEN_CASES)
def test_invalid_generation_request_is_rejected_then_server_still_serves(http, body, status, fragment, param):
    _assert_error(http.post(GEN, json=body), status, fragment, param)
    _good_request_works(http)


def test_image_model_does_not_serve_chat_and_malformed_json_is_a_400(http):
    r = http.post("/v3/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    _assert_error(r, 400, "does not serve chat/completions")
    _good_request_works(http)
    r = http.post(GEN, content=b"{not json", headers={"Content-Type": "application/json"})
    _assert_error(r, 400, "JSON")
    _good_request_works(http)


def _edit_cases():
    image = noise_png(32, 32)
    ok = {"model": MODEL, "prompt": "a dog", "num_inference_steps": "2"}
    big = noise_png(300, 300)  # about 270 kB of incompressible noise, above the 200 kB upload limit
    assert len(big) > MAX_UPLOAD
    return [
        # form fields, files, status, fragment of error.message (or the param), error.param
        pytest.param(ok, {}, 400, "image field is missing", "image", id="image-missing"),
        pytest.param({**ok, "image": "not a file"}, {}, 400, "image must be sent as a file", "image",
                     id="image-as-text-field"),
        pytest.param({"model": MODEL}, {"image": image}, 400, "prompt", "prompt", id="prompt-missing"),
        pytest.param({"prompt": "x"}, {"image": image}, 400, "model", "model", id="model-missing"),
        pytest.param(ok, {"image": b"this is not an image"}, 400, "not an image file", "image",
                     id="image-not-an-image"),
        pytest.param(ok, {"image": noise_png(32, 32)[:60]}, 400, "not a valid image", "image", id="image-truncated"),
        pytest.param(ok, {"image": b""}, 400, "image is empty", "image", id="image-empty"),
        pytest.param(ok, {"image": image, "mask": noise_png(16, 16)}, 400, "same size", "mask",
                     id="mask-other-size"),
        pytest.param(ok, {"image": image, "mask": b"junk"}, 400, "mask", "mask", id="mask-not-an-image"),
        pytest.param(ok, {"image": big}, 400, "more than the limit", "image", id="image-above-upload-limit"),
        pytest.param(ok, {"image": noise_png(600, 8)}, 400, "maximum resolution", "image",
                     id="image-above-max_resolution"),
        pytest.param({**ok, "n": "two"}, {"image": image}, 400, "n", "n", id="n-word"),
        pytest.param({**ok, "n": "9"}, {"image": image}, 400, "maxNumImagesPerPrompt", "n", id="n-above-limit"),
        pytest.param({**ok, "strength": "2"}, {"image": image}, 400, "strength", "strength", id="strength-above-1"),
        pytest.param({**ok, "strength": "nan"}, {"image": image}, 400, "strength", "strength", id="strength-nan"),
        # GenAI's own check: no parameter named
        pytest.param({**ok, "strength": "0.1"}, {"image": image}, 400, "strength parameter", None,
                     id="strength-leaves-no-steps"),
        pytest.param({**ok, "size": "33x32"}, {"image": image}, 400, "multiples of 2", "size", id="size-odd-width"),
        pytest.param({**ok, "response_format": "url"}, {"image": image}, 400, "Only b64_json", "response_format",
                     id="response_format-url"),
        pytest.param({**ok, "quality": "high"}, {"image": image}, 400, "quality", "quality",
                     id="quality-unsupported"),
        pytest.param({**ok, "model": "missing-model"}, {"image": image}, 404, "does not exist", "model",
                     id="unknown-model"),
    ]


EDIT_CASES = _edit_cases()


@pytest.mark.parametrize("fields,files,status,fragment,param", EDIT_CASES)
def test_invalid_edit_request_is_rejected_then_server_still_serves(http, fields, files, status, fragment, param):
    body, headers = multipart(fields, list(files.items()))
    r = http.post(EDITS, content=body, headers=headers)
    _assert_error(r, status, fragment, param)
    _good_request_works(http)


def test_edit_needs_multipart_and_one_image(http):
    _assert_error(http.post(EDITS, json={"model": MODEL, "prompt": "a"}), 400, "multipart/form-data")
    _good_request_works(http)
    image = noise_png(32, 32)
    body, headers = multipart({"model": MODEL, "prompt": "a"}, [("image", image), ("image", image)])
    r = http.post(EDITS, content=body, headers=headers)
    _assert_error(r, 400, "exactly one image")
    _good_request_works(http)


def test_oversize_edit_body_is_refused_before_it_is_read(http):
    image = noise_png(32, 32)
    body, headers = multipart({"model": MODEL, "prompt": "a"}, [("image", image), ("mask", b"\0" * 3_000_000)])
    r = http.post(EDITS, content=body, headers=headers)
    _assert_error(r, 400, "larger than the limit")
    _good_request_works(http)
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))  # chunked: no Content-Length
    r = http.post(EDITS, content=chunks, headers=headers)
    _assert_error(r, 400, "larger than the limit")
    _good_request_works(http)


BAD_ENTRIES = {
    "bad-resolution": ({"max_resolution": "huge"}, "max_resolution"),
    "unknown-option": ({"steps": 4}, "unknown image_generation option(s): steps"),
    "static-n-without-resolution": ({"num_images_per_prompt": 2}, "need 'resolution'"),
    "missing-device": ({"device": "NPU"}, "cannot load"),
    "not-a-diffusers-model": ({"base_path": "/"}, "no model_index.json"),
}


def test_bad_image_model_entries_are_reported_with_a_clear_message(tmp_path):
    config = write_config(tmp_path / "config.json", [
        {"name": name, "base_path": str(ensure_tiny_sd()), "task": "image_generation", **entry}
        for name, (entry, _) in BAD_ENTRIES.items()])
    server = ServerProcess("--config_path", str(config), log_name="images-bad").start()
    try:
        status = httpx.get(f"{server.url}/v1/config", timeout=30).json()
        for name, (_, fragment) in BAD_ENTRIES.items():
            (version,) = status[name]["model_version_status"]
            assert fragment in version["status"]["error_message"], (name, version)
            r = httpx.post(f"{server.url}{GEN}", json={"model": name, "prompt": "a"}, timeout=30)
            assert r.status_code in (404, 503), r.text
    finally:
        server.stop()


def test_engine_calls_the_step_gate_before_every_denoising_step():
    """The hook a device arbiter will use to interleave diffusion steps with other engines' work."""
    from scheduler.image_engine import ImageEngine
    from servables.base import ModelSpec
    from servables.image import ImageParams, ImageServable

    servable = ImageServable(ModelSpec("gate", ensure_tiny_sd(), "image_generation"))
    servable.load()
    gate_calls: list[int] = []
    engine = ImageEngine(servable, step_gate=lambda: gate_calls.append(engine.stats().steps_total))
    engine.start()

    async def run():
        return await engine.submit(servable.prepare_generation(
            ImageParams(prompt="a cat", size="16x16", num_inference_steps=5, rng_seed=1))).result()

    try:
        result = asyncio.run(run())
    finally:
        engine.stop()
    assert result.steps == 5 and len(result.images) == 1
    assert gate_calls == [0, 1, 2, 3, 4]  # before step 1, 2, ... 5: never after the last one


@pytest.mark.slow
def test_config_reload_swaps_and_removes_an_image_model_without_failing_its_request(tmp_path):
    base = {"name": MODEL, "base_path": str(ensure_tiny_sd()), "max_num_inference_steps": 1000}
    config = write_config(tmp_path / "config.json", [base])
    server = ServerProcess("--config_path", str(config), "--file_system_poll_wait_seconds", "0",
                           "--metrics_enable", log_name="images-reload").start()
    slow = {"model": MODEL, "prompt": "a cat", "size": "32x32", "num_inference_steps": 300}
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client, ThreadPoolExecutor(1) as pool:
            for change in ([{**base, "default_num_inference_steps": 2}], []):  # changed, then removed
                in_flight = pool.submit(client.post, GEN, json=slow)
                wait_for(lambda in_flight=in_flight: in_flight.done()
                         or image_metric(client, "genai_requests_running") == 1, 120)
                write_config(config, change)
                assert client.post("/v1/config/reload").status_code == 201
                r = in_flight.result()
                assert r.status_code == 200, r.text  # the old instance finished it before unloading
                assert decode(r.json()["data"][0]["b64_json"]).size == (32, 32)
                if change:
                    r = client.post(GEN, json={"model": MODEL, "prompt": "a cat", "size": "16x16"})
                    assert r.status_code == 200, r.text  # the new instance serves, with its new default steps
            assert client.post(GEN, json={"model": MODEL, "prompt": "a"}).status_code == 404
    finally:
        server.stop()
