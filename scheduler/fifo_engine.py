"""One job at a time, first in first out: the part the image and speech engines share.

Jobs wait in a bounded queue under one Condition; a full queue raises `Overloaded` (503), an engine
that is stopping `ModelUnavailable`. One worker thread takes them in order and runs each through the
engine's `_execute` (its own work, on the device arbiter's lane `_lane`), then hands the outcome to
its `_deliver`, the one place results cross back to asyncio. A job is cancelled by id: a queued one
is dropped, the running one is flagged (`cancelled`) and stops at the engine's next checkpoint.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Generic, Protocol, TypeVar

from servables.errors import Cancelled, ModelUnavailable, Overloaded

from .arbiter import lane_for
from .telemetry import sink


class QueuedJob(Protocol):
    id: int
    cancelled: bool  # set when its client went away (or by cancel()); the worker checks it


class FifoServable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def options(self) -> Any: ...  # max_queue_size


S = TypeVar("S", bound=FifoServable)
J = TypeVar("J", bound=QueuedJob)
R = TypeVar("R")  # what a job that succeeded delivers


class FifoEngine(ABC, Generic[S, J, R]):
    noun = "job"  # in the Overloaded message: "... has 3 <noun> requests waiting"
    thread_prefix = "fifo-engine"

    def __init__(self, servable: S, max_queue_size: int | None = None):
        self.servable = servable
        self._max_queue = servable.options.max_queue_size if max_queue_size is None else max_queue_size
        self._lane = lane_for(servable)
        self._cond = threading.Condition()
        self._queue: deque[J] = deque()
        self._current: J | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        self._requests_total = 0  # jobs finished, failed or cancelled
        self._cancelled_total = 0  # jobs stopped because their client went away (queued or running)
        self._thread = threading.Thread(target=self._run, name=f"{self.thread_prefix}:{servable.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the queued and running jobs have finished (new submits are still taken).

        Used before `stop()` when the model is unloaded or replaced, so that no request in flight
        fails. Returns False when `timeout` passed first.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._stopping or not (self._queue or self._current), timeout)

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._lane.close()

    def cancel(self, job_id: int) -> None:
        """Thread-safe. A queued job is dropped; the running one stops at its next checkpoint."""
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
                    self._cond.notify_all()  # wakes drain()
                    return

    # --- asyncio side -----------------------------------------------------------------------

    def _admit(self, job: Any) -> J:
        """Queue `job` (from the event loop), or raise ModelUnavailable / Overloaded."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} is shutting down")
            if len(self._queue) >= self._max_queue:
                sink().request_rejected(self.servable.name)
                raise Overloaded(f"Model {self.servable.name} has {len(self._queue)} {self.noun} requests waiting; "
                                 "retry later")
            entry = self._new_job(next(self._ids), job, loop)
            self._queue.append(entry)
            self._cond.notify_all()
        return entry

    # --- the engine's own part ----------------------------------------------------------------

    @abstractmethod
    def _new_job(self, job_id: int, job: Any, loop: asyncio.AbstractEventLoop) -> J:
        """The queue entry of a submitted job (called under the lock, on the event loop)."""
        ...

    @abstractmethod
    def _execute(self, entry: J) -> R | Exception:
        """Run one job in the worker thread: its result, or the error to deliver."""
        ...

    @abstractmethod
    def _deliver(self, entry: J, outcome: R | Exception) -> None:
        """Hand the outcome to the request (from the worker thread)."""
        ...

    def _finished(self, outcome: R | Exception) -> None:
        """Count a finished job beyond requests and cancellations (called under the lock)."""

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
                self._finished(outcome)
                self._cond.notify_all()  # wakes drain()
            self._deliver(entry, outcome)
        with self._cond:
            waiting, self._queue = list(self._queue), deque()
        for entry in waiting:
            self._deliver(entry, ModelUnavailable(f"Model {self.servable.name} was unloaded"))


class FifoTicket(Generic[J]):
    """A submitted job, as its request holds it: `cancel()` stops it (thread-safe)."""

    def __init__(self, job: J, engine: FifoEngine[Any, J, Any]):
        self._job = job
        self._engine = engine

    @property
    def id(self) -> int:
        return self._job.id

    def cancel(self) -> None:
        self._engine.cancel(self._job.id)
