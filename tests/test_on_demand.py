"""On-demand models, idle unload and the load/unload admin endpoints, on a real server."""
from __future__ import annotations

import threading
from pathlib import Path

import httpx
import openai
import pytest

from tests.fixtures_models import smollm2_gguf
from tests.helpers import wait_for, write_config
from tests.server import ServerProcess
from tests.test_config_reload import STORY, entry, states

GGUF = smollm2_gguf()

pytestmark = pytest.mark.slow  # models loaded on request and unloaded while the tests run
HELLO = [{"role": "user", "content": "Say hello."}]


def model_states(http: httpx.Client) -> dict[str, str]:
    return {m["id"]: m["state"] for m in http.get("/v3/models").json()["data"]}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def chat(http: httpx.Client, model: str, max_tokens: int = 4) -> httpx.Response:
    return http.post("/v3/chat/completions", json={"model": model, "messages": HELLO, "max_tokens": max_tokens})


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory):
    """Only an on-demand model; unused models unload after 3 s."""
    config = tmp_path_factory.mktemp("on-demand") / "config.json"
    write_config(config, [entry("lazy", load="on_demand")])
    server = ServerProcess("--config_path", str(config), "--models_autoload", "--idle_unload_seconds", "3",
                           "--metrics_enable", log_name="on-demand").start()
    yield server
    server.stop()


def test_first_request_loads_the_model_and_idle_unload_frees_its_memory(idle_server):
    pid = idle_server.proc.pid
    with httpx.Client(base_url=idle_server.url, timeout=120) as http:
        assert model_states(http) == {"lazy": "unloaded"}
        (version,) = http.get("/v1/config").json()["lazy"]["model_version_status"]
        assert version["state"] == "AVAILABLE" and version["loaded"] is False
        assert http.get("/v2/models/lazy/ready").status_code == 503  # the readiness of one model: loaded
        before = rss_kib(pid)

        client = openai.OpenAI(base_url=f"{idle_server.url}/v3", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="lazy", messages=HELLO, max_tokens=4)
        assert reply.choices[0].message.content and reply.usage.completion_tokens > 0
        assert model_states(http) == {"lazy": "loaded"}
        assert http.get("/v2/models/lazy/ready").status_code == 200
        assert 'ovms_graph_loaded{name="lazy"} 1.0' in http.get("/metrics").text
        loaded = rss_kib(pid)
        assert loaded - before > 50 * 1024  # the model takes tens of MiB at least

        wait_for(lambda: model_states(http) == {"lazy": "unloaded"}, timeout=30)
        assert 'ovms_graph_loaded{name="lazy"} 0.0' in http.get("/metrics").text
        wait_for(lambda: rss_kib(pid) < loaded - (loaded - before) / 2, timeout=30)

        again = chat(http, "lazy")
        assert again.status_code == 200, again.text
        assert model_states(http) == {"lazy": "loaded"}


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory):
    """A resident and an on-demand model; a request waits at most 50 ms for a load."""
    config = tmp_path_factory.mktemp("admin") / "config.json"
    write_config(config, [entry("chat-a"), entry("lazy", load="on_demand")])
    server = ServerProcess("--config_path", str(config), "--models_autoload",
                           "--models_autoload_timeout_seconds", "0.05", log_name="admin").start()
    yield server
    server.stop()


def test_a_load_slower_than_the_timeout_is_a_503_with_retry_after_then_succeeds(admin_server):
    with httpx.Client(base_url=admin_server.url, timeout=120) as http:
        first = chat(http, "lazy")
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "model_not_loaded"
        assert int(first.headers["retry-after"]) > 0
        wait_for(lambda: chat(http, "lazy").status_code == 200, timeout=60, interval=0.5)


def test_unload_drains_running_streams_and_load_brings_the_model_back(admin_server):
    with httpx.Client(base_url=admin_server.url, timeout=120) as http:
        results: list = []
        started = threading.Event()

        def stream() -> None:
            client = openai.OpenAI(base_url=f"{admin_server.url}/v3", api_key="unused", max_retries=0)
            chunks = client.chat.completions.create(model="chat-a", messages=STORY, max_tokens=120, temperature=0,
                                                    stream=True, extra_body={"ignore_eos": True})
            finish = None
            for chunk in chunks:
                started.set()
                finish = chunk.choices[0].finish_reason or finish if chunk.choices else finish
            results.append(finish)

        runner = threading.Thread(target=stream)
        runner.start()
        assert started.wait(60)
        unloaded = http.post("/v3/models/chat-a/unload")
        assert unloaded.status_code == 200 and unloaded.json()["state"] == "unloaded"
        assert model_states(http)["chat-a"] == "unloaded"
        runner.join(120)
        assert results == ["length"]  # the stream in flight finished
        wait_for(lambda: states(http)["chat-a"][0] == "AVAILABLE")  # drained; wakes on request (autoload)

        loaded = http.post("/v3/models/chat-a/load")
        assert loaded.status_code == 200 and loaded.json()["state"] == "loaded"
        assert chat(http, "chat-a").status_code == 200
        assert http.post("/v3/models/nope/load").status_code == 404
