"""Speech engine: a FIFO of speech jobs run one at a time, unit by unit, in one worker thread.

Serves both speech kinds. A job is run by its servable's `run(job, sink)`, which does its work in
units (one 30 s audio window of a transcription, one sentence of synthesised speech) inside
`sink.unit()`: the engine holds the device arbiter's lane for exactly that unit, so a long
transcription lets token streams and other engines in between windows. `sink.emit(item)` hands
partial results (text deltas, windows, audio) to the request as they come; `sink.cancelled` tells
the servable that the client went away (a transcription's streamer then stops within a token).
The queue, admission (`Overloaded`, 503), drain/stop and cancellation are the FIFO engine's
(scheduler/fifo_engine.py). The pipelines of a model share their infer requests (and
Text2SpeechPipeline's result aliases its output buffer), so jobs never overlap. Items cross to
asyncio in one place, `_Job.put` (`loop.call_soon_threadsafe`).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from servables.errors import Cancelled, InferenceError, ModelUnavailable, ServingError

from .fifo_engine import FifoEngine, FifoTicket

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


class SpeechTicket(FifoTicket[_Job]):
    """A submitted job: iterate `items()` for its partial results; leaving early cancels the job."""

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


class SpeechEngine(FifoEngine[SpeechServable, _Job, None]):
    noun = "speech"
    thread_prefix = "speech-engine"

    def __init__(self, servable: SpeechServable, max_queue_size: int | None = None):
        super().__init__(servable, max_queue_size)
        self._units_total = 0

    def submit(self, job: Any) -> SpeechTicket:
        return SpeechTicket(self._admit(job), self)

    def stats(self) -> SpeechEngineStats:
        with self._cond:
            return SpeechEngineStats(running=int(self._current is not None), waiting=len(self._queue),
                                     units_total=self._units_total, requests_total=self._requests_total,
                                     cancelled=self._cancelled_total)

    # --- worker thread ----------------------------------------------------------------------

    def _new_job(self, job_id: int, job: Any, loop: asyncio.AbstractEventLoop) -> _Job:
        return _Job(job_id, job, loop)

    def _deliver(self, entry: _Job, outcome: Exception | None) -> None:
        entry.put(_END if outcome is None else outcome)

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
