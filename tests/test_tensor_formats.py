"""Model formats OpenVINO reads besides IR and ONNX: detected by their files, served like any
classic model; unreadable files are load errors naming the format, while the rest serves.

TensorFlow and PaddlePaddle models are written by hand (protobuf wire format) and the TensorFlow
Lite one with the small `tflite` schema package (tests/fixtures_formats.py): no framework wheels.
"""
from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.fixtures_formats import (
    FACTORS,
    PADDLE_SCALE,
    paddle_repository,
    tf_frozen_repository,
    tf_saved_model_repository,
    tflite_repository,
)
from tests.fixtures_tensor import dense_repository
from tests.server import ServerProcess

X = np.array([[1, 1, 1, 1], [0.5, -1, 2, 3]], dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    for name, file in (("tflite", "model.tflite"), ("paddle", "model.pdmodel"), ("onnx_bad", "model.onnx")):
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / file).write_bytes(b"\x00not a model at all")
    entries = [{"name": "tf_frozen", "base_path": str(tf_frozen_repository())},
               {"name": "tf_saved", "base_path": str(tf_saved_model_repository())},
               {"name": "tflite", "base_path": str(tflite_repository())},
               {"name": "paddle", "base_path": str(paddle_repository())},
               {"name": "bad_tflite", "base_path": str(root / "tflite")},
               {"name": "bad_paddle", "base_path": str(root / "paddle")},
               {"name": "bad_onnx", "base_path": str(root / "onnx_bad")},
               {"name": "dense", "base_path": str(dense_repository())}]
    config = root / "config.json"
    config.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    server = ServerProcess("--config_path", str(config), log_name="tensor-formats").start()
    yield server
    server.stop()


def infer(server, model):
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
        tensor = httpclient.InferInput("x", list(X.shape), "FP32")
        tensor.set_data_from_numpy(X)
        return client.infer(model, [tensor]).as_numpy("y"), client.get_model_metadata(model)


@pytest.mark.parametrize("model,factors", [("tf_frozen", FACTORS), ("tf_saved", FACTORS), ("tflite", FACTORS),
                                           ("paddle", PADDLE_SCALE)])
def test_tensorflow_tflite_and_paddle_models_are_detected_and_served(server, model, factors):
    y, meta = infer(server, model)
    assert np.array_equal(y, X * factors)
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]


def test_unreadable_files_are_load_errors_naming_the_format(server):
    status = httpx.get(f"{server.url}/v1/config").json()

    def error(name):
        entry = status[name]["model_version_status"][0]
        assert entry["status"]["error_code"] == "FAILED_PRECONDITION"
        return entry["status"]["error_message"]

    assert "cannot read the TensorFlow Lite model" in error("bad_tflite") and "model.tflite" in error("bad_tflite")
    assert "cannot read the PaddlePaddle model" in error("bad_paddle")
    assert "cannot read the ONNX model" in error("bad_onnx")
    assert infer(server, "dense")[0].shape == (2, 3)
