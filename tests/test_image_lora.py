"""Image-generation LoRA as OVMS serves it: `source_loras` aliases used as the request's model, and
per-request `lora_alphas`, on the tiny Stable Diffusion with a real adapter."""
from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.fixtures_image import ensure_tiny_sd
from tests.fixtures_image_lora import tiny_sd_lora
from tests.helpers import F32, write_config
from tests.server import ServerProcess

MODEL, ALIAS = "tiny-sd", "sketch"
BODY = {"prompt": "a cat", "size": "64x64", "num_inference_steps": 2, "seed": 7}


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("image-lora") / "config.json", [{
        "name": MODEL, "base_path": str(ensure_tiny_sd()), "task": "image_generation", "plugin_config": F32,
        "source_loras": f"{ALIAS}={tiny_sd_lora()}:1.0"}])
    server = ServerProcess("--config_path", str(config), log_name="image-lora").start()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client
    server.stop()


def _image(http, model: str, **extra) -> np.ndarray:
    response = http.post("/v3/images/generations", json={"model": model, **BODY, **extra})
    assert response.status_code == 200, response.text
    data = base64.b64decode(response.json()["data"][0]["b64_json"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) > 5.0


def test_the_alias_is_listed_as_a_model(http):
    models = {m["id"]: m for m in http.get("/v3/models").json()["data"]}
    assert models[ALIAS]["base_model"] == MODEL and models[MODEL]["lora_adapters"] == [ALIAS]


def test_the_alias_generates_with_the_adapter_and_the_base_stays_the_base(http):
    base = _image(http, MODEL)
    tuned = _image(http, ALIAS)
    assert _differs(base, tuned)
    assert np.array_equal(_image(http, MODEL), base)  # switching back gives the base weights
    assert np.array_equal(_image(http, ALIAS), tuned)


def test_lora_alphas_override_the_alias_alpha_or_blend_into_the_base(http):
    tuned = _image(http, ALIAS)
    assert _differs(_image(http, ALIAS, lora_alphas={ALIAS: 3.0}), tuned)
    assert np.array_equal(_image(http, MODEL, lora_alphas={ALIAS: 1.0}), tuned)
    assert np.array_equal(_image(http, ALIAS, lora_alphas={ALIAS: 0.0}), _image(http, MODEL))


@pytest.mark.parametrize("alphas", [{"nope": 1.0}, {ALIAS: "x"}, [1.0]])
def test_bad_lora_alphas_are_a_400_naming_them(http, alphas):
    response = http.post("/v3/images/generations", json={"model": ALIAS, **BODY, "lora_alphas": alphas})
    assert response.status_code == 400 and response.json()["error"]["param"].startswith("lora_alphas")


def test_edits_take_the_alias_too(http):
    source = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(source, "PNG")

    def edit(model: str) -> np.ndarray:
        response = http.post("/v3/images/edits", files={"image": ("in.png", source.getvalue(), "image/png")},
                             data={"model": model, "prompt": "a dog", "num_inference_steps": "2", "seed": "3",
                                   "strength": "0.9"})
        assert response.status_code == 200, response.text
        data = base64.b64decode(response.json()["data"][0]["b64_json"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)

    assert _differs(edit(MODEL), edit(ALIAS))
