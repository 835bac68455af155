"""Runtime config changes: add, change and remove models while streams run; status; broken configs."""
from __future__ import annotations

import asyncio
import json
import threading

import httpx
import openai
import pytest

from tests.fixtures_models import smollm2_gguf
from tests.helpers import wait_for, write_config
from tests.server import ServerProcess

GGUF = str(smollm2_gguf())
STORY = [{"role": "user", "content": "Tell me a long story about a dragon."}]

pytestmark = pytest.mark.slow  # models loaded and unloaded at run time, long streams across reloads


def entry(name: str, **options) -> dict:
    return {"name": name, "base_path": GGUF, **options}


def states(http: httpx.Client) -> dict[str, tuple[str, str, str]]:
    body = http.get("/v1/config").json()
    out = {}
    for name, item in body.items():
        (version,) = item["model_version_status"]
        out[name] = (version["state"], version["status"]["error_code"], version["status"]["error_message"])
    return out


@pytest.fixture(scope="module")
def reload_server(tmp_path_factory):
    """Polling off: changes happen only on POST /v1/config/reload."""
    config = tmp_path_factory.mktemp("reload") / "config.json"
    write_config(config, [entry("chat-a"), entry("chat-b")])
    server = ServerProcess("--config_path", str(config), "--file_system_poll_wait_seconds", "0",
                           log_name="reload").start()
    yield server, config
    server.stop()


@pytest.fixture(scope="module")
def http(reload_server):
    with httpx.Client(base_url=reload_server[0].url, timeout=120) as client:
        yield client


def test_config_status_lists_each_model_available(http):
    assert states(http) == {"chat-a": ("AVAILABLE", "OK", "OK"), "chat-b": ("AVAILABLE", "OK", "OK")}
    assert http.get("/v1/config").json()["chat-a"]["model_version_status"][0]["version"] == "1"


def test_reload_without_changes_is_200(http):
    r = http.post("/v1/config/reload")
    assert r.status_code == 200
    assert set(r.json()) == {"chat-a", "chat-b"}


