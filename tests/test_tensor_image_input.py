"""`layout: NHWC:NCHW`, `mapping_config.json` and binary (JPEG/PNG) inputs of classic models, through
tritonclient HTTP/gRPC and TFS REST."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.fixtures_tensor import start_grpc_server
from tests.model_cache import cached

WEIGHTS = np.array([1, 2, 3], dtype=np.float32).reshape(1, 3, 1, 1)


def _nchw_ir(root: Path, mapping: bool) -> None:
    """image [1,3,8,8] (NCHW) * per-channel weights 1, 2, 3 -> scaled [1,3,8,8]."""
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, 3, 8, 8], ov.Type.f32, name="image")
    scaled = ops.multiply(image, ops.constant(WEIGHTS))
    scaled.output(0).get_tensor().set_names({"scaled"})
    (root / "1").mkdir(parents=True)
    ov.save_model(ov.Model([ops.result(scaled)], [image], "nchw"), str(root / "1" / "model.xml"))
    if mapping:
        (root / "1" / "mapping_config.json").write_text(json.dumps({"inputs": {"image": "pixels"},
                                                                    "outputs": {"scaled": "weighted"}}))


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def decoded(data: bytes, size: int = 8) -> np.ndarray:
    """What a user decodes on their side: RGB, resized to the model's 8x8, as FP32 NHWC [1,8,8,3]."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)[None]


RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
JPEG = encoded(PIXELS, "JPEG")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    plain = cached("nchw-image", {"v": 1}, lambda root: _nchw_ir(root, False))
    mapped = cached("nchw-image-mapped", {"v": 1}, lambda root: _nchw_ir(root, True))
    config = tmp_path_factory.mktemp("image-input") / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "img", "base_path": str(plain), "layout": "NHWC:NCHW", "max_image_size": 64}},
        {"config": {"name": "mapped", "base_path": str(mapped), "layout": {"pixels": "NHWC:NCHW"}}},
        {"config": {"name": "nchw", "base_path": str(plain)}},
    ]}))
    server = start_grpc_server(config, "tensor-image")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


def bytes_input(module, name: str, images: list[bytes]):
    tensor = module.InferInput(name, [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


def fp32_input(module, name: str, array: np.ndarray):
    tensor = module.InferInput(name, list(array.shape), "FP32")
    tensor.set_data_from_numpy(array)
    return tensor


def test_layout_nhwc_nchw_takes_nhwc_tensors(http):
    assert http.get_model_metadata("img")["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [1, 8, 8, 3]}]
    assert http.get_model_metadata("nchw")["inputs"][0]["shape"] == [1, 3, 8, 8]
    nhwc = RNG.random((1, 8, 8, 3), dtype=np.float32)
    out = http.infer("img", [fp32_input(httpclient, "image", nhwc)]).as_numpy("scaled")
    assert np.allclose(out, nhwc.transpose(0, 3, 1, 2) * WEIGHTS)


def test_jpeg_as_bytes_equals_the_decoded_array_as_fp32(server, http):
    by_bytes = http.infer("img", [bytes_input(httpclient, "image", [JPEG])]).as_numpy("scaled")
    by_array = http.infer("img", [fp32_input(httpclient, "image", decoded(JPEG))]).as_numpy("scaled")
    assert np.array_equal(by_bytes, by_array)
    assert np.allclose(by_bytes, decoded(JPEG).transpose(0, 3, 1, 2) * WEIGHTS)
    with grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}") as grpc:
        png = encoded(PIXELS, "PNG")
        result = grpc.infer("img", [bytes_input(grpcclient, "image", [png])]).as_numpy("scaled")
        assert np.array_equal(result, PIXELS.astype(np.float32).transpose(2, 0, 1)[None] * WEIGHTS)  # lossless


def test_larger_images_are_resized_and_too_large_ones_refused(http):
    big = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    png = encoded(big, "PNG")
    out = http.infer("img", [bytes_input(httpclient, "image", [png])]).as_numpy("scaled")
    assert np.array_equal(out, decoded(png).transpose(0, 3, 1, 2) * WEIGHTS)
    huge = encoded(np.zeros((100, 100, 3), np.uint8), "PNG")  # max_image_size 64
    with pytest.raises(InferenceServerException) as error:
        http.infer("img", [bytes_input(httpclient, "image", [huge])])
    assert "100x100" in str(error.value) and "maximum resolution" in str(error.value)
    with pytest.raises(InferenceServerException) as error:
        http.infer("img", [bytes_input(httpclient, "image", [b"not an image"])])
    assert "image[0]" in str(error.value)


def test_binary_image_over_tfs_rest_b64(server):
    body = {"instances": [{"b64": base64.b64encode(JPEG).decode()}]}
    r = httpx.post(f"{server.url}/v1/models/img:predict", json=body)
    assert r.status_code == 200, r.text
    predictions = np.array(r.json()["predictions"], np.float32)  # one per instance
    assert np.array_equal(predictions, decoded(JPEG).transpose(0, 3, 1, 2) * WEIGHTS)


def test_mapping_config_renames_inputs_and_outputs(http):
    meta = http.get_model_metadata("mapped")
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [1, 8, 8, 3]}]
    assert meta["outputs"] == [{"name": "weighted", "datatype": "FP32", "shape": [1, 3, 8, 8]}]
    result = http.infer("mapped", [bytes_input(httpclient, "pixels", [JPEG])])
    assert np.allclose(result.as_numpy("weighted"), decoded(JPEG).transpose(0, 3, 1, 2) * WEIGHTS)
    with pytest.raises(InferenceServerException) as error:
        http.infer("mapped", [fp32_input(httpclient, "image", decoded(JPEG))])
    assert "pixels" in str(error.value)
