"""KServe v2 REST and gRPC for classic tensor models, through the real tritonclient SDK."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.fixtures_tensor import dense_expected, start_tensor_server
from tests.helpers import metric_value, scrape

X = np.array([[1, 2, 3, 4], [-5, 6, 0.5, 8]], dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_tensor_server(tmp_path_factory.mktemp("kserve"), "tensor-kserve", "--metrics_enable")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}", concurrency=8)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc(server):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    yield client
    client.close()


def http_input(name, array, datatype, binary):
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def grpc_input(name, array, datatype):
    tensor = grpcclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def dense_http(http, x, model="dense", version="", binary=False):
    outputs = [httpclient.InferRequestedOutput("y", binary_data=binary)]
    return http.infer(model, [http_input("x", x, "FP32", binary)], model_version=version, outputs=outputs)


def dense_grpc(grpc, x, model="dense", version=""):
    return grpc.infer(model, [grpc_input("x", x, "FP32")], model_version=version)


def test_server_is_live_ready_and_describes_itself(http, grpc):
    assert http.is_server_live() and http.is_server_ready()
    assert grpc.is_server_live() and grpc.is_server_ready()
    meta = http.get_server_metadata()
    assert meta["name"] == "genai-gateway" and "binary_tensor_data" in meta["extensions"]
    assert grpc.get_server_metadata().name == "genai-gateway"


def test_model_metadata_lists_served_versions_and_dynamic_dims(http, grpc):
    meta = http.get_model_metadata("dense")
    assert meta["versions"] == ["2", "3"]
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]
    assert http.get_model_metadata("dense_static")["inputs"][0]["shape"] == [2, 4]
    assert http.get_model_metadata("dense_b3")["outputs"][0]["shape"] == [3, 3]
    assert http.get_model_metadata("types")["rt_info"] == {"model_info": {"model_type": "types-demo"}}
    assert "rt_info" not in meta
    gmeta = grpc.get_model_metadata("types", "1")
    assert {(t.name, t.datatype, tuple(t.shape)) for t in gmeta.inputs} == {
        ("flag", "BOOL", (-1,)), ("text", "BYTES", (-1,)), ("half", "FP16", (-1,)), ("count", "INT32", (2, 2))}


def test_model_readiness_follows_the_version_policy(http, grpc):
    assert http.is_model_ready("dense") and http.is_model_ready("dense", "2")
    assert not http.is_model_ready("dense", "1")
    assert not http.is_model_ready("no_such_model")
    assert grpc.is_model_ready("dense", "3") and not grpc.is_model_ready("dense", "1")
    assert grpc.is_model_ready("dense_all", "1") and grpc.is_model_ready("dense_v1", "1")
    assert not grpc.is_model_ready("dense_v1", "2")


def test_rest_json_infer_uses_the_highest_version_by_default(http):
    result = dense_http(http, X)
    np.testing.assert_array_equal(result.as_numpy("y"), dense_expected(X, 3))
    assert result.get_response()["model_version"] == "3"
    result = dense_http(http, X, version="2")
    np.testing.assert_array_equal(result.as_numpy("y"), dense_expected(X, 2))


def test_rest_binary_extension_round_trips_exactly(http):
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    result = dense_http(http, x, binary=True)
    np.testing.assert_allclose(result.as_numpy("y"), dense_expected(x, 3), rtol=1e-6, atol=1e-5)
    assert result.get_output("y")["parameters"]["binary_data_size"] == 5 * 3 * 4


def test_grpc_infer_selects_versions(grpc):
    np.testing.assert_array_equal(dense_grpc(grpc, X).as_numpy("y"), dense_expected(X, 3))
    result = dense_grpc(grpc, X, model="dense_all", version="1")
    np.testing.assert_array_equal(result.as_numpy("y"), dense_expected(X, 1))
    assert result.get_response().model_version == "1"
    np.testing.assert_array_equal(dense_grpc(grpc, X, model="dense_v1").as_numpy("y"), dense_expected(X, 1))
    x3 = np.arange(12, dtype=np.float32).reshape(3, 4) / 7  # user plugin_config merges over the f32 default
    np.testing.assert_allclose(dense_grpc(grpc, x3, model="dense_b3").as_numpy("y"), dense_expected(x3, 3),
                               rtol=1e-6, atol=1e-5)  # bf16 would be off by ~1e-2


def test_grpc_answers_carry_each_requests_own_id_shape_and_values(grpc):
    """Responses are copied from templates and small inputs staged in buffers bound once: neither may
    leak one request's id, shape or values into the next."""
    rng = np.random.default_rng(7)
    for index, rows in enumerate([1, 1, 3, 1, 2, 1]):
        x = rng.standard_normal((rows, 4)).astype(np.float32)
        result = grpc.infer("dense", [grpc_input("x", x, "FP32")], request_id=f"r{index}" if index % 2 else "")
        np.testing.assert_allclose(result.as_numpy("y"), dense_expected(x, 3), rtol=1e-6, atol=1e-6)
        assert result.get_response().id == (f"r{index}" if index % 2 else "")
        assert list(result.get_response().outputs[0].shape) == [rows, 3]


