"""Pulling from a HuggingFace-compatible hub (a local fake on 127.0.0.1), converting, then serving."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from servables.config_file import read_config
from tests.fake_hub import FakeHub
from tests.fixtures_models import smollm2_gguf, tiny_llama_pytorch
from tests.server import ROOT, ServerProcess

GGUF_REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
TORCH_REPO = "test-org/tiny-llama"
ODD_REPO = "test-org/unsupported-arch"

pytestmark = pytest.mark.slow  # pulls, conversions and a server per test


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    gguf_repo = tmp_path_factory.mktemp("gguf-repo")
    (gguf_repo / smollm2_gguf().name).symlink_to(smollm2_gguf())
    (gguf_repo / "README.md").write_text("# SmolLM2 GGUF\n")
    odd = tmp_path_factory.mktemp("odd-repo")
    (odd / "config.json").write_text(json.dumps({"architectures": ["FrobnicatorForCausalLM"],
                                                 "model_type": "frobnicator"}))
    (odd / "model.safetensors").write_bytes(b"\0" * 16)
    server = FakeHub()
    server.add_repo(GGUF_REPO, gguf_repo)
    server.add_repo(TORCH_REPO, tiny_llama_pytorch())
    server.add_repo(ODD_REPO, odd)
    server.start()
    yield server
    server.stop()


def hub_env(hub: FakeHub, tmp: Path) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


def test_pull_gguf_then_serve_it_by_source_name(hub, tmp_path):
    repo = tmp_path / "models"
    env = hub_env(hub, tmp_path)
    hub.cut_once.add((GGUF_REPO, smollm2_gguf().name))  # the connection drops half-way: the download resumes
    hub.requests.clear()
    pulled = cli("pull", "--source_model", GGUF_REPO, "--gguf_filename", smollm2_gguf().name,
                 "--model_repository_path", str(repo), env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert any(method == "GET" and (span or "").startswith("bytes=") for method, _, span in hub.requests)
    folder = repo / GGUF_REPO
    assert pulled.stdout.strip() == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([smollm2_gguf().name, "genai_gateway.json"])
    assert json.loads((folder / "genai_gateway.json").read_text())["task"] == "text_generation"
    assert not (repo / ".pulling").exists()
    # download progress is plain log lines when stderr is not a terminal
    assert "100%" in pulled.stderr and "\r" not in pulled.stderr
    listed = cli("serve", "--list_models", "--model_repository_path", str(repo), env=env)
    assert listed.stdout.split() == [GGUF_REPO]
    # pulled already: serving needs no hub at all
    server = ServerProcess("--source_model", GGUF_REPO, "--model_repository_path", str(repo),
                           env={**env, "HF_HUB_OFFLINE": "1"}, log_name="pull-gguf").start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
        r = client.chat.completions.create(model=GGUF_REPO, messages=[{"role": "user", "content": "Say hi."}],
                                           max_tokens=8, temperature=0)
        assert r.choices[0].message.content
    finally:
        server.stop()


def test_pytorch_repo_is_converted_then_served(hub, tmp_path):
    repo = tmp_path / "models"
    server = ServerProcess("--source_model", TORCH_REPO, "--model_repository_path", str(repo),
                           "--weight-format", "fp16", env=hub_env(hub, tmp_path), log_name="pull-torch").start(600)
    try:
        folder = repo / TORCH_REPO
        assert (folder / "openvino_model.xml").is_file() and (folder / "openvino_tokenizer.xml").is_file()
        settings = json.loads((folder / "genai_gateway.json").read_text())
        assert settings["source_format"] == "converted" and settings["weight_format"] == "fp16"
        client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
        r = client.chat.completions.create(model=TORCH_REPO, messages=[{"role": "user", "content": "Hello"}],
                                           max_tokens=6, extra_body={"ignore_eos": True})
        assert r.usage.completion_tokens == 6 and r.choices[0].finish_reason == "length"
        assert client.models.retrieve(TORCH_REPO).id == TORCH_REPO
    finally:
        server.stop()
    assert "converting test-org/tiny-llama to OpenVINO IR" in server.log()


def test_unknown_repo_is_a_clear_error_and_leaves_nothing(hub, tmp_path):
    repo = tmp_path / "models"
    result = cli("pull", "--source_model", "test-org/does-not-exist", "--model_repository_path", str(repo),
                 env=hub_env(hub, tmp_path))
    assert result.returncode == 2
    assert "test-org/does-not-exist was not found" in result.stderr and "404" in result.stderr
    assert not (repo / "test-org" / "does-not-exist").exists()
    missing_file = cli("pull", "--source_model", GGUF_REPO, "--gguf_filename", "nope.gguf",
                       "--model_repository_path", str(repo), env=hub_env(hub, tmp_path))
    assert missing_file.returncode == 2 and "nope.gguf was not found" in missing_file.stderr


def test_no_network_is_a_clear_error(tmp_path):
    result = cli("pull", "--source_model", GGUF_REPO, "--model_repository_path", str(tmp_path / "models"),
                 env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf-home")})
    assert result.returncode == 2
    assert "http://127.0.0.1:9 is not reachable (no network?)" in result.stderr, result.stderr[-2000:]


def test_failed_download_leaves_no_model_and_a_retry_finishes_it(hub, tmp_path):
    repo = tmp_path / "models"
    env = hub_env(hub, tmp_path)
    hub.forbidden.add((GGUF_REPO, smollm2_gguf().name))
    try:
        failed = cli("pull", "--source_model", GGUF_REPO, "--model_repository_path", str(repo), "--task",
                     "text_generation", env=env)
    finally:
        hub.forbidden.clear()
    assert failed.returncode == 2 and "403" in failed.stderr
    assert not (repo / GGUF_REPO).exists()
    assert cli("serve", "--list_models", "--model_repository_path", str(repo), env=env).stdout.split() == []
    retried = cli("pull", "--source_model", GGUF_REPO, "--model_repository_path", str(repo), env=env)
    assert retried.returncode == 0, retried.stderr
    assert (repo / GGUF_REPO / smollm2_gguf().name).is_file()


def test_unsupported_architecture_is_a_clear_error(hub, tmp_path):
    repo = tmp_path / "models"
    result = cli("pull", "--source_model", ODD_REPO, "--model_repository_path", str(repo), "--task",
                 "text_generation", env=hub_env(hub, tmp_path))
    assert result.returncode == 2
    assert "unsupported architecture" in result.stderr and "frobnicator" in result.stderr, result.stderr[-3000:]
    assert not (repo / ODD_REPO).exists()


def test_add_to_config_and_remove_from_config(hub, tmp_path):
    repo = tmp_path / "models"
    env = hub_env(hub, tmp_path)
    assert cli("pull", "--source_model", GGUF_REPO, "--gguf_filename", smollm2_gguf().name,
               "--model_repository_path", str(repo), env=env).returncode == 0
    added = cli("serve", "--add_to_config", "--model_repository_path", str(repo), "--model_name", GGUF_REPO,
                env=env)
    assert added.returncode == 0, added.stderr
    config = repo / "config.json"
    document = json.loads(config.read_text())
    assert document["model_config_list"] == [{"config": {"name": GGUF_REPO, "base_path": GGUF_REPO}}]
    (spec,) = read_config(config).specs
    assert spec.task == "text_generation" and spec.base_path == repo / GGUF_REPO / smollm2_gguf().name
    removed = cli("serve", "--remove_from_config", "--config_path", str(config), "--model_name", GGUF_REPO,
                  env=env)
    assert removed.returncode == 0
    assert json.loads(config.read_text())["model_config_list"] == []
    again = cli("serve", "--remove_from_config", "--config_path", str(config), "--model_name", GGUF_REPO, env=env)
    assert again.returncode == 2 and "no model named" in again.stderr
