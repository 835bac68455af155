"""Hostile input gets a 400 naming what is wrong, never a 500, and the server keeps serving.

Regression tests for the 500s of the hardening issue: out-of-vocabulary prompt token ids, integer
fields beyond what the pipelines take, KServe shapes whose element count overflows int64, a
non-ASCII `Inference-Header-Content-Length`, and deeply nested JSON whatever its Content-Type.
"""
from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.conftest import LLM
from tests.server import ServerProcess

EMBED = "sentence-transformers/all-MiniLM-L6-v2"  # the default server's embeddings model
MSG = [{"role": "user", "content": "Hi"}]
HUGE = [2**64, 2**200, -(2**64)]  # beyond uint64 and int64 both ways


def _assert_400_naming(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


def _still_serves(http: httpx.Client) -> None:
    r = http.post("/v3/completions", json={"model": LLM, "prompt": "Hello", "max_tokens": 2, "temperature": 0})
    assert r.status_code == 200, r.text


# --- prompt token ids -------------------------------------------------------------------------

@pytest.mark.parametrize("ids", [[2**64], [99999999], [-1], [49152], [1, 2, 2**63]],
                         ids=["beyond-uint64", "far", "negative", "vocab-size", "last-beyond-int64"])
def test_completion_prompt_token_ids_outside_the_vocabulary_are_a_400(http, ids):
    r = http.post("/v3/completions", json={"model": LLM, "prompt": ids, "max_tokens": 2})
    _assert_400_naming(r, "prompt")
    assert "outside the vocabulary" in r.json()["error"]["message"]
    _still_serves(http)


def test_completion_prompt_token_ids_inside_the_vocabulary_still_generate(http):
    r = http.post("/v3/completions", json={"model": LLM, "prompt": [504, 3429, 49151], "max_tokens": 2,
                                           "temperature": 0, "echo": True})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == 3


# --- integer fields beyond what the pipeline takes ----------------------------------------------

INTEGER_FIELDS = [
    ("/v3/chat/completions", {"model": LLM, "messages": MSG, "max_tokens": 2}, field)
    for field in ("max_tokens", "max_completion_tokens", "top_k", "seed", "n", "best_of", "top_logprobs")
] + [
    ("/v3/completions", {"model": LLM, "prompt": "Hi", "max_tokens": 2}, field)
    for field in ("max_tokens", "top_k", "seed", "n", "best_of", "logprobs")
] + [
    ("/v3/responses", {"model": LLM, "input": "Hi", "max_output_tokens": 2}, field)
    for field in ("max_output_tokens", "seed")
] + [
    ("/v3/embeddings", {"model": EMBED, "input": "Hi"}, "dimensions"),
    ("/v3/tokenize", {"model": LLM, "text": "Hi"}, "max_length"),
] + [
    ("/v3/rerank", {"model": EMBED, "query": "q", "documents": ["a", "b"]}, field)
    for field in ("top_n", "max_chunks_per_doc", "max_tokens_per_doc", "priority")
] + [
    ("/v3/images/generations", {"model": LLM, "prompt": "a cat"}, field)
    for field in ("n", "num_images_per_prompt", "width", "height", "num_inference_steps", "seed", "rng_seed",
                  "max_sequence_length")
]


@pytest.mark.parametrize("path,body,field", INTEGER_FIELDS, ids=[f"{p.rsplit('/', 1)[1]}-{f}"
                                                                 for p, _, f in INTEGER_FIELDS])
def test_huge_integer_fields_are_a_400_naming_the_field(http, path, body, field):
    for value in HUGE:
        r = http.post(path, json={**body, field: value})
        _assert_400_naming(r, field)


def test_top_k_at_its_bound_still_generates(http):
    r = http.post("/v3/chat/completions", json={"model": LLM, "messages": MSG, "max_tokens": 2, "top_k": 2**31 - 1})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_output_tokens"])
def test_errors_about_the_token_budget_name_the_field_that_was_sent(http, field):
    path = "/v3/chat/completions" if field == "max_completion_tokens" else "/v3/responses"
    body = {"model": LLM, "messages": MSG} if field == "max_completion_tokens" else {"model": LLM, "input": "Hi"}
    r = http.post(path, json={**body, field: 9000})  # beyond the model's 8192-token context
    _assert_400_naming(r, field)


def test_padding_to_a_huge_length_is_refused_not_built(http):
    r = http.post("/v3/tokenize", json={"model": LLM, "text": ["a"] * 64, "max_length": 2**20,
                                        "pad_to_max_length": True})
    _assert_400_naming(r, "max_length")


# --- JSON depth, whatever the Content-Type ------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("content_type", [None, "application/json", "application/vnd.api+json; charset=utf-8"])
def test_deep_json_is_refused_by_the_guard_for_every_type_parsed_as_json(llm_server, content_type):
    headers = {"content-type": content_type} if content_type else {}  # httpx sends raw content without one
    with httpx.Client(timeout=30) as c:
        r = c.post(f"{llm_server.url}/v3/chat/completions", content=DEEP, headers=headers)
    assert r.status_code == 400, r.text
    assert "nested deeper" in r.json()["error"]["message"]


# --- KServe v2 / TFS REST on a tensor model -----------------------------------------------------

@pytest.fixture(scope="module")
def tensor_server(tmp_path_factory):
    from tests.fixtures_tensor import dense_repository

    config = tmp_path_factory.mktemp("hardening") / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "dense", "base_path": str(dense_repository())}}]}))
    server = ServerProcess("--config_path", str(config), log_name="hardening-tensor").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tensor_http(tensor_server):
    with httpx.Client(base_url=tensor_server.url, timeout=60) as c:
        yield c