def _types_inputs(make):
    flag = np.array([True, False, True])
    text = np.array(["héllo".encode(), b"", b"\x00\xffraw"], dtype=object)
    half = np.array([0.5, -2, 1000], dtype=np.float16)
    count = np.array([[1, -2], [3, 2**20]], dtype=np.int32)
    return [make("flag", flag, "BOOL"), make("text", text, "BYTES"), make("half", half, "FP16"),
            make("count", count, "INT32")], (flag, text, half, count)


def _check_types(result, expected):
    flag, text, half, count = expected
    np.testing.assert_array_equal(result.as_numpy("not_flag"), ~flag)
    assert list(result.as_numpy("text")) == list(text)
    np.testing.assert_array_equal(result.as_numpy("half_plus"), half + np.float16(1))
    np.testing.assert_array_equal(result.as_numpy("count_times"), count * -3)


def test_bool_bytes_fp16_int32_over_rest_binary_and_grpc(http, grpc):
    inputs, expected = _types_inputs(lambda n, a, d: http_input(n, a, d, True))
    outputs = [httpclient.InferRequestedOutput(n, binary_data=True)
               for n in ("not_flag", "text", "half_plus", "count_times")]
    _check_types(http.infer("types", inputs, outputs=outputs), expected)
    inputs, expected = _types_inputs(grpc_input)
    _check_types(grpc.infer("types", inputs), expected)


def test_json_data_for_bool_bytes_and_int(http):
    flag = np.array([False, True])
    text = np.array([b"ab", "ü".encode()], dtype=object)
    half = np.array([1.5], dtype=np.float16)
    count = np.arange(4, dtype=np.int32).reshape(2, 2)
    inputs = [http_input("flag", flag, "BOOL", False), http_input("text", text, "BYTES", False),
              http_input("half", half, "FP16", True), http_input("count", count, "INT32", False)]
    result = http.infer("types", inputs, outputs=[httpclient.InferRequestedOutput("text", binary_data=False),
                                                  httpclient.InferRequestedOutput("not_flag", binary_data=False)])
    assert list(result.as_numpy("text")) == ["ab", "ü"]  # JSON BYTES come back as text
    np.testing.assert_array_equal(result.as_numpy("not_flag"), [True, False])
    assert result.as_numpy("count_times") is None  # only the requested outputs come back


def test_shape_auto_reshapes_per_request(http, grpc):
    for batch in (1, 3, 1, 2):
        x = np.arange(batch * 4, dtype=np.float32).reshape(batch, 4)
        result = grpc.infer("auto", [grpc_input("x", x, "FP32")])
        np.testing.assert_array_equal(result.as_numpy("y"), 3 * x)
    x = np.ones((6, 4), dtype=np.float32)
    np.testing.assert_array_equal(http.infer("auto", [http_input("x", x, "FP32", True)]).as_numpy("y"), 3 * x)


def _rest_error(call) -> str:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.message() + f" [{info.value.status()}]"


def _grpc_error(call):
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status(), info.value.message()


def test_rest_errors_name_the_problem_and_the_server_keeps_serving(http):
    def bad(name="x", datatype="FP32", array=X, model="dense", version=""):
        return lambda: http.infer(model, [http_input(name, array.astype(np.float32) if datatype == "FP32" else
                                                     array, datatype, False)], model_version=version)

    cases = [
        (bad(array=np.ones((2, 3))), "Invalid input shape for 'x'", "400"),
        (bad(datatype="INT32", array=np.ones((2, 4), dtype=np.int32)), "Invalid input precision for 'x'", "400"),
        (bad(name="z"), "'x'", "400"),
        (bad(model="no_such_model"), "no_such_model", "404"),
        (bad(version="7"), "version 7", "404"),
        (bad(model="dense_static", array=np.ones((3, 4))), "Expected: [2,4]", "400"),
        (bad(model="dense_b3", array=np.ones((2, 4))), "Expected: [3,4]", "400"),
    ]
    for call, fragment, status in cases:
        message = _rest_error(call)
        assert fragment in message and f"[{status}]" in message, message
        np.testing.assert_array_equal(dense_http(http, X).as_numpy("y"), dense_expected(X, 3))


