"""API correctness under hostile or broken input (issue 13): what a client is told, in its API's shape.

- Unknown message roles are 400s naming the field, on chat, Responses and the Anthropic Messages API.
- A server whose config has a broken model stays up and live, serves the good model, and is not ready
  (`--strict_readiness`, README "Health and readiness") until the broken entry is gone.
- Load errors in `GET /v1/config` and a rejected reload name models, not the server's paths.
- Anthropic routes answer the guard's errors (too large, too deep), malformed JSON, a missing key and an
  unknown model in Anthropic's error shape; OpenAI and KServe routes keep theirs.
"""
from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
import tritonclient.grpc as grpcclient

from servables.sources import default_embeddings_dir
from tests.conftest import LLM
from tests.helpers import write_config
from tests.server import ServerProcess, free_port

KEY = "sk-correctness"
GOOD = "good-embeddings"
BROKEN = "broken-llm"
MAX_BODY = 4096


def _anthropic_shape(body: object, error_type: str) -> None:
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert body["error"]["type"] == error_type and body["error"]["message"], body


# --- message roles (the shared default server) ----------------------------------------------------

def test_chat_refuses_an_unknown_role_naming_it_and_keeps_serving(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=LLM, max_tokens=2, messages=[
            {"role": "user", "content": "Hi"}, {"role": "wizard", "content": "Abracadabra"}])
    error = refused.value.body
    assert error["param"] == "messages.1.role" and "'developer'" in error["message"], error
    ok = client.chat.completions.create(model=LLM, max_tokens=2, messages=[
        {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert ok.choices[0].finish_reason == "length"


def test_a_developer_message_is_a_system_message_for_a_template_without_developers(client):
    def prompt_tokens(role: str) -> int:
        return client.chat.completions.create(model=LLM, max_tokens=1, messages=[
            {"role": role, "content": "Answer in French."}, {"role": "user", "content": "Hi"}]).usage.prompt_tokens

    # SmolLM2's template adds its default system prompt when the first message is not `system`
    assert prompt_tokens("developer") == prompt_tokens("system")


def test_responses_refuses_an_unknown_input_role_naming_it(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=LLM, max_output_tokens=2, input=[{"role": "wizard", "content": "Hi"}])
    assert refused.value.body["param"] == "input[0].role" and "wizard" in refused.value.body["message"]


def test_anthropic_messages_refuse_an_unknown_role_in_anthropic_shape(llm_server):
    sdk = anthropic.Anthropic(base_url=llm_server.url, api_key="unused", max_retries=0)
    for role in ("wizard", "system"):  # Anthropic takes `system` as a top-level field, not as a role
        with pytest.raises(anthropic.BadRequestError) as refused:
            sdk.messages.create(model=LLM, max_tokens=2, messages=[{"role": role, "content": "Hi"}])
        _anthropic_shape(refused.value.body, "invalid_request_error")
        assert "messages.0.role" in refused.value.body["error"]["message"]


# --- a server with a broken model -----------------------------------------------------------------

@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    """The packaged MiniLM (good) beside an LLM entry whose folder holds no model (broken), an API key
    and a small body limit; no config polling (the tests reload explicitly)."""
    folder = tmp_path_factory.mktemp("degraded")
    (folder / "empty-model").mkdir()
    (folder / "empty-model" / "config.json").write_text("{}")
    good = {"name": GOOD, "base_path": str(default_embeddings_dir()), "task": "embeddings"}
    broken = {"name": BROKEN, "base_path": str(folder / "empty-model"), "task": "text_generation"}
    config = write_config(folder / "config.json", [good, broken])
    grpc_port = free_port()
    server = ServerProcess("--config_path", str(config), "--max_request_bytes", str(MAX_BODY), "--port", str(grpc_port),
                           "--file_system_poll_wait_seconds", "0", env={"API_KEY": KEY}, log_name="degraded").start()
    server.folder, server.config, server.good = folder, config, good  # type: ignore[attr-defined]
    server.grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def degraded_http(degraded):
    with httpx.Client(base_url=degraded.url, timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def test_a_broken_model_leaves_the_server_live_not_ready_and_the_good_model_serving(degraded, degraded_http):
    assert degraded_http.get("/v2/health/live").status_code == 200
    ready = degraded_http.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json() == {"ready": False, "failed_models": [BROKEN]}
    assert degraded.grpc.is_server_live() and not degraded.grpc.is_server_ready()  # KServe v2 gRPC agrees
    assert degraded_http.get(f"/v2/models/{BROKEN}/ready").status_code == 404
    assert degraded_http.get(f"/v2/models/{GOOD}/ready").json() == {"name": GOOD, "ready": True}
    sdk = openai.OpenAI(base_url=f"{degraded.url}/v3", api_key=KEY, max_retries=0)
    assert len(sdk.embeddings.create(model=GOOD, input="still serving").data[0].embedding) == 384


def test_load_errors_name_the_model_not_the_servers_paths(degraded, degraded_http):
    status = degraded_http.get("/v1/config")
    assert status.status_code == 200
    message = status.json()[BROKEN]["model_version_status"][0]["status"]["error_message"]
    assert message.startswith(f"{BROKEN}: cannot load .../empty-model"), message
    assert str(degraded.folder) not in status.text and "Exception from" not in status.text and ".cpp" not in message


def test_a_rejected_reload_names_no_server_path(degraded, degraded_http):
    original = degraded.config.read_text()
    write_config(degraded.config, text='{"model_config_list": [')
    try:
        rejected = degraded_http.post("/v1/config/reload")
    finally:
        write_config(degraded.config, text=original)
    assert rejected.status_code == 400 and rejected.json()["error"].startswith("Reloading config file failed: ")
    assert str(degraded.folder) not in rejected.text and ".../config.json" in rejected.text


@pytest.mark.parametrize("path,headers,content,status,shape", [
    pytest.param("/v1/messages", {"x-api-key": KEY}, b"x" * (MAX_BODY + 1), 413, "request_too_large", id="too-large"),
    pytest.param("/v1/messages", {"x-api-key": KEY}, b"[" * 500 + b"]" * 500, 400, "invalid_request_error",
                 id="too-deep"),
    pytest.param("/v1/messages/count_tokens", {"x-api-key": KEY}, b'{"model": ', 400, "invalid_request_error",
                 id="malformed-json"),
    pytest.param("/v1/messages", {"x-api-key": KEY}, b'\xff\xfe{"model"', 400, "invalid_request_error",
                 id="not-utf8"),  # found by bench/fuzz.py: FastAPI's own "error parsing the body"
    pytest.param("/v1/messages", {}, b"{}", 401, "authentication_error", id="no-key"),
    pytest.param("/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, b"x" * (MAX_BODY + 1), 413, "openai",
                 id="openai-route-too-large"),
    pytest.param(f"/v2/models/{GOOD}/infer", {}, b"[" * 500 + b"]" * 500, 400, "tensor", id="kserve-route-too-deep"),
    pytest.param("/v1/messages/batches", {"x-api-key": KEY}, b"{}", 404, "not_found_error",
                 id="unknown-path-under-messages"),
    pytest.param("/v1/chat/no-such-thing", {"Authorization": f"Bearer {KEY}"}, b"{}", 404, "openai-404",
                 id="unknown-path-under-chat"),
])
def test_each_route_answers_the_guards_errors_in_its_own_api_shape(degraded, path, headers, content, status, shape):
    r = httpx.post(f"{degraded.url}{path}", content=content,
                   headers={"content-type": "application/json", **headers}, timeout=30)
    assert r.status_code == status, r.text
    if shape == "openai":
        assert r.json()["error"]["type"] == "invalid_request_error"
    elif shape == "openai-404":
        assert r.json()["error"]["type"] == "not_found_error"
    elif shape == "tensor":
        assert "nested deeper" in r.json()["error"]
    else:
        _anthropic_shape(r.json(), shape)


def test_anthropic_sdk_sees_anthropic_errors_for_unknown_model_and_oversized_body(degraded):
    sdk = anthropic.Anthropic(base_url=degraded.url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        sdk.messages.create(model="no-such-model", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    _anthropic_shape(unknown.value.body, "not_found_error")
    with pytest.raises(anthropic.APIStatusError) as large:
        sdk.messages.create(model=GOOD, max_tokens=2, messages=[{"role": "user", "content": "x" * MAX_BODY}])
    assert large.value.status_code == 413
    _anthropic_shape(large.value.body, "request_too_large")


def test_removing_the_broken_model_makes_the_server_ready(degraded, degraded_http):
    write_config(degraded.config, [degraded.good])
    assert degraded_http.post("/v1/config/reload").status_code == 201
    ready = degraded_http.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert degraded.grpc.is_server_ready()
    gone = degraded_http.get("/v1/config").json().get(BROKEN, {"model_version_status": [{"state": "END"}]})
    assert gone["model_version_status"][0]["state"] == "END"
