"""Notice clients that go away: cancel what they waited for, stop writing to them.

`unless_disconnected` runs an awaitable while watching the HTTP connection; a client that goes away
cancels it. `ChunkYieldMiddleware` keeps streamed responses from writing into a closed socket.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")


class ClientDisconnected(Exception):
    pass


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`; if the client disconnects first, cancel it and raise ClientDisconnected."""
    work = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            return work.result()
        work.cancel()
        try:
            await work
        except BaseException:
            pass
        raise ClientDisconnected()
    finally:
        watcher.cancel()
        if not work.done():
            work.cancel()


class ChunkYieldMiddleware:
    """After each streamed body chunk, let the event loop run once before the next one.

    When a stream's client resets the connection, asyncio's transport marks itself lost on the
    next failed write and schedules `connection_lost` with `call_soon`; uvicorn only stops writing
    once that callback ran. A stream with tokens queued up (an event loop busy for a while) would
    otherwise write them all in one go, and asyncio logs `socket.send() raised exception.` for
    each write past the fifth (asyncio/selector_events.py, LOG_THRESHOLD_FOR_CONNLOST_WRITES):
    hundreds of lines for one cancelled stream. One `sleep(0)` per chunk lets `connection_lost`
    run first; uvicorn then drops the rest and the stream's disconnect watcher cancels the job.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_and_yield(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and message.get("more_body", False):
                await asyncio.sleep(0)

        await self.app(scope, receive, send_and_yield)

