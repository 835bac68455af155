"""Model repositories on object storage (`s3://` base paths) against a local S3 server (moto).

A tensor model with versions in a bucket, a generative model (the tiny cross-encoder) from a
bucket, and the load errors a user gets for a missing bucket, a missing key and wrong credentials
while the other models keep serving.
"""
from __future__ import annotations

import json
import os

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.fixtures_embed import TINY_CE_PARAMS, build_tiny_cross_encoder
from tests.fixtures_storage import start_s3_server
from tests.fixtures_tensor import dense_expected, dense_repository, static_repository
from tests.model_cache import cached
from tests.server import ServerProcess

X = np.array([[1, 2, 3, 4]], dtype=np.float32)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = start_s3_server(tmp_path_factory.mktemp("moto") / "moto.log")
    client = server.client()
    client.create_bucket(Bucket="models")
    for version in (1, 2):
        server.upload(dense_repository() / str(version), "models", f"dense/{version}")
    server.upload(cached("tiny-cross-encoder", TINY_CE_PARAMS, build_tiny_cross_encoder),
                  "models", "rerank/tiny-ce")
    yield server
    server.stop()


def write_config(path, entries) -> str:
    path.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    return str(path)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gateway-cache")


@pytest.fixture(scope="module")
def server(s3, cache_dir, tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("storage") / "config.json", [
        {"name": "dense", "base_path": "s3://models/dense"},
        {"name": "ce", "base_path": "s3://models/rerank/tiny-ce"},
        {"name": "no_bucket", "base_path": "s3://missing-bucket/dense"},
        {"name": "no_key", "base_path": "s3://models/not/there"},
        {"name": "local", "base_path": str(static_repository())},
    ])
    env = s3.env(GENAI_GATEWAY_CACHE=str(cache_dir))
    server = ServerProcess("--config_path", config, "--file_system_poll_wait_seconds", "0", env=env,
                           log_name="tensor-storage").start()
    yield server
    server.stop()


def infer(server, model="dense", version=""):
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
        tensor = httpclient.InferInput("x", [1, 4], "FP32")
        tensor.set_data_from_numpy(X)
        result = client.infer(model, [tensor], model_version=version)
        return result.get_response()["model_version"], result.as_numpy("y")


def error_of(status: dict, name: str) -> str:
    return status[name]["model_version_status"][0]["status"]["error_message"]


def test_tensor_model_versions_from_a_bucket_and_a_new_version_after_reload(server, s3):
    version, y = infer(server)
    assert version == "2" and np.array_equal(y, dense_expected(X, 2))

    s3.upload(dense_repository() / "3", "models", "dense/3")
    r = httpx.post(f"{server.url}/v1/config/reload", timeout=120)
    assert r.status_code == 201
    assert [(v["version"], v["state"]) for v in r.json()["dense"]["model_version_status"]] == [
        ("2", "END"), ("3", "AVAILABLE")]
    version, y = infer(server)
    assert version == "3" and np.array_equal(y, dense_expected(X, 3))


def test_generative_model_from_a_bucket_serves(server):
    r = httpx.post(f"{server.url}/v3/rerank", json={"model": "ce", "query": "capital of France",
                                                    "documents": ["Paris is the capital.", "Bananas are yellow."]},
                   timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert sorted(item["index"] for item in results) == [0, 1]
    assert all(np.isfinite(item["relevance_score"]) for item in results)


def test_missing_bucket_and_key_are_load_errors_while_others_serve(server):
    status = httpx.get(f"{server.url}/v1/config").json()
    assert "bucket 'missing-bucket' does not exist" in error_of(status, "no_bucket")
    assert "s3://models/not/there: no files" in error_of(status, "no_key")
    assert status["no_bucket"]["model_version_status"][0]["status"]["error_code"] == "FAILED_PRECONDITION"
    assert httpx.get(f"{server.url}/v2/models/no_bucket/ready").status_code == 404
    assert infer(server, "local")[0] == "1"


def test_mirrored_files_are_reused_not_downloaded_again(s3, tmp_path, monkeypatch):
    from servables import object_storage

    for key, value in s3.env(GENAI_GATEWAY_CACHE=str(tmp_path)).items():
        monkeypatch.setenv(key, value)
    local = object_storage.sync("s3://models/dense")
    model = local / "1" / "model.onnx"
    before = os.stat(model)
    assert object_storage.sync("s3://models/dense") == local
    after = os.stat(model)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_wrong_credentials_are_a_clear_load_error(s3, tmp_path):
    config = write_config(tmp_path / "config.json", [
        {"name": "dense", "base_path": "s3://models/dense"},
        {"name": "local", "base_path": str(static_repository())},
    ])
    env = s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret", GENAI_GATEWAY_CACHE=str(tmp_path / "cache"))
    server = ServerProcess("--config_path", config, env=env, log_name="tensor-storage-creds").start()
    try:
        status = httpx.get(f"{server.url}/v1/config").json()
        assert "access denied; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in error_of(status, "dense")
        assert infer(server, "local")[0] == "1"
    finally:
        server.stop()


def test_model_path_in_a_bucket_and_the_poller_picks_up_a_new_version(s3, tmp_path):
    import time

    s3.upload(dense_repository() / "1", "models", "polled/1")
    env = s3.env(GENAI_GATEWAY_CACHE=str(tmp_path / "cache"))
    server = ServerProcess("--model_path", "s3://models/polled", "--model_name", "polled",
                           "--file_system_poll_wait_seconds", "0.2", env=env, log_name="tensor-storage-poll").start()
    try:
        assert infer(server, "polled")[0] == "1"
        s3.upload(dense_repository() / "2", "models", "polled/2")
        with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
            deadline = time.monotonic() + 60
            while client.get_model_metadata("polled")["versions"] != ["2"] and time.monotonic() < deadline:
                time.sleep(0.2)
        version, y = infer(server, "polled")
        assert version == "2" and np.array_equal(y, dense_expected(X, 2))
    finally:
        server.stop()
