"""Route declarations: every POST route is protected or explicitly public, the API key guards exactly
the protected ones on a real server, and an unhandled error is a 500 in the API's shape that leaves
the keep-alive connection usable."""
from __future__ import annotations

import json
import re
import socket
import threading

import httpx
import pytest
import uvicorn

from gateway.app import HttpSettings, create_app
from gateway.error_policy import ErrorFamily
from gateway.routes import Access, Api, declaration_of, declared_router, served_routes
from scheduler.model_manager import ModelManager
from tests.server import ServerProcess, free_port

KEY = "route-key"


def _app():
    return create_app(ModelManager(), HttpSettings(api_key=KEY))


def _post_routes() -> list[tuple[str, object]]:
    return [(path, route) for path, methods, route in served_routes(_app()) if "POST" in methods]


def test_every_post_route_is_protected_or_explicitly_public():
    routes = _post_routes()
    assert len(routes) > 20
    undeclared = [path for path, route in routes if declaration_of(route) is None]
    assert undeclared == []
    public = sorted({path for path, route in routes if declaration_of(route).access is Access.PUBLIC})
    # the tensor APIs stay open, as in OVMS; everything else that takes a POST needs the key
    assert all(p.startswith(("/v2/models/", "/v1/models/")) for p in public), public


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("routes")
    (folder / "key.txt").write_text(KEY + "\n")
    (folder / "config.json").write_text(json.dumps({"model_config_list": []}))
    server = ServerProcess("--config_path", str(folder / "config.json"), "--api_key_file", str(folder / "key.txt"),
                           "--file_system_poll_wait_seconds", "0", log_name="routes").start()
    yield server
    server.stop()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "m", path).replace("/m", "/m:predict") if path.startswith("/v1/models/") \
        else re.sub(r"\{[^}]+\}", "m", path)


@pytest.mark.parametrize("path,family", sorted({(p, declaration_of(r).errors) for p, r in _post_routes()
                                                if declaration_of(r).access is Access.PROTECTED}))
def test_protected_post_route_refuses_a_request_without_the_key(keyed_server, path, family):
    url = keyed_server.url + _concrete(path)
    refused = httpx.post(url, json={}, timeout=30)
    assert refused.status_code == 401, refused.text
    if family is ErrorFamily.ANTHROPIC:  # Anthropic's error shape
        assert refused.json()["error"]["type"] == "authentication_error"
    else:
        assert refused.json()["error"]["code"] == "invalid_api_key"
    admitted = httpx.post(url, json={}, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert admitted.status_code != 401


@pytest.mark.parametrize("path", ["/v2/models/m/infer", "/v1/models/m:predict"])
def test_tensor_routes_stay_open_as_in_ovms(keyed_server, path):
    r = httpx.post(keyed_server.url + path, json={"inputs": []}, timeout=30)
    assert r.status_code == 404 and r.json() == {"error": "The model `m` does not exist"}


def _serve_with_a_failing_route():
    app = create_app(ModelManager())
    router = declared_router(Access.PUBLIC, Api.OTHER)

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    @router.get("/fine")
    async def fine() -> dict:
        return {"ok": True}

    app.include_router(router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fine").status_code == 200:
                break
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    return server, thread, port


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the body"
        body += chunk
    return int(head.split(b" ")[1]), body[:length]


def test_unhandled_error_is_a_500_in_openai_shape_and_the_connection_stays_usable(caplog):
    server, thread, port = _serve_with_a_failing_route()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            with caplog.at_level("ERROR"):
                sock.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
                status, body = _read_response(sock)
            assert status == 500
            assert json.loads(body) == {"error": {"message": "Internal server error", "type": "internal_error",
                                                  "param": None, "code": None}}
            sock.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
            assert _read_response(sock) == (200, b'{"ok":true}')
        logged = [r for r in caplog.records if r.exc_info and str(r.exc_info[1]) == "a bug"]
        assert len(logged) == 1  # once, not again by the server
    finally:
        server.should_exit = True
        thread.join(10)
