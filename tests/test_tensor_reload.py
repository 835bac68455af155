"""Runtime changes for tensor models: version folders added/removed, policy edits, entries added/removed,
through `POST /v1/config/reload` (and the repository poller); clients see them through KServe."""
from __future__ import annotations

import shutil

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.fixtures_tensor import dense_expected, dense_repository, static_repository
from tests.helpers import wait_for, write_config
from tests.server import ServerProcess

X = np.array([[1, 2, 3, 4]], dtype=np.float32)


def infer(client, model="hot", version=""):
    tensor = httpclient.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(X)
    result = client.infer(model, [tensor], model_version=version)
    return result.get_response()["model_version"], result.as_numpy("y")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("reload")
    shutil.copytree(dense_repository() / "1", root / "hot" / "1")
    return root


@pytest.fixture(scope="module")
def server(repo):
    write_config(repo / "config.json", [{"name": "hot", "base_path": "hot"}])
    server = ServerProcess("--config_path", str(repo / "config.json"), "--file_system_poll_wait_seconds", "0",
                           log_name="tensor-reload").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    c = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield c
    c.close()


def reload(server) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/config/reload", timeout=120)


def test_new_version_folder_becomes_default_and_removal_falls_back(server, client, repo):
    version, y = infer(client)
    assert version == "1" and np.array_equal(y, dense_expected(X, 1))
    assert reload(server).status_code == 200  # nothing changed

    shutil.copytree(dense_repository() / "2", repo / "hot" / "2")
    r = reload(server)
    assert r.status_code == 201
    statuses = [{k: v for k, v in entry.items() if k != "loaded"} for entry in r.json()["hot"]["model_version_status"]]
    assert all(entry["loaded"] for entry in r.json()["hot"]["model_version_status"])
    assert statuses == [
        {"version": "1", "state": "END", "status": {"error_code": "OK", "error_message": "OK"}},
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": "OK"}}]
    version, y = infer(client)
    assert version == "2" and np.array_equal(y, dense_expected(X, 2))
    assert not client.is_model_ready("hot", "1")

    shutil.rmtree(repo / "hot" / "2")
    assert reload(server).status_code == 201
    version, y = infer(client)
    assert version == "1" and np.array_equal(y, dense_expected(X, 1))


def test_policy_change_and_entries_added_and_removed(server, client, repo):
    shutil.copytree(dense_repository() / "3", repo / "hot" / "3", dirs_exist_ok=True)
    write_config(repo / "config.json", [
        {"name": "hot", "base_path": "hot", "model_version_policy": {"all": {}}},
        {"name": "added", "base_path": str(static_repository())},
    ])
    assert reload(server).status_code == 201
    assert client.get_model_metadata("hot")["versions"] == ["1", "3"]
    assert np.array_equal(infer(client, version="1")[1], dense_expected(X, 1))
    assert np.array_equal(infer(client)[1], dense_expected(X, 3))
    assert client.is_model_ready("added")

    write_config(repo / "config.json", [{"name": "hot", "base_path": "hot",
                                         "model_version_policy": {"specific": {"versions": [1]}}}])
    assert reload(server).status_code == 201
    assert client.get_model_metadata("hot")["versions"] == ["1"]
    assert not client.is_model_ready("added")
    status = httpx.get(f"{server.url}/v1/config").json()
    assert [(v["version"], v["state"]) for v in status["hot"]["model_version_status"]] == [("1", "AVAILABLE")]
    # a removed model stays listed with state END (after its in-flight requests finished), as in OVMS
    wait_for(lambda: httpx.get(f"{server.url}/v1/config").json()["added"]["model_version_status"][0]["state"]
             == "END", 10, 0.1, "the removed model in state END")


def test_invalid_config_changes_nothing(server, client, repo):
    good = (repo / "config.json").read_text()
    (repo / "config.json").write_text("{not json")
    r = reload(server)
    assert r.status_code == 400 and "error" in r.json()
    assert infer(client)[0] == "1"
    (repo / "config.json").write_text(good)
    assert reload(server).status_code in (200, 201)


def test_poller_picks_up_a_new_version_folder(tmp_path):
    shutil.copytree(dense_repository() / "1", tmp_path / "m" / "1")
    server = ServerProcess("--model_path", str(tmp_path / "m"), "--model_name", "m",
                           "--file_system_poll_wait_seconds", "0.2", log_name="tensor-poll").start()
    try:
        with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
            assert infer(client, "m")[0] == "1"
            shutil.copytree(dense_repository() / "2", tmp_path / "m" / "2")
            wait_for(lambda: client.get_model_metadata("m")["versions"] == ["2"], 60, 0.1, "version 2 polled")
            version, y = infer(client, "m")
            assert version == "2" and np.array_equal(y, dense_expected(X, 2))
    finally:
        server.stop()
