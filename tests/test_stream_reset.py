"""A client that resets a stream's connection: the server stops writing to it, quietly, and keeps serving.

Tokens can pile up for a stream while the event loop is busy; a client that resets its connection
meanwhile must not make the server write each queued token into the dead socket (asyncio logs
`socket.send() raised exception.` for every such write; gateway/disconnect.py yields after each
chunk so that the disconnect is seen). The loop used to be held for seconds by the guard's JSON depth
check on a body of 300,000 empty arrays, which reproduced the flood; that check is now C-speed
(gateway/guard.py), and what can still be checked from outside is that reset streams are cancelled,
log no flood, and the server keeps serving.
"""
from __future__ import annotations

import json
import socket
import struct

from tests.conftest import LLM
from tests.helpers import metric, wait_for

WARNING = "socket.send() raised exception"
STREAMS = 4


def _post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _open_stream(port: int) -> socket.socket:
    """A raw-socket chat stream (so that the test can reset it), once three events arrived."""
    body = {"model": LLM, "messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 2000,
            "ignore_eos": True, "stream": True}
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(_post("/v3/chat/completions", json.dumps(body).encode()))
    received = b""
    while received.count(b"data: ") < 3:
        chunk = sock.recv(65536)
        assert chunk, f"the stream ended early: {received[:300]!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    return sock


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    sock.close()


def test_reset_streams_log_no_send_warnings_and_server_keeps_serving(llm_server, http):
    warnings_before = llm_server.log().count(WARNING)
    streams = [_open_stream(llm_server.port) for _ in range(STREAMS)]

    for sock in streams:
        _reset(sock)

    wait_for(lambda: metric(http, "genai_requests_running", name=LLM) == 0, 30, 0.1, "the reset streams cancelled")
    r = http.post("/v3/chat/completions", json={"model": LLM, "messages": [{"role": "user", "content": "Hi"}],
                                                "max_tokens": 4, "temperature": 0})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    assert llm_server.log().count(WARNING) - warnings_before <= 1
