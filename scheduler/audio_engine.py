"""Speech engine: a FIFO of speech jobs run one at a time, unit by unit, in one worker thread.

Serves both speech kinds. A job is run by its servable's `run(job, sink)`, which does its work in
units (one 30 s audio window of a transcription, one sentence of synthesised speech) inside
`sink.unit()`: the engine holds the device arbiter's lane for exactly that unit, so a long
transcription lets token streams and other engines in between windows. `sink.emit(item)` hands
partial results (text deltas, windows, audio) to the request as they come; `sink.cancelled` tells
the servable that the client went away (a transcription's streamer then stops within a token).
Jobs wait in a bounded queue; a full queue raises `Overloaded` (503). The pipelines of a model
share their infer requests (and Text2SpeechPipeline's result aliases its output buffer), so jobs
never overlap. Items cross to asyncio in one place, `_Job.put` (`loop.call_soon_threadsafe`).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from servables.errors import Cancelled, InferenceError, ModelUnavailable, Overloaded, ServingError

from .arbiter import lane_for
from .telemetry import sink as telemetry

log = logging.getLogger(__name__)

_END = object()


class SpeechServable(Protocol):
    name: str
    options: Any

    def run(self, job: Any, sink: UnitSink) -> None: ...


@dataclass
class SpeechEngineStats:
    running: int
    waiting: int
    units_total: int  # windows / sentences run since start
    requests_total: int  # jobs finished, failed or cancelled
    cancelled: int  # jobs stopped because their client went away


@dataclass(eq=False)
class _Job:
    id: int
    job: Any
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False

    def put(self, item: Any) -> None:
        """From the worker thread: queue `item` for the request (the only thread -> asyncio crossing)."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # loop closed during shutdown: nobody is listening any more
            pass


class UnitSink:
    """What a servable's `run` gets: units on the device, partial results out, cancellation in."""

    def __init__(self, engine: SpeechEngine, job: _Job):
        self._engine = engine
        self._job = job

    @property
    def cancelled(self) -> bool:
        return self._job.cancelled or self._engine._stopping

    @contextmanager
    def unit(self) -> Iterator[None]:
        """One unit of work on the device (the arbiter's lane is held inside)."""
        if self.cancelled:
            raise Cancelled(f"speech request {self._job.id} cancelled")
        with self._engine._lane.unit():
            yield
        with self._engine._cond:
            self._engine._units_total += 1

    def emit(self, item: Any) -> None:
        if not self._job.cancelled:
            self._job.put(item)


class SpeechTicket:
    """A submitted job: iterate `items()` for its partial results; leaving early cancels the job."""

    def __init__(self, job: _Job, engine: SpeechEngine):
        self._job = job
        self._engine = engine

    async def items(self) -> AsyncIterator[Any]:
        finished = False
        try:
            while True:
                item = await self._job.queue.get()
                if item is _END:
                    finished = True
                    return
                if isinstance(item, Exception):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:
                self.cancel()

    async def collect(self) -> list[Any]:
        return [item async for item in self.items()]

    def cancel(self) -> None:
        self._engine.cancel(self._job.id)


class SpeechEngine:
    def __init__(self, servable: SpeechServable, max_queue_size: int | None = None):
        self.servable = servable
        self._max_queue = servable.options.max_queue_size if max_queue_size is None else max_queue_size
        self._lane = lane_for(servable)
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._current: _Job | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        self._units_total = 0
        self._requests_total = 0
        self._cancelled_total = 0
        self._thread = threading.Thread(target=self._run, name=f"speech-engine:{servable.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until queued and running jobs have finished (used before an unload or replacement)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._stopping or not (self._queue or self._current), timeout)

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._lane.close()

    def submit(self, job: Any) -> SpeechTicket:
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} is shutting down")
            if len(self._queue) >= self._max_queue:
                telemetry().request_rejected(self.servable.name)
                raise Overloaded(f"Model {self.servable.name} has {len(self._queue)} speech requests waiting; "
                                 "retry later")
            entry = _Job(next(self._ids), job, loop)
            self._queue.append(entry)
            self._cond.notify_all()
        return SpeechTicket(entry, self)

    def cancel(self, job_id: int) -> None:
        """Thread-safe. A queued job is dropped; the running one stops at its next unit (or token)."""
        with self._cond:
            if self._current is not None and self._current.id == job_id:
                self._current.cancelled = True
                return
            for entry in self._queue:
                if entry.id == job_id:
                    entry.cancelled = True
                    self._queue.remove(entry)
                    self._cancelled_total += 1
                    self._requests_total += 1
                    self._cond.notify_all()
                    return

    def stats(self) -> SpeechEngineStats:
        with self._cond:
            return SpeechEngineStats(running=int(self._current is not None), waiting=len(self._queue),
                                     units_total=self._units_total, requests_total=self._requests_total,
                                     cancelled=self._cancelled_total)

    # --- worker thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._queue):
                    self._cond.wait()
                if self._stopping:
                    break
                entry = self._current = self._queue.popleft()
            outcome = self._execute(entry)
            with self._cond:
                self._current = None
                self._requests_total += 1
                if isinstance(outcome, Cancelled):
                    self._cancelled_total += 1
                self._cond.notify_all()  # wakes drain()
            entry.put(_END if outcome is None else outcome)
        with self._cond:
            waiting, self._queue = list(self._queue), deque()
        for entry in waiting:
            entry.put(ModelUnavailable(f"Model {self.servable.name} was unloaded"))

    def _execute(self, entry: _Job) -> Exception | None:
        sink = UnitSink(self, entry)
        try:
            self.servable.run(entry.job, sink)
        except ServingError as exc:
            outcome: Exception = exc
        except Exception as exc:  # the engine goes on with the next job
            log.exception("speech request failed on %s", self.servable.name)
            outcome = InferenceError(f"Speech processing failed: {exc}")
        else:
            if not sink.cancelled:
                return None
            outcome = Cancelled(f"speech request {entry.id} cancelled")
        if isinstance(outcome, Cancelled) and self._stopping and not entry.cancelled:
            return ModelUnavailable(f"Model {self.servable.name} was unloaded during processing")
        return outcome
