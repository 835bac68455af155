"""Python nodes in pipelines (OVMS's OvmsPythonModel contract) and KServe gRPC ModelStreamInfer."""
from __future__ import annotations

import queue
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.fixtures_pipeline import pipeline_config, request
from tests.fixtures_tensor import fp32_inputs, start_grpc_server
from tests.server import ServerProcess

HANDLERS = Path(__file__).parent / "python_nodes"
A = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
B = np.array([[0.5, 0, -1, 2], [1, 1, 1, 1]], dtype=np.float32)


def adder(alias="s"):
    return {"name": "adder", "model_name": "add", "inputs": [{"a": request("request", "a")},
                                                             {"b": request("request", "b")}],
            "outputs": [{"data_item": "sum", "alias": alias}]}


PIPELINES = [
    {"name": "add_post", "inputs": ["a", "b"],
     "nodes": [adder(), {"name": "post", "type": "python", "handler_path": str(HANDLERS / "post.py"),
                         "params": {"offset": 10}, "inputs": [{"value": request("adder", "s")}],
                         "outputs": [{"data_item": "shifted", "alias": "shifted", "datatype": "FP32",
                                      "shape": [-1, 4]}]}],
     "outputs": [{"result": request("post", "shifted")}]},
    {"name": "fragile", "inputs": ["v"],
     "nodes": [{"name": "checker", "type": "python", "handler_path": "fragile.py",  # relative to config.json
                "inputs": [{"value": request("request", "v")}], "outputs": [{"data_item": "same"}]}],
     "outputs": [{"out": request("checker", "same")}]},
    {"name": "streamer", "inputs": ["a", "b"],
     "nodes": [adder(), {"name": "steps", "type": "python", "handler_path": str(HANDLERS / "streamer.py"),
                         "params": {"count": 3}, "inputs": [{"value": request("adder", "s")}],
                         "outputs": [{"data_item": "partial", "alias": "partial"}]}],
     "outputs": [{"partial": request("steps", "partial")}]},
    {"name": "init_fails", "inputs": ["v"],
     "nodes": [{"name": "licensed", "type": "python", "handler_path": str(HANDLERS / "init_fails.py"),
                "inputs": [{"value": request("request", "v")}], "outputs": [{"data_item": "v"}]}],
     "outputs": [{"out": request("licensed", "v")}]},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("python-node")
    (folder / "fragile.py").write_text((HANDLERS / "fragile.py").read_text())
    config = pipeline_config(folder, PIPELINES)
    server = start_grpc_server(config, "tensor-python")
    yield server
    server.stop()


def kserve_json(**arrays):
    return {"inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32", "data": a.flatten().tolist()}
                       for n, a in arrays.items()]}


def test_python_node_post_processes_a_model_output(server):
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as http:
        result = http.infer("add_post", fp32_inputs(httpclient, a=A, b=B))
        assert np.array_equal(result.as_numpy("result"), A + B + 10)
        assert http.get_model_metadata("add_post")["outputs"] == [
            {"name": "result", "datatype": "FP32", "shape": [-1, 4]}]


def test_exception_in_user_code_is_a_500_naming_the_node_and_the_server_keeps_serving(server):
    url = f"{server.url}/v2/models/fragile/infer"
    r = httpx.post(url, json=kserve_json(v=np.array([1, -1], np.float32)))
    assert r.status_code == 500
    assert "node 'checker'" in r.json()["error"] and "negative input, boom" in r.json()["error"]
    tensor = httpclient.InferInput("v", [1], "FP32")
    tensor.set_data_from_numpy(np.array([np.nan], np.float32), binary_data=True)  # NaN: the handler calls sys.exit
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as http:
        with pytest.raises(InferenceServerException) as error:
            http.infer("fragile", [tensor])
    assert "node 'checker'" in str(error.value) and "SystemExit" in str(error.value)
    r = httpx.post(url, json=kserve_json(v=np.array([1, 2], np.float32)))  # sys.exit in user code: still serving
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1, 2]


def test_failing_initialize_is_a_load_error_naming_the_node(server):
    entry = httpx.get(f"{server.url}/v1/config").json()["init_fails"]["model_version_status"][0]
    assert entry["status"]["error_code"] == "FAILED_PRECONDITION"
    assert "node 'licensed'" in entry["status"]["error_message"]
    assert "no license for this node" in entry["status"]["error_message"]


