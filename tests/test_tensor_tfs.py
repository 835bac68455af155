"""TensorFlow Serving REST (httpx) and gRPC (stubs generated from our protos) for tensor models,
and the shared `GET /v1/models/{id}` that answers OpenAI's model object for generative models."""
from __future__ import annotations

import base64

import grpc
import httpx
import numpy as np
import pytest

from gateway.grpc import tf_framework_pb2 as tf
from gateway.grpc import tfs_apis_pb2 as tfs
from gateway.grpc import tfs_apis_pb2_grpc as tfs_grpc
from tests.fixtures_tensor import dense_expected, start_tensor_server

X = np.array([[1, 2, 3, 4], [-5, 6, 0.5, 8]], dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_tensor_server(tmp_path_factory.mktemp("tfs"), "tensor-tfs", with_llm=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        yield ch


def good_predict(http):
    r = http.post("/v1/models/dense:predict", json={"instances": X.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": dense_expected(X, 3).tolist()}


def test_status_lists_served_versions(http):
    assert http.get("/v1/models/dense").json() == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("2", "3")]}
    assert [s["version"] for s in http.get("/v1/models/dense_all").json()["model_version_status"]] == ["1", "2", "3"]
    assert [s["version"] for s in http.get("/v1/models/dense/versions/2").json()["model_version_status"]] == ["2"]
    r = http.get("/v1/models/dense/versions/1")
    assert r.status_code == 404 and isinstance(r.json()["error"], str)


def test_metadata_is_the_signature_def(http):
    meta = http.get("/v1/models/dense/versions/2/metadata").json()
    assert meta["modelSpec"]["version"] == "2"
    signature = meta["metadata"]["signature_def"]["signatureDef"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["x"]["tensorShape"]["dim"]] == ["-1", "4"]
    assert signature["outputs"]["y"]["name"] == "y"


def test_predict_row_and_column_formats(http):
    good_predict(http)
    r = http.post("/v1/models/dense/versions/2:predict", json={"inputs": {"x": X.tolist()}})
    assert r.json() == {"outputs": dense_expected(X, 2).tolist()}
    r = http.post("/v1/models/dense_v1:predict", json={"inputs": X.tolist()})
    assert r.json() == {"outputs": dense_expected(X, 1).tolist()}


def test_predict_multiple_inputs_with_b64_strings(http):
    texts = ["héllo".encode(), b"\x00\xff"]
    body = {"inputs": {"flag": [True, False], "text": [{"b64": base64.b64encode(t).decode()} for t in texts],
                       "half": [0.5, 2.0], "count": [[1, 2], [3, 4]]}}
    out = http.post("/v1/models/types:predict", json=body).json()["outputs"]
    assert out["not_flag"] == [False, True]
    assert out["half_plus"] == [1.5, 3.0]
    assert out["count_times"] == [[-3, -6], [-9, -12]]
    assert out["text"] == ["héllo", {"b64": base64.b64encode(b"\x00\xff").decode()}]
    rows = {"instances": [{"flag": True, "text": "a", "half": 1.0, "count": [1, 2]},
                          {"flag": False, "text": "b", "half": 2.0, "count": [3, 4]}]}
    predictions = http.post("/v1/models/types:predict", json=rows).json()["predictions"]
    assert predictions[1] == {"not_flag": True, "half_plus": 3.0, "count_times": [-9, -12], "text": "b"}


def test_predict_errors_then_good_requests(http):
    cases = [
        ({"instances": [[1, 2, 3]]}, 400, "'x'"),
        ({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, 400, "exactly one"),
        ({"instances": [[1, 2], [3]]}, 400, "x"),
        ({"inputs": {"z": [[1, 2, 3, 4]]}}, 400, "'z'"),
        ({"instances": [["a", "b", "c", "d"]]}, 400, "numbers"),
    ]
    for body, status, fragment in cases:
        r = http.post("/v1/models/dense:predict", json=body)
        assert r.status_code == status and fragment in r.json()["error"], r.text
        good_predict(http)
    r = http.post("/v1/models/nope:predict", json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = http.post("/v1/models/dense/versions/9:predict", json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 404
    assert http.post("/v1/models/dense:classify", json={"examples": []}).status_code == 400
    good_predict(http)


def test_models_route_dispatches_by_kind(http):
    llm = http.get("/v1/models/smollm2")
    assert llm.status_code == 200 and llm.json()["object"] == "model" and llm.json()["id"] == "smollm2"
    assert "model_version_status" in http.get("/v1/models/dense").json()
    listed = {m["id"] for m in http.get("/v1/models").json()["data"]}
    assert {"smollm2", "dense", "types"} <= listed
    missing = http.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"  # OpenAI shape


def _tensor(array: np.ndarray, dtype: int) -> tf.TensorProto:
    return tf.TensorProto(dtype=dtype, tensor_shape=tf.TensorShapeProto(
        dim=[tf.TensorShapeProto.Dim(size=d) for d in array.shape]), tensor_content=array.tobytes())


def _array(proto: tf.TensorProto, dtype) -> np.ndarray:
    return np.frombuffer(proto.tensor_content, dtype=dtype).reshape([d.size for d in proto.tensor_shape.dim])


def test_grpc_predict_with_tensor_content_and_typed_values(channel):
    stub = tfs_grpc.PredictionServiceStub(channel)
    request = tfs.PredictRequest(model_spec=tfs.ModelSpec(name="dense"))
    request.inputs["x"].CopyFrom(_tensor(X, tf.DT_FLOAT))
    response = stub.Predict(request)
    np.testing.assert_array_equal(_array(response.outputs["y"], np.float32), dense_expected(X, 3))
    assert response.model_spec.version.value == 3

    request = tfs.PredictRequest(model_spec=tfs.ModelSpec(name="dense_all"))
    request.model_spec.version.value = 1
    request.inputs["x"].CopyFrom(tf.TensorProto(dtype=tf.DT_FLOAT, float_val=X.reshape(-1).tolist(),
                                                tensor_shape=tf.TensorShapeProto(dim=[
                                                    tf.TensorShapeProto.Dim(size=2), tf.TensorShapeProto.Dim(size=4)])))
    np.testing.assert_array_equal(_array(stub.Predict(request).outputs["y"], np.float32), dense_expected(X, 1))

    request = tfs.PredictRequest(model_spec=tfs.ModelSpec(name="types"))
    request.inputs["flag"].CopyFrom(tf.TensorProto(dtype=tf.DT_BOOL, bool_val=[True],
                                                   tensor_shape=tf.TensorShapeProto(dim=[tf.TensorShapeProto.Dim(size=1)])))
    request.inputs["text"].CopyFrom(tf.TensorProto(dtype=tf.DT_STRING, string_val=[b"x\x00y"],
                                                   tensor_shape=tf.TensorShapeProto(dim=[tf.TensorShapeProto.Dim(size=1)])))
    request.inputs["half"].CopyFrom(tf.TensorProto(dtype=tf.DT_HALF, half_val=[int(np.float16(2.5).view(np.uint16))],
                                                   tensor_shape=tf.TensorShapeProto(dim=[tf.TensorShapeProto.Dim(size=1)])))
    request.inputs["count"].CopyFrom(_tensor(np.array([[1, 2], [3, 4]], dtype=np.int32), tf.DT_INT32))
    response = stub.Predict(request)
    assert list(response.outputs["text"].string_val) == [b"x\x00y"]
    assert _array(response.outputs["half_plus"], np.float16).tolist() == [3.5]
    assert _array(response.outputs["not_flag"], np.bool_).tolist() == [False]
    assert response.outputs["count_times"].dtype == tf.DT_INT32


def test_grpc_metadata_and_status(channel):
    stub = tfs_grpc.PredictionServiceStub(channel)
    response = stub.GetModelMetadata(tfs.GetModelMetadataRequest(model_spec=tfs.ModelSpec(name="dense"),
                                                                 metadata_field=["signature_def"]))
    signatures = tfs.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    x = signatures.signature_def["serving_default"].inputs["x"]
    assert x.dtype == tf.DT_FLOAT and [d.size for d in x.tensor_shape.dim] == [-1, 4]
    status = tfs_grpc.ModelServiceStub(channel).GetModelStatus(
        tfs.GetModelStatusRequest(model_spec=tfs.ModelSpec(name="dense_all")))
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (v, tfs.ModelVersionStatus.AVAILABLE) for v in (1, 2, 3)]


def test_grpc_errors_then_good_request(channel):
    stub = tfs_grpc.PredictionServiceStub(channel)

    def predict(name="dense", array=X, version=None, input_name="x"):
        request = tfs.PredictRequest(model_spec=tfs.ModelSpec(name=name))
        if version is not None:
            request.model_spec.version.value = version
        request.inputs[input_name].CopyFrom(_tensor(array, tf.DT_FLOAT if array.dtype == np.float32 else tf.DT_INT64))
        return stub.Predict(request)

    cases = [
        (lambda: predict(array=X[:, :2].copy()), grpc.StatusCode.INVALID_ARGUMENT, "'x'"),
        (lambda: predict(array=X.astype(np.int64)), grpc.StatusCode.INVALID_ARGUMENT, "precision"),
        (lambda: predict(input_name="q"), grpc.StatusCode.INVALID_ARGUMENT, "'x'"),
        (lambda: predict(name="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
        (lambda: predict(version=1), grpc.StatusCode.NOT_FOUND, "version 1"),
    ]
    for call, code, fragment in cases:
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == code and fragment in info.value.details(), info.value.details()
        np.testing.assert_array_equal(_array(predict().outputs["y"], np.float32), dense_expected(X, 3))