def test_rest_rejects_malformed_bodies_with_kserve_error_shape(server):
    import httpx

    url = f"{server.url}/v2/models/dense/infer"
    good = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    bad_bodies = [
        b"{not json",
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3]}]},
        {"inputs": [{"name": "x", "datatype": "FP33", "shape": [1, 4], "data": [1, 2, 3, 4]}]},
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, "3", 4]}]},
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4],
                     "parameters": {"binary_data_size": 16}}]},
        {"inputs": []},
    ]
    for body in bad_bodies:
        r = httpx.post(url, content=body) if isinstance(body, bytes) else httpx.post(url, json=body)
        assert r.status_code == 400 and isinstance(r.json()["error"], str), r.text
        ok = httpx.post(url, json=good)
        assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == dense_expected(
            np.array([[1, 2, 3, 4]]), 3).reshape(-1).tolist()
    r = httpx.get(f"{server.url}/v2/models/dense/versions/9")
    assert r.status_code == 404 and "error" in r.json()
    assert httpx.get(f"{server.url}/v2/models/dense/versions/abc").status_code == 400


def test_grpc_errors_map_to_status_codes(grpc):
    cases = [
        (lambda: dense_grpc(grpc, X[:, :3].copy()), "StatusCode.INVALID_ARGUMENT", "'x'"),
        (lambda: grpc.infer("dense", [grpc_input("x", X.astype(np.float64), "FP64")]), "StatusCode.INVALID_ARGUMENT",
         "precision"),
        (lambda: dense_grpc(grpc, X, model="nope"), "StatusCode.NOT_FOUND", "nope"),
        (lambda: dense_grpc(grpc, X, version="1"), "StatusCode.NOT_FOUND", "version 1"),
        (lambda: grpc.get_model_metadata("nope"), "StatusCode.NOT_FOUND", "nope"),
    ]
    for call, status, fragment in cases:
        got_status, message = _grpc_error(call)
        assert got_status == status and fragment in message, (got_status, message)
        np.testing.assert_array_equal(dense_grpc(grpc, X).as_numpy("y"), dense_expected(X, 3))


def test_an_inference_that_fails_inside_openvino_is_an_error_not_a_hang(http, grpc):
    def call(client, module, target, check=True):
        x = np.arange(4, dtype=np.float32)
        inputs = [module.InferInput("x", [4], "FP32"), module.InferInput("t", [2], "INT64")]
        inputs[0].set_data_from_numpy(x)
        inputs[1].set_data_from_numpy(np.array(target, dtype=np.int64))
        return client.infer("fragile", inputs).as_numpy("y")

    for client, module, status in ((http, httpclient, "[500]"), (grpc, grpcclient, "[StatusCode.INTERNAL]")):
        for _ in range(20):  # errors after a run of good requests too (the engine measures and adapts)
            np.testing.assert_array_equal(call(client, module, [1, 4]), [[0, 1, 2, 3]])
        for _ in range(2):
            with pytest.raises(InferenceServerException) as info:
                call(client, module, [3, 3])
            assert "Inference failed" in str(info.value) and (status in str(info.value) or
                                                               status.strip("[]") == info.value.status()), info.value
            np.testing.assert_array_equal(call(client, module, [2, 2]), [[0, 1], [2, 3]])


def test_concurrent_requests_each_get_their_own_result(server):
    def one(i: int) -> bool:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        try:
            x = np.full((1 + i % 3, 4), i, dtype=np.float32)
            y = client.infer("dense", [grpc_input("x", x, "FP32")], model_version="2").as_numpy("y")
            return np.array_equal(y, dense_expected(x, 2))
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(32)))


def test_a_full_queue_answers_503_with_retry_after_and_recovers(server):
    import asyncio

    import httpx

    x = np.ones((64, 512), dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [64, 512],
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    body, headers = header + x.tobytes(), {"Inference-Header-Content-Length": str(len(header))}

    async def burst():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v2/models/slow/infer", content=body, headers=headers)
                                          for _ in range(48)))

    responses = asyncio.run(burst())
    codes = {r.status_code for r in responses}
    assert codes <= {200, 503} and 503 in codes and 200 in codes
    rejected = next(r for r in responses if r.status_code == 503)
    assert rejected.headers["Retry-After"] == "1" and "retry later" in rejected.json()["error"]
    ok = next(r for r in responses if r.status_code == 200)
    assert ok.json()["outputs"][0]["data"][:2] == [0.5 ** 8, 0.5 ** 8]
    r = httpx.post(f"{server.url}/v2/models/slow/infer", content=body, headers=headers, timeout=120)
    assert r.status_code == 200


def test_rest_and_grpc_calls_are_counted_in_ovms_metric_families(server, http, grpc):

    def value(text: str, **labels: str) -> float:
        return metric_value(text, "ovms_requests_success", api="KServe", method="ModelInfer", name="dense_all",
                            default=0.0, **labels)

    rest = {"interface": "REST", "version": "2"}
    rpc = {"interface": "gRPC", "version": "3"}
    before = scrape(server)
    dense_http(http, X, model="dense_all", version="2")
    dense_grpc(grpc, X, model="dense_all")
    dense_grpc(grpc, X, model="dense_all")
    after = scrape(server)
    assert value(after, **rest) - value(before, **rest) == 1
    assert value(after, **rpc) - value(before, **rpc) == 2
    assert metric_value(after, "ovms_request_time_us_count", interface="gRPC", name="dense_all", version="3") >= 2
