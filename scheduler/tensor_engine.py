"""Tensor engine: requests of classic models run on an `openvino.AsyncInferQueue` of `nireq` requests.

A request starts on the AsyncInferQueue straight from the event loop when one of the `nireq`
infer requests is free and nobody is waiting (no thread hop); otherwise it waits in a bounded queue
that one feeder thread per model version drains (`start_async` blocks that thread while all
requests are busy). Results come back in OpenVINO's callback thread and cross to asyncio through
`loop.call_soon_threadsafe`, the one place the two meet. A full queue raises `Overloaded` (503).
With `shape: auto` the feeder drains the queue and recompiles before a request of a new shape.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

import numpy as np
import openvino as ov

from servables.errors import InferenceError, InvalidRequest, ModelUnavailable, Overloaded, ServingError
from servables.tensor import TensorServable
from servables.tensor_model import TensorModel

log = logging.getLogger(__name__)


@dataclass
class _Job:
    inputs: dict[str, np.ndarray]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass
class EngineStats:
    running: int
    waiting: int
    pipeline_has_requests: bool
    kv_cache_usage_percent: float = 0.0


def _resolve(job: _Job, result: object = None, error: Exception | None = None) -> None:
    def _set() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(_set)
    except RuntimeError:  # loop closed during shutdown
        pass


class TensorEngine:
    """Runs one version of a classic model."""

    def __init__(self, servable: TensorServable, max_queue_size: int | None = None):
        self.servable = servable
        self._max_queue = max_queue_size or servable.options.max_queue_size
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._nireq = 1
        self._start_lock = threading.Lock()
        self._stopping = False
        self._infer_queue: ov.AsyncInferQueue | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"tensor-engine:{servable.name}:{servable.version}")

    def start(self) -> None:
        self._new_infer_queue()
        self._thread.start()

    def _new_infer_queue(self) -> None:
        self._nireq = self.servable.nireq
        self._infer_queue = ov.AsyncInferQueue(self.servable.compiled, self._nireq)
        self._infer_queue.set_callback(self._done)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
        self._jobs.put(None)
        self._thread.join(timeout)

    def stats(self) -> EngineStats:
        with self._lock:
            return EngineStats(running=self._running, waiting=self._waiting,
                               pipeline_has_requests=self._running > 0)

    # --- asyncio side ---------------------------------------------------------------------

    async def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate and run one request; returns output name -> array."""
        inputs = self.servable.validate(inputs)
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} version {self.servable.version} is unloading")
            job = _Job(inputs, loop.create_future(), loop)
            direct = not self.servable.auto_shape and self._waiting == 0 and self._running < self._nireq
            if direct:
                self._running += 1
            elif self._waiting >= self._max_queue:
                raise Overloaded(f"Model {self.servable.name} has {self._waiting} requests waiting; retry later")
            else:
                self._waiting += 1
        if direct:
            self._start(job)
        else:
            self._jobs.put(job)
        return await job.future

    # --- feeder thread and OpenVINO callbacks ---------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            with self._lock:
                self._waiting -= 1
                self._running += 1
            if self.servable.needs_reshape(job.inputs):
                try:
                    self._infer_queue.wait_all()
                    self.servable.reshape_to(job.inputs)
                    self._new_infer_queue()
                except ServingError as exc:
                    self._finish(job, error=exc)
                    continue
            self._start(job)
        self._shutdown()

    def _start(self, job: _Job) -> None:
        """Start on a free infer request (blocks only while all `nireq` are busy: feeder thread)."""
        try:
            with self._start_lock:  # AsyncInferQueue.start_async is not safe from two threads at once
                self._infer_queue.start_async(job.inputs, job)
        except Exception as exc:  # OpenVINO rejected the inputs before running
            self._finish(job, error=InvalidRequest(f"Invalid inputs: {exc}", "inputs"))

    def _done(self, request: ov.InferRequest, job: _Job) -> None:
        try:
            outputs = self.servable.output_arrays(request)
        except Exception as exc:
            log.exception("reading outputs of %s failed", self.servable.name)
            self._finish(job, error=InferenceError(f"Inference failed: {exc}"))
            return
        self._finish(job, outputs)

    def _finish(self, job: _Job, result: object = None, error: Exception | None = None) -> None:
        with self._lock:
            self._running -= 1
        _resolve(job, result, error)

    def _shutdown(self) -> None:
        if self._infer_queue is not None:
            self._infer_queue.wait_all()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                _resolve(job, error=ModelUnavailable(f"Model {self.servable.name} was unloaded"))


class TensorModelEngine:
    """The engine of a `TensorModel`: one `TensorEngine` per served version."""

    def __init__(self, model: TensorModel):
        self.model = model
        self._engines: dict[int, TensorEngine] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        for version in self.model.versions():
            self.attach(self.model.version(version))

    def attach(self, servable: TensorServable) -> None:
        engine = TensorEngine(servable)
        engine.start()
        with self._lock:
            old = self._engines.get(servable.version)
            self._engines[servable.version] = engine
        if old is not None:
            old.stop()

    def detach(self, version: int) -> None:
        with self._lock:
            engine = self._engines.pop(version, None)
        if engine is not None:
            engine.stop()

    def engine(self, version: int) -> TensorEngine:
        with self._lock:
            engine = self._engines.get(version)
        if engine is None:
            raise ModelUnavailable(f"Model {self.model.name} version {version} is not loaded")
        return engine

    def stop(self) -> None:
        for version in list(self._engines):
            self.detach(version)

    def stats(self) -> EngineStats:
        with self._lock:
            parts = [e.stats() for e in self._engines.values()]
        return EngineStats(running=sum(p.running for p in parts), waiting=sum(p.waiting for p in parts),
                           pipeline_has_requests=any(p.pipeline_has_requests for p in parts))