def _kserve_still_serves(tensor_http: httpx.Client) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    r = tensor_http.post("/v2/models/dense/infer", json={"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [2, 4], "data": x.ravel().tolist()}]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [2, 3]


@pytest.mark.parametrize("shape", [[4294967296, 4294967296], [2**63, 1], [2**64]])
def test_kserve_shape_with_more_elements_than_int64_is_a_400(tensor_http, shape):
    r = tensor_http.post("/v2/models/dense/infer", json={"inputs": [
        {"name": "x", "datatype": "FP32", "shape": shape, "data": [1.0, 2.0]}]})
    assert r.status_code == 400, r.text
    assert "int64" in r.json()["error"]
    _kserve_still_serves(tensor_http)


@pytest.mark.parametrize("value", [b"\xb2", b"1\xb9", b"\xb3\xb3"], ids=["two", "one-and-superscript", "three-three"])
def test_kserve_header_length_with_non_ascii_digits_is_a_400(tensor_http, value):
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    # read as latin-1, these bytes are '²', '¹', '³': str.isdigit() accepts them, int() does not
    r = tensor_http.post("/v2/models/dense/infer", content=body.encode(),
                         headers={"Inference-Header-Content-Length": value})
    assert r.status_code == 400, r.text
    assert "Inference-Header-Content-Length" in r.json()["error"]
    _kserve_still_serves(tensor_http)


@pytest.mark.parametrize("path,content_type", [
    ("/v2/models/dense/infer", "application/octet-stream"),
    ("/v2/models/dense/infer", "text/plain"),
    ("/v1/models/dense:predict", "text/plain"),
    ("/v1/models/dense:predict", "application/octet-stream"),
])
def test_deep_json_to_routes_that_parse_their_own_body_is_a_400(tensor_http, path, content_type):
    r = tensor_http.post(path, content=DEEP, headers={"content-type": content_type})
    assert r.status_code == 400, r.text
    assert "nested deeper" in r.json()["error"]
    _kserve_still_serves(tensor_http)


@pytest.mark.parametrize("version", ["%C2%B3", "%C2%B2", "1%C2%B9"], ids=["three", "two", "one-one"])
def test_model_version_with_non_ascii_digits_is_a_400(tensor_http, version):
    """Found by bench/fuzz.py: '³' passes str.isdigit(), int() refuses it."""
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    r = tensor_http.post(f"/v2/models/dense/versions/{version}/infer", json=body)
    assert r.status_code == 400, r.text
    assert "version" in r.json()["error"]
    assert tensor_http.get(f"/v1/models/dense/versions/{version}").status_code == 400
    _kserve_still_serves(tensor_http)


def test_kserve_binary_tail_is_not_mistaken_for_deep_json(tensor_http):
    """Raw FP32 bytes full of `[` (0x5b) after the JSON header still infer."""
    x = np.full((1, 4), np.frombuffer(b"[[[[", dtype=np.float32)[0], dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                     "parameters": {"binary_data_size": 16}}]}).encode()
    r = tensor_http.post("/v2/models/dense/infer", content=header + x.tobytes(),
                         headers={"Inference-Header-Content-Length": str(len(header)),
                                  "content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text


def test_tensor_server_logged_no_server_fault(tensor_server):
    """Everything sent above was the client's fault: nothing was logged as an unhandled error."""
    assert "unhandled error" not in tensor_server.log()


def test_anthropic_messages_top_k_beyond_the_pipeline_is_a_400(http):
    """The bound lives in the shared sampling checks, so every front end that sets top_k gets it."""
    r = http.post("/v1/messages", json={"model": LLM, "messages": MSG, "max_tokens": 2, "top_k": 2**64})
    assert r.status_code == 400, r.text
    assert "top_k" in r.json()["error"]["message"]
