"""Image engine: a FIFO of image jobs run one at a time, step by step, in one worker thread.

The diffusion pipelines of a model share their infer requests, so jobs never overlap. The
pipeline's per-step callback is where the engine (a) counts steps, (b) stops a job whose client
went away (the callback returns True: the job ends within one step), and (c) calls `step_gate`
before every denoising step, the hook where a device arbiter can hold the job back to interleave
it with other engines' work. Jobs wait in a bounded queue; a full queue raises `Overloaded` (503).
Results go back to asyncio in exactly one place, `_deliver` (`loop.call_soon_threadsafe`).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from servables.errors import Cancelled, InferenceError, ModelUnavailable, Overloaded, ServingError
from servables.image import ImageJob, ImageServable

from .arbiter import lane_for
from .bridge import settle_future
from .telemetry import sink

log = logging.getLogger(__name__)


@dataclass
class ImageResult:
    images: list[bytes]  # PNG, one per generated image
    steps: int  # denoising steps run for this job


@dataclass
class ImageEngineStats:
    running: int
    waiting: int
    steps_total: int  # denoising steps run since start, all jobs
    images_total: int  # images delivered
    requests_total: int  # jobs finished, failed or cancelled
    cancelled_total: int  # jobs stopped because their client went away (queued or running)


@dataclass
class _Job:
    id: int
    job: ImageJob
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancelled: bool = False
    steps: int = 0
    submitted_at: float = field(default_factory=time.monotonic)


class ImageTicket:
    """A submitted job. `await ticket.result()`; cancelling the awaiting task cancels the job."""

    def __init__(self, job: _Job, engine: ImageEngine):
        self._job = job
        self._engine = engine

    @property
    def id(self) -> int:
        return self._job.id

    async def result(self) -> ImageResult:
        try:
            return await self._job.future
        except asyncio.CancelledError:
            self.cancel()
            raise

    def cancel(self) -> None:
        self._engine.cancel(self._job.id)


class ImageEngine:
    def __init__(self, servable: ImageServable, max_queue_size: int | None = None,
                 step_gate: Callable[[], None] | None = None):
        self.servable = servable
        self._max_queue = servable.options.max_queue_size if max_queue_size is None else max_queue_size
        # called before every denoising step, in the worker thread: by default the device arbiter's
        # switch (let other engines' units in between two steps, then continue)
        self._lane = lane_for(servable)
        self.step_gate = step_gate or self._lane.switch
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._current: _Job | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        self._steps_total = 0
        self._images_total = 0
        self._requests_total = 0
        self._cancelled_total = 0
        self._thread = threading.Thread(target=self._run, name=f"image-engine:{servable.name}", daemon=True)

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

    # --- asyncio side -----------------------------------------------------------------------

    def submit(self, job: ImageJob) -> ImageTicket:
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} is shutting down")
            if len(self._queue) >= self._max_queue:
                sink().request_rejected(self.servable.name)
                raise Overloaded(f"Model {self.servable.name} has {len(self._queue)} image requests waiting; "
                                 "retry later")
            entry = _Job(next(self._ids), job, loop, loop.create_future())
            self._queue.append(entry)
            self._cond.notify_all()
        return ImageTicket(entry, self)

    def cancel(self, job_id: int) -> None:
        """Thread-safe. A queued job is dropped; the running one stops after its current step."""
        with self._cond:
            if self._current is not None and self._current.id == job_id:
                self._current.cancelled = True
                return
            for entry in self._queue:
                if entry.id == job_id:
                    self._queue.remove(entry)
                    self._cancelled_total += 1
                    self._requests_total += 1
                    self._cond.notify_all()  # wakes drain()
                    return

    def stats(self) -> ImageEngineStats:
        with self._cond:
            return ImageEngineStats(
                running=int(self._current is not None), waiting=len(self._queue), steps_total=self._steps_total,
                images_total=self._images_total, requests_total=self._requests_total,
                cancelled_total=self._cancelled_total)

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
                if isinstance(outcome, ImageResult):
                    self._images_total += len(outcome.images)
                elif isinstance(outcome, Cancelled):
                    self._cancelled_total += 1
                self._cond.notify_all()  # wakes drain()
            self._deliver(entry, outcome)
        self._shutdown()

    def _execute(self, entry: _Job) -> ImageResult | Exception:
        def on_step(step: int, num_steps: int) -> bool:
            entry.steps += 1
            with self._cond:
                self._steps_total += 1
                stop = entry.cancelled or self._stopping
            if not stop and step + 1 < num_steps and self.step_gate is not None:
                self.step_gate()
            return stop

        try:
            if self.step_gate is not None:
                self.step_gate()
            try:
                images = self.servable.generate(entry.job, on_step)
            finally:
                self._lane.release_if_held()
            if (images is None or entry.cancelled) and self._stopping and not entry.cancelled:
                return ModelUnavailable(f"Model {self.servable.name} was unloaded during generation")
            if images is None or entry.cancelled:
                log.info("%s: image request %d cancelled after %d steps", self.servable.name, entry.id, entry.steps)
                return Cancelled(f"image request {entry.id} cancelled after {entry.steps} steps")
            return ImageResult([self.servable.to_png(pixels) for pixels in images], entry.steps)
        except ServingError as exc:
            return exc
        except Exception as exc:  # the engine goes on with the next job
            log.exception("image generation failed on %s", self.servable.name)
            return InferenceError(f"Image generation failed: {exc}")

    @staticmethod
    def _deliver(entry: _Job, outcome: ImageResult | Exception) -> None:
        if isinstance(outcome, Exception):
            settle_future(entry.loop, entry.future, error=outcome)
        else:
            settle_future(entry.loop, entry.future, outcome)

    def _shutdown(self) -> None:
        with self._cond:
            waiting, self._queue = list(self._queue), deque()
        for entry in waiting:
            self._deliver(entry, ModelUnavailable(f"Model {self.servable.name} was unloaded"))