def stream_results(server, requests):
    """Send (model, inputs) requests on one ModelStreamInfer stream; collect (result|error) in order."""
    received: queue.Queue = queue.Queue()
    with grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}") as client:
        client.start_stream(callback=lambda result, error: received.put((result, error)))
        for model, inputs in requests:
            client.async_stream_infer(model, inputs)
        client.stop_stream()  # waits for the server to finish the stream
    items = []
    while not received.empty():
        items.append(received.get())
    return items


def test_generator_node_streams_over_model_stream_infer(server):
    items = stream_results(server, [("streamer", fp32_inputs(grpcclient, a=A, b=B))])
    assert [error for _, error in items] == [None, None, None]
    for step, (result, _) in enumerate(items, start=1):
        assert np.array_equal(result.as_numpy("partial"), (A + B) * step)


def test_model_stream_infer_answers_models_in_order_and_reports_errors_without_closing(server):
    items = stream_results(server, [
        ("add", fp32_inputs(grpcclient, a=A, b=B)),
        ("no_such_model", fp32_inputs(grpcclient, a=A)),
        ("add_post", fp32_inputs(grpcclient, a=A, b=A)),
    ])
    assert len(items) == 3
    assert np.array_equal(items[0][0].as_numpy("sum"), A + B)
    assert items[1][0] is None and "no_such_model" in str(items[1][1])
    assert np.array_equal(items[2][0].as_numpy("result"), A + A + 10)


def test_streaming_pipeline_called_unary_says_to_stream(server):
    r = httpx.post(f"{server.url}/v2/models/streamer/infer", json=kserve_json(a=A, b=B))
    assert r.status_code == 400 and "ModelStreamInfer" in r.json()["error"]


def test_reload_swaps_a_pipeline_without_failing_requests_in_flight(tmp_path):
    import json
    import time
    from concurrent.futures import ThreadPoolExecutor

    marks = tmp_path / "marks"
    marks.mkdir()

    def slow_pipeline(factor):
        return {"name": "slow", "inputs": ["v"],
                "nodes": [{"name": "sleeper", "type": "python", "handler_path": str(HANDLERS / "slow.py"),
                           "params": {"marks": str(marks), "seconds": 1.5, "factor": factor},
                           "inputs": [{"value": request("request", "v")}], "outputs": [{"data_item": "out"}]}],
                "outputs": [{"out": request("sleeper", "out")}]}

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_config_list": [], "pipeline_config_list": [slow_pipeline(1)]}))
    server = ServerProcess("--config_path", str(config), "--file_system_poll_wait_seconds", "0",
                           log_name="tensor-python-reload").start()
    v = np.array([1, 2, 3], np.float32)
    url = f"{server.url}/v2/models/slow/infer"
    try:
        with ThreadPoolExecutor(3) as pool:
            in_flight = [pool.submit(httpx.post, url, json=kserve_json(v=v), timeout=60) for _ in range(3)]
            deadline = time.monotonic() + 30
            while len(list(marks.glob("started-1.0-*"))) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # wait until the old pipeline is running a request
            config.write_text(json.dumps({"model_config_list": [], "pipeline_config_list": [slow_pipeline(2)]}))
            assert httpx.post(f"{server.url}/v1/config/reload", timeout=60).status_code == 201
            answers = [f.result() for f in in_flight]
        assert [a.status_code for a in answers] == [200, 200, 200]  # the reload failed none of them
        # a request the server held before the reload ran on the old pipeline; one that arrived later
        # (the client threads race the reload) ran on the new one; nothing ran on neither
        outputs = sorted(a.json()["outputs"][0]["data"] for a in answers)
        on_old = outputs.count([1, 2, 3])
        assert on_old >= 1 and outputs == [[1, 2, 3]] * on_old + [[2, 4, 6]] * (3 - on_old)
        assert len(list(marks.glob("started-1.0-*"))) == on_old
        new = httpx.post(url, json=kserve_json(v=v), timeout=60)
        assert new.status_code == 200 and new.json()["outputs"][0]["data"] == [2, 4, 6]
        deadline = time.monotonic() + 30
        while not (marks / "finalized-1.0").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (marks / "finalized-1.0").exists()  # the old instance's finalize() ran after its requests
    finally:
        server.stop()
