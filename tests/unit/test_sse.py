"""The lean SSE response (gateway/sse.py) and the pre-serialised chunk envelope (gateway/openai/generation.py),
driven through the ASGI interface with scripted receive/send."""
from __future__ import annotations

import asyncio
import json

from gateway.openai.chat import ChatShape
from gateway.openai.generation import ChunkWriter
from gateway.sse import DONE, SSEResponse, event_bytes
from scheduler.events import Chunk, RequestDone, SequenceDone
from servables.output_processor import OutputProcessor
from tests.helpers import started_run


class Client:
    """Scripted ASGI peer: records what is sent; `receive` blocks until `leave()` (then http.disconnect)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.changed = asyncio.Event()
        self.gone = asyncio.Event()

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        self.changed.set()

    async def receive(self) -> dict:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.gone.set()

    async def wait_for(self, predicate) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


def test_events_are_sent_in_order_with_the_sse_headers_then_the_body_ends():
    async def events():
        yield event_bytes('{"a":1}')
        yield DONE

    async def run() -> Client:
        client = Client()
        await SSEResponse(events(), headers={"X-Extra": "1"})({"type": "http"}, client.receive, client.send)
        return client

    client = asyncio.run(run())
    start = client.sent[0]
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert (headers[b"cache-control"], headers[b"x-accel-buffering"], headers[b"x-extra"]) == (b"no-cache", b"no", b"1")
    assert client.bodies() == [b'data: {"a":1}\n\n', b"data: [DONE]\n\n", b""]
    assert client.sent[-1]["more_body"] is False


def test_an_idle_stream_gets_comment_pings_until_its_next_event():
    release = asyncio.Event()

    async def events():
        await release.wait()
        yield DONE

    async def run() -> list[bytes]:
        client = Client()
        response = asyncio.ensure_future(SSEResponse(events(), ping=0.01)({"type": "http"}, client.receive,
                                                                          client.send))
        await client.wait_for(lambda: len(client.bodies()) >= 2)  # two pings while no token came
        release.set()
        await response
        return client.bodies()

    bodies = asyncio.run(run())
    assert all(b.startswith(b": ping - ") and b.endswith(b"\n\n") for b in bodies[:2])
    assert bodies[-2:] == [DONE, b""]


def test_a_client_that_leaves_cancels_the_iterator_and_runs_its_cleanup():
    cleaned = []

    async def events():
        try:
            yield event_bytes("first")
            await asyncio.Event().wait()  # a generation that never ends by itself
            yield DONE
        finally:
            cleaned.append(True)

    async def run() -> list[bytes]:
        client = Client()
        response = asyncio.ensure_future(SSEResponse(events(), ping=0)({"type": "http"}, client.receive, client.send))
        await client.wait_for(lambda: len(client.bodies()) == 1)
        client.leave()
        await response
        return client.bodies()

    assert asyncio.run(run()) == [b"data: first\n\n"]  # nothing written after the client left
    assert cleaned == [True]


def test_chunk_bytes_equal_the_json_of_the_whole_envelope():
    shape = ChatShape(lambda ids: [f"t{i}" for i in ids], logprobs=True, new_processor=OutputProcessor)
    run = started_run(shape, [Chunk(0, "é\"\n", [7], [-0.5]), SequenceDone(0, "stop", 1), RequestDone(2, 1)],
                      model='odd "model" ü')
    for include_usage in (False, True):
        writer = ChunkWriter(run, shape.object_chunk, include_usage)
        choice = shape.chunk_choice(0, "é\"\n", [7], [-0.5], None)
        assert choice is not None
        extra = {"usage": None} if include_usage else {}
        expected = json.dumps(run.envelope(shape.object_chunk, [choice], **extra), ensure_ascii=False,
                              separators=(",", ":"))
        assert writer.choice(choice) == f"data: {expected}\n\n".encode()  # byte for byte, key order too
    assert choice["logprobs"]["content"][0]["token"] == "t7"
