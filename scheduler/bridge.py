"""The one place where an engine thread hands results to asyncio: `loop.call_soon_threadsafe`."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any

from .events import Event, Failed, RequestDone


class RequestStream:
    """Async iterator of one request's events. Closing it early cancels the request."""

    def __init__(self, request_id: int, loop: asyncio.AbstractEventLoop, on_cancel: Callable[[int], None]):
        self.request_id = request_id
        self._loop = loop
        self._queue: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._on_cancel = on_cancel
        self._finished = False

    # called from the engine thread, through `deliver_batch`
    def _put(self, events: list[Event]) -> None:
        self._queue.put_nowait(events)

    async def events(self) -> AsyncGenerator[Event, None]:
        try:
            while True:
                batch = await self._queue.get()
                for event in batch:
                    yield event
                    if isinstance(event, (RequestDone, Failed)):
                        self._finished = True
                        return
        finally:
            if not self._finished:
                self.cancel()

    def cancel(self) -> None:
        if not self._finished:
            self._finished = True
            self._on_cancel(self.request_id)


def deliver_batch(loop: asyncio.AbstractEventLoop, batch: list[tuple[RequestStream, list[Event]]]) -> None:
    """Hand one engine step's events to their streams with a single wake-up of the event loop."""
    if not batch:
        return

    def _deliver() -> None:
        for stream, events in batch:
            stream._put(events)

    try:
        loop.call_soon_threadsafe(_deliver)
    except RuntimeError:  # loop closed during shutdown: nobody is listening any more
        pass


def wait_until_idle(loop: asyncio.AbstractEventLoop, timeout: float, rounds: int = 64) -> None:
    """From an engine thread: block, without the GIL, until `loop` has run everything that was ready
    (the callbacks just delivered and the tasks they woke, which write their chunks to the sockets),
    at most `rounds` passes of its ready queue or `timeout` seconds.

    openvino_genai's `ContinuousBatchingPipeline.step()` keeps the GIL for the whole step (tens to
    hundreds of milliseconds; docs/architecture.md, "Threads"): an event loop that has
    not run before the engine's next step waits that step out, so the tokens of one step reached
    clients a step late and a burst's first tokens one long prefill step late.
    """
    idle = threading.Event()

    def probe(left: int) -> None:
        # asyncio's loops keep ready callbacks in `_ready` (a deque); without one, one pass is all we can see
        if left > 0 and getattr(loop, "_ready", None):
            loop.call_soon(probe, left - 1)  # others are queued behind us: let them run, look again
        else:
            idle.set()

    try:
        loop.call_soon_threadsafe(probe, rounds)
    except RuntimeError:  # loop closed during shutdown
        return
    idle.wait(timeout)


Settlement = tuple[asyncio.Future, Any, "BaseException | None"]  # (future, result, error)


def settle_future(loop: asyncio.AbstractEventLoop, future: asyncio.Future, result: Any = None,
                  error: BaseException | None = None) -> None:
    """From a worker thread: complete `future` on its own event loop (unless its awaiting task is gone)."""
    settle_futures(loop, [(future, result, error)])


def settle_futures(loop: asyncio.AbstractEventLoop, settlements: list[Settlement]) -> None:
    """From a worker thread: complete several futures of one event loop with a single wake-up of it
    (one batch's requests: one `call_soon_threadsafe`, not one per request)."""
    if not settlements:
        return

    def _settle() -> None:
        for future, result, error in settlements:
            if future.done():  # the awaiting task was cancelled
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    try:
        loop.call_soon_threadsafe(_settle)
    except RuntimeError:  # loop closed during shutdown: nobody is listening any more
        pass
