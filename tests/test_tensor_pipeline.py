"""Pipelines (DAG, `pipeline_config_list`) served like models: tritonclient HTTP and gRPC, TFS REST;
demultiply/gather; invalid pipelines reported in /v1/config while everything else serves."""
from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.fixtures_pipeline import ADD_MUL, DEMUX, INVALID, REQUEST_DEMUX, pipeline_config
from tests.fixtures_tensor import fp32_inputs, start_grpc_server
from tests.server import ServerProcess

A = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
B = np.array([[0.5, 0, -1, 2], [1, 1, 1, 1]], dtype=np.float32)
C = np.array([[2, 2, 2, 2], [-1, 0, 1, 3]], dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = pipeline_config(tmp_path_factory.mktemp("pipeline"), [ADD_MUL, DEMUX, REQUEST_DEMUX, *INVALID])
    server = start_grpc_server(config, "tensor-pipeline", "--file_system_poll_wait_seconds", "0")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc(server):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    yield client
    client.close()


def test_two_model_pipeline_over_kserve_http_and_grpc(http, grpc):
    expected = (A + B) * C
    result = http.infer("add_mul", fp32_inputs(httpclient, a=A, b=B, c=C))
    assert np.array_equal(result.as_numpy("result"), expected)
    assert result.get_response()["model_name"] == "add_mul"
    assert np.array_equal(grpc.infer("add_mul", fp32_inputs(grpcclient, a=A, b=B, c=C)).as_numpy("result"), expected)


def test_pipeline_metadata_is_derived_from_the_graph(http, grpc):
    meta = http.get_model_metadata("add_mul")
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": n, "datatype": "FP32", "shape": [-1, 4]} for n in ("a", "b", "c")]
    assert meta["outputs"] == [{"name": "result", "datatype": "FP32", "shape": [-1, 4]}]
    assert http.is_model_ready("add_mul") and grpc.is_model_ready("add_mul")
    demux = grpc.get_model_metadata("demux")
    assert {(t.name, tuple(t.shape)) for t in demux.outputs} == {("each", (-1, -1)), ("total", (-1, 4))}
    assert http.get_model_metadata("request_demux")["inputs"] == [{"name": "v", "datatype": "FP32", "shape": [3, -1]}]


def test_pipeline_over_tfs_rest(server):
    body = {"inputs": {"a": A.tolist(), "b": B.tolist(), "c": C.tolist()}}
    r = httpx.post(f"{server.url}/v1/models/add_mul:predict", json=body)
    assert r.status_code == 200, r.text
    assert np.array_equal(np.array(r.json()["outputs"], dtype=np.float32), (A + B) * C)
    assert httpx.get(f"{server.url}/v1/models/add_mul").json()["model_version_status"][0]["state"] == "AVAILABLE"
    signature = httpx.get(f"{server.url}/v1/models/add_mul/metadata").json()["metadata"]["signature_def"]
    assert set(signature["signatureDef"]["serving_default"]["inputs"]) == {"a", "b", "c"}


def test_demultiply_and_gather(http):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones((3, 4), dtype=np.float32)
    result = http.infer("demux", fp32_inputs(httpclient, a=a, b=b))
    assert np.array_equal(result.as_numpy("each"), (a + b) * 2)  # gathered at the response
    assert np.array_equal(result.as_numpy("total"), (a + b) * 4)  # gathered by sum_up, then added to itself
    one = http.infer("demux", fp32_inputs(httpclient, a=a[:1], b=b[:1]))  # dynamic count: one branch
    assert one.as_numpy("each").shape == (1, 4)

    v = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    assert np.array_equal(http.infer("request_demux", fp32_inputs(httpclient, v=v)).as_numpy("doubled"), v * 2)
    with pytest.raises(InferenceServerException) as error:  # demultiply_count 3, two rows
        http.infer("request_demux", fp32_inputs(httpclient, v=v[:2]))
    assert "shape" in str(error.value)


def test_bad_requests_name_the_input(http, server):
    with pytest.raises(InferenceServerException) as error:
        http.infer("add_mul", fp32_inputs(httpclient, a=A, b=B))
    assert "Invalid number of inputs" in str(error.value)
    with pytest.raises(InferenceServerException) as error:
        http.infer("add_mul", fp32_inputs(httpclient, a=A, b=B, c=np.ones((2, 3), np.float32)))
    assert "'c'" in str(error.value) and "shape" in str(error.value)
    assert httpx.get(f"{server.url}/v2/models/add_mul/versions/2").status_code == 404


def test_invalid_pipelines_are_load_errors_naming_the_node_while_others_serve(server, http):
    status = httpx.get(f"{server.url}/v1/config").json()

    def error(name):
        entry = status[name]["model_version_status"][0]
        assert entry["status"]["error_code"] == "FAILED_PRECONDITION", entry
        return entry["status"]["error_message"]

    assert "cycle between nodes" in error("cycle") and "'n1'" in error("cycle")
    assert "node 'ghost'" in error("unknown_model") and "no_such_model" in error("unknown_model")
    assert "node 'half'" in error("unconnected") and "input 'b'" in error("unconnected")
    assert "node 'lonely'" in error("unknown_node") and "unknown node 'nowhere'" in error("unknown_node")
    assert "node 'mul4'" in error("mismatch") and "[-1,3]" in error("mismatch")
    for name in ("cycle", "unknown_model", "unconnected", "unknown_node", "mismatch"):
        assert not http.is_model_ready(name)
    assert status["add_mul"]["model_version_status"][0]["state"] == "AVAILABLE"
    assert np.array_equal(http.infer("add_mul", fp32_inputs(httpclient, a=A, b=B, c=C)).as_numpy("result"),
                          (A + B) * C)


def test_pipeline_over_tfs_grpc(server):
    import grpc as grpclib

    from gateway.grpc import tf_framework_pb2 as tf
    from gateway.grpc import tfs_apis_pb2 as tfs
    from gateway.grpc import tfs_apis_pb2_grpc as tfs_grpc

    def tensor(array):
        return tf.TensorProto(dtype=tf.DT_FLOAT, tensor_shape=tf.TensorShapeProto(
            dim=[tf.TensorShapeProto.Dim(size=d) for d in array.shape]), tensor_content=array.tobytes())

    with grpclib.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = tfs.PredictRequest(model_spec=tfs.ModelSpec(name="add_mul"))
        for name, array in (("a", A), ("b", B), ("c", C)):
            request.inputs[name].CopyFrom(tensor(array))
        result = tfs_grpc.PredictionServiceStub(channel).Predict(request).outputs["result"]
    array = np.frombuffer(result.tensor_content, np.float32).reshape([d.size for d in result.tensor_shape.dim])
    assert np.array_equal(array, (A + B) * C)


def test_pipeline_is_checked_again_when_a_model_it_uses_goes_away(tmp_path):
    import json

    config = pipeline_config(tmp_path, [ADD_MUL])
    full = config.read_text()
    server = ServerProcess("--config_path", str(config), "--file_system_poll_wait_seconds", "0",
                           log_name="tensor-pipeline-deps").start()
    try:
        document = json.loads(full)
        document["model_config_list"] = [e for e in document["model_config_list"] if e["config"]["name"] != "mul"]
        config.write_text(json.dumps(document))
        r = httpx.post(f"{server.url}/v1/config/reload", timeout=60)
        assert r.status_code == 201
        entry = r.json()["add_mul"]["model_version_status"][0]
        assert entry["status"]["error_code"] == "FAILED_PRECONDITION"
        assert "node 'multiplier'" in entry["status"]["error_message"] and "'mul'" in entry["status"]["error_message"]

        config.write_text(full)
        r = httpx.post(f"{server.url}/v1/config/reload", timeout=60)
        assert r.json()["add_mul"]["model_version_status"][0]["status"]["error_code"] == "OK"
        with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as http:
            result = http.infer("add_mul", fp32_inputs(httpclient, a=A, b=B, c=C)).as_numpy("result")
        assert np.array_equal(result, (A + B) * C)
    finally:
        server.stop()