def test_add_change_remove_while_eight_streams_run_fails_none(reload_server, http):
    server, config = reload_server
    results: list = []
    started = threading.Semaphore(0)

    async def stream(client: openai.AsyncOpenAI, model: str):
        response = await client.chat.completions.create(
            model=model, messages=STORY, max_tokens=300, temperature=0, stream=True,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
        text, finish, usage, first = "", None, None, True
        async for chunk in response:
            if first:
                started.release()
                first = False
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            usage = chunk.usage or usage
        return model, text, finish, usage

    async def eight():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
        try:
            return await asyncio.gather(*(stream(client, "chat-a" if i % 2 else "chat-b") for i in range(8)),
                                        return_exceptions=True)
        finally:
            await client.close()

    runner = threading.Thread(target=lambda: results.extend(asyncio.run(eight())))
    runner.start()
    for _ in range(8):
        assert started.acquire(timeout=120)

    # short requests keep arriving at chat-a while it is swapped
    stop_hammer = threading.Event()
    hammer_statuses: list[int] = []

    def hammer():
        with httpx.Client(base_url=server.url, timeout=120) as c:
            while not stop_hammer.is_set():
                r = c.post("/v3/chat/completions", json={"model": "chat-a", "messages": STORY, "max_tokens": 3})
                hammer_statuses.append(r.status_code)

    hammering = threading.Thread(target=hammer)
    hammering.start()
    # change chat-a (an option), remove chat-b, add chat-c
    write_config(config, [entry("chat-a", max_num_seqs=64), entry("chat-c")])
    r = http.post("/v1/config/reload")
    stop_hammer.set()
    hammering.join()
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["chat-a"]["model_version_status"][0]["state"] == "AVAILABLE"
    assert body["chat-c"]["model_version_status"][0]["state"] == "AVAILABLE"
    assert body["chat-b"]["model_version_status"][0]["state"] in ("UNLOADING", "END")
    # the removed model takes no new requests; the added one does
    gone = http.post("/v3/chat/completions", json={"model": "chat-b", "messages": STORY, "max_tokens": 3})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
    added = http.post("/v3/chat/completions", json={"model": "chat-c", "messages": STORY, "max_tokens": 3})
    assert added.status_code == 200

    runner.join(timeout=600)
    assert len(results) == 8
    for result in results:
        assert not isinstance(result, BaseException), repr(result)
        model, text, finish, usage = result
        assert finish == "length" and usage.completion_tokens == 300 and text, (model, finish, usage)
    assert hammer_statuses and set(hammer_statuses) == {200}, hammer_statuses
    wait_for(lambda: states(http)["chat-b"][0] == "END", interval=0.2, message="chat-b unloaded")
    assert {n: s[0] for n, s in states(http).items()} == {"chat-a": "AVAILABLE", "chat-b": "END",
                                                          "chat-c": "AVAILABLE"}
    models = {m["id"] for m in http.get("/v3/models").json()["data"]}
    assert models == {"chat-a", "chat-c"}


def test_broken_config_file_leaves_the_server_serving_as_before(reload_server, http):
    _, config = reload_server
    before = http.get("/v1/config").json()
    good = config.read_text()
    try:
        write_config(config, text='{"model_config_list": [')
        r = http.post("/v1/config/reload")
        assert r.status_code == 400
        # the file is named, not its path on the server's disk (README: Model management)
        assert ".../config.json" in r.json()["error"] and str(config) not in r.json()["error"]
        assert "not valid JSON" in r.json()["error"]
        write_config(config, text=json.dumps({"model_config_list": [{"config": entry("chat-a")}], "modelz": []}))
        r = http.post("/v1/config/reload")
        assert r.status_code == 400 and "modelz" in r.json()["error"]
        assert http.get("/v1/config").json() == before
    finally:
        write_config(config, text=good)
    assert http.post("/v1/config/reload").status_code == 200
    ok = http.post("/v3/chat/completions", json={"model": "chat-a", "messages": STORY, "max_tokens": 3})
    assert ok.status_code == 200


def test_invalid_entries_are_skipped_and_reported_while_the_others_load(reload_server, http):
    _, config = reload_server
    good = config.read_text()
    try:
        write_config(config, [
            entry("chat-a", max_num_seqs=64), entry("chat-c"),
            entry("bad-option", max_num_seqs="many"),
            {"base_path": GGUF},
            entry("chat-a", max_num_seqs=32),  # duplicate name: skipped, chat-a keeps its config
            entry("chat-d"),
        ])
        r = http.post("/v1/config/reload")
        assert r.status_code == 201
        found = states(http)
        assert found["chat-d"][0] == "AVAILABLE"
        assert found["bad-option"][1] == "FAILED_PRECONDITION"
        assert "max_num_seqs" in found["bad-option"][2] and ".../config.json" in found["bad-option"][2]
        assert str(config.parent) not in found["bad-option"][2]
        assert "model_config_list[3]" in found and "name" in found["model_config_list[3]"][2]
        assert found["chat-a"][0] == "AVAILABLE"
        ok = http.post("/v3/chat/completions", json={"model": "chat-d", "messages": STORY, "max_tokens": 3})
        assert ok.status_code == 200
        bad = http.post("/v3/chat/completions", json={"model": "bad-option", "messages": STORY, "max_tokens": 3})
        assert bad.status_code == 404
    finally:
        write_config(config, text=good)
    assert http.post("/v1/config/reload").status_code == 201
    assert states(http)["chat-d"][0] in ("UNLOADING", "END")


def test_a_model_that_fails_to_load_is_reported_and_others_keep_serving(reload_server, http, tmp_path):
    _, config = reload_server
    good = config.read_text()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    try:
        write_config(config, [entry("chat-a", max_num_seqs=64), entry("chat-c"),
                              {"name": "broken", "base_path": str(broken)}])
        r = http.post("/v1/config/reload")
        assert r.status_code == 201
        state, code, message = states(http)["broken"]
        assert state == "LOADING" and code == "FAILED_PRECONDITION" and "broken.gguf" in message
    finally:
        write_config(config, text=good)
    http.post("/v1/config/reload")
    ok = http.post("/v3/chat/completions", json={"model": "chat-a", "messages": STORY, "max_tokens": 3})
    assert ok.status_code == 200


def test_polling_picks_up_config_changes(tmp_path):
    config = tmp_path / "config.json"
    write_config(config, [entry("poll-a")])
    server = ServerProcess("--config_path", str(config), "--file_system_poll_wait_seconds", "0.5",
                           log_name="poll").start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            write_config(config, [entry("poll-a"), entry("poll-b")])
            wait_for(lambda: states(http).get("poll-b", ("",))[0] == "AVAILABLE", interval=0.2, message="poll-b loaded")
            r = http.post("/v3/chat/completions", json={"model": "poll-b", "messages": STORY, "max_tokens": 3})
            assert r.status_code == 200
            write_config(config, text="{broken")  # polled too: nothing changes
            wait_for(lambda: "config reload rejected" in server.log(), interval=0.2, message="the broken config polled")
            assert states(http)["poll-b"][0] == "AVAILABLE"
            write_config(config, [entry("poll-b")])
            wait_for(lambda: states(http)["poll-a"][0] == "END", interval=0.2, message="poll-a unloaded")
            assert http.post("/v3/chat/completions", json={"model": "poll-b", "messages": STORY,
                                                             "max_tokens": 3}).status_code == 200
    finally:
        server.stop()
    assert "config reload rejected" in server.log()
