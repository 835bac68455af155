"""A lean `text/event-stream` response: the body iterator yields encoded events, each sent as it comes.

It replaces sse-starlette's EventSourceResponse on the token-streaming paths, where that class's
per-event work (a `ServerSentEvent` built and regex-split, an anyio cancel scope around every send)
costs CPU that the inference threads need on a small machine (README, "Streaming overhead"). What
it keeps: the same headers (`Cache-Control: no-cache`, `Connection: keep-alive`,
`X-Accel-Buffering: no`), a comment ping every `ping` seconds while the stream is open, and a
client that disconnects cancels the iterator (whose cleanup cancels the generation). Open streams
are not ended at shutdown: they finish within uvicorn's graceful-shutdown period, as before
(gateway/cli.py).

Events are framed by `event_bytes`: the WHATWG SSE format (`data: <line>` then a blank line).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
            (b"connection", b"keep-alive"), (b"x-accel-buffering", b"no")]
DONE = b"data: [DONE]\n\n"


def event_bytes(data: bytes | str, event: str | None = None) -> bytes:
    """One SSE event. `data` must be a single line (compact JSON is)."""
    payload = data.encode() if isinstance(data, str) else data
    head = b"event: " + event.encode() + b"\n" if event is not None else b""
    return head + b"data: " + payload + b"\n\n"


async def framed(events: AsyncIterator[Mapping[str, str]]) -> AsyncIterator[bytes]:
    """Events given as `{"event"?: name, "data": line}` (the Responses and Anthropic writers), as SSE bytes."""
    try:
        async for item in events:
            yield event_bytes(item["data"], item.get("event"))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()  # the writer's cleanup (it cancels the generation) runs now, not at garbage collection


class SSEResponse(Response):
    """An ASGI response streaming the bytes of `events` (already framed, see `event_bytes`)."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], ping: float = 15.0, status_code: int = 200,
                 headers: Mapping[str, str] | None = None, ping_event: bytes | None = None) -> None:
        # no super().__init__: there is no body to render
        self.events = events
        self.ping_event = ping_event  # sent instead of the comment ping (Anthropic's `event: ping`)
        self.background = None
        self.ping = ping
        self.status_code = status_code
        self.raw_headers = list(_HEADERS)
        for name, value in (headers or {}).items():
            key = name.lower().encode("latin-1")
            self.raw_headers = [h for h in self.raw_headers if h[0] != key]
            self.raw_headers.append((key, value.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        streamer = asyncio.ensure_future(self._stream(send))
        watcher = asyncio.ensure_future(self._disconnect(receive))
        pinger = asyncio.ensure_future(self._ping(send)) if self.ping > 0 else None
        helpers = [t for t in (watcher, pinger) if t is not None]
        try:
            await asyncio.wait((streamer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*helpers, streamer):
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):  # a ping into a closed socket
                    await task
            with contextlib.suppress(asyncio.CancelledError):
                await streamer  # its error (a broken generator) is raised here
        if not watcher.cancelled() and watcher.done():
            return  # the client is gone: nothing more to write
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:  # FastAPI's BackgroundTasks, as Starlette's StreamingResponse runs them
            await self.background()

    async def _stream(self, send: Send) -> None:
        events = self.events
        try:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()  # runs the generator's cleanup now, also when cancelled mid-stream

    @staticmethod
    async def _disconnect(receive: Receive) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                return

    async def _ping(self, send: Send) -> None:
        while True:
            await asyncio.sleep(self.ping)
            ping = self.ping_event or f": ping - {datetime.now(timezone.utc)}\n\n".encode()
            await send({"type": "http.response.body", "body": ping, "more_body": True})
