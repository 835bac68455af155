"""Image engine: a FIFO of image jobs run one at a time, step by step, in one worker thread.

The diffusion pipelines of a model share their infer requests, so jobs never overlap. The
pipeline's per-step callback is where the engine (a) counts steps, (b) stops a job whose client
went away (the callback returns True: the job ends within one step), and (c) calls `step_gate`
before every denoising step, the hook where a device arbiter can hold the job back to interleave
it with other engines' work. The queue, admission (`Overloaded`, 503), drain/stop and cancellation
are the FIFO engine's (scheduler/fifo_engine.py). Results go back to asyncio in exactly one place,
`_deliver` (`loop.call_soon_threadsafe`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from servables.errors import Cancelled, InferenceError, ModelUnavailable, ServingError
from servables.image import ImageJob, ImageServable

from .bridge import settle_future
from .fifo_engine import FifoEngine, FifoTicket

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


class ImageTicket(FifoTicket[_Job]):
    """A submitted job. `await ticket.result()`; cancelling the awaiting task cancels the job."""

    async def result(self) -> ImageResult:
        try:
            return await self._job.future
        except asyncio.CancelledError:
            self.cancel()
            raise


class ImageEngine(FifoEngine[ImageServable, _Job, ImageResult]):
    noun = "image"
    thread_prefix = "image-engine"

    def __init__(self, servable: ImageServable, max_queue_size: int | None = None,
                 step_gate: Callable[[], None] | None = None):
        super().__init__(servable, max_queue_size)
        # called before every denoising step, in the worker thread: by default the device arbiter's
        # switch (let other engines' units in between two steps, then continue)
        self.step_gate = step_gate or self._lane.switch
        self._steps_total = 0
        self._images_total = 0

    def submit(self, job: ImageJob) -> ImageTicket:
        return ImageTicket(self._admit(job), self)

    def stats(self) -> ImageEngineStats:
        with self._cond:
            return ImageEngineStats(
                running=int(self._current is not None), waiting=len(self._queue), steps_total=self._steps_total,
                images_total=self._images_total, requests_total=self._requests_total,
                cancelled_total=self._cancelled_total)

    # --- worker thread ----------------------------------------------------------------------

    def _new_job(self, job_id: int, job: ImageJob, loop: asyncio.AbstractEventLoop) -> _Job:
        return _Job(job_id, job, loop, loop.create_future())

    def _finished(self, outcome: ImageResult | Exception) -> None:
        if isinstance(outcome, ImageResult):
            self._images_total += len(outcome.images)

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

    def _deliver(self, entry: _Job, outcome: ImageResult | Exception) -> None:
        if isinstance(outcome, Exception):
            settle_future(entry.loop, entry.future, error=outcome)
        else:
            settle_future(entry.loop, entry.future, outcome)
