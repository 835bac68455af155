"""Tensor engine: requests of classic models run on `nireq` OpenVINO infer requests.

Each infer request has its own worker thread that takes jobs from one bounded queue and runs
`InferRequest.infer` (which releases the GIL, so `nireq` requests run in parallel); results cross to
asyncio through `loop.call_soon_threadsafe`, the one place the two meet. A full queue raises
`Overloaded` (503).

Why not `AsyncInferQueue`: when an inference fails inside OpenVINO (e.g. a data-dependent shape
error), its callback is never called and the *next* `start_async` raises the old error, so the failed
request would hang and an innocent one would fail. A synchronous `infer` per worker raises in the
right place.

With `shape: auto` the engine runs one worker, which reshapes and recompiles before a request of
a new shape.

Tiny models: handing a request to a worker and back costs two thread wake-ups (about 250 us here),
several times the inference itself. When a request's predicted inference time (measured time per
input element so far x its elements) is under `INLINE_MAX_SECONDS` and no worker is busy, the event
loop runs it itself on an infer request of its own: the loop is blocked for less than that, and the
hand-offs are gone.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from servables.errors import InferenceError, ModelUnavailable, Overloaded, ServingError
from servables.staged_request import StagedRequest
from servables.tensor import TensorServable
from servables.tensor_model import TensorModel

from .bridge import settle_future

log = logging.getLogger(__name__)

INLINE_MAX_SECONDS = 0.0002  # run on the event loop when inference takes less than this
_MIN_SAMPLES = 16  # worker-measured inferences before the inline path is considered


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
    settle_future(job.loop, job.future, result, error)


class TensorEngine:
    """Runs one version of a classic model."""

    def __init__(self, servable: TensorServable, max_queue_size: int | None = None):
        self.servable = servable
        self._max_queue = max_queue_size or servable.options.max_queue_size
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._seconds_per_element = 0.0  # moving average of inference time / input elements
        self._samples = 0
        self._inline_request: StagedRequest | None = None  # used only by the event loop thread

    def start(self) -> None:
        workers = 1 if self.servable.auto_shape else self.servable.nireq
        for index in range(workers):
            thread = threading.Thread(target=self._work, daemon=True,
                                      name=f"tensor:{self.servable.name}:{self.servable.version}:{index}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new requests, let the workers finish the queued and running ones, then end them."""
        with self._lock:
            self._stopping = True
        for _ in self._threads:
            self._jobs.put(None)  # behind every queued job: the queue drains first
        for thread in self._threads:
            thread.join(timeout)
        while True:  # only left when a worker did not finish in time
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                _resolve(job, error=ModelUnavailable(f"Model {self.servable.name} was unloaded"))

    def stats(self) -> EngineStats:
        with self._lock:
            return EngineStats(running=self._running, waiting=self._waiting,
                               pipeline_has_requests=self._running > 0)

    # --- asyncio side ---------------------------------------------------------------------

    async def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate and run one request; returns output name -> array."""
        inputs = self.servable.validate(inputs)
        elements = _elements(inputs)
        with self._lock:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} version {self.servable.version} is unloading")
            inline = (self._samples >= _MIN_SAMPLES and self._waiting == 0
                      and self._seconds_per_element * elements < INLINE_MAX_SECONDS
                      and self._running == 0 and not self.servable.auto_shape)
            if not inline:
                if self._waiting - max(0, len(self._threads) - self._running) >= self._max_queue:
                    raise Overloaded(f"Model {self.servable.name} has {self._waiting} requests waiting; retry later")
                self._waiting += 1
        if inline:
            if self._inline_request is None:
                self._inline_request = self._new_request()
            return self._run(self._inline_request, inputs, elements)
        loop = asyncio.get_running_loop()
        job = _Job(inputs, loop.create_future(), loop)
        self._jobs.put(job)
        return await job.future

    def _new_request(self) -> StagedRequest:
        """An infer request on the servable's compiled model of now (`reshape_to` replaces it)."""
        compiled = self.servable.compiled
        assert compiled is not None, f"{self.servable.name}: an engine runs a loaded servable"
        return StagedRequest(compiled.create_infer_request())

    def _run(self, request: StagedRequest, inputs: dict[str, np.ndarray], elements: int) -> dict[str, np.ndarray]:
        """One inference on `request` (a worker's, or the event loop's own); OpenVINO errors become
        `InferenceError` and leave the request usable."""
        started = time.perf_counter()
        try:
            request.infer(inputs)
        except Exception as exc:
            log.warning("%s v%d: inference failed: %s", self.servable.name, self.servable.version, exc)
            raise InferenceError(f"Inference failed: {_first_line(exc)}") from exc
        outputs = self.servable.output_arrays(request.request)
        self._measure(time.perf_counter() - started, elements)
        return outputs

    def _measure(self, seconds: float, elements: int) -> None:
        """Per input element, so that a much larger request of a dynamic model is not run inline."""
        per_element = seconds / elements
        with self._lock:  # the first inferences of a compiled model are slow: start over at the second
            self._seconds_per_element = per_element if self._samples < 2 else \
                0.8 * self._seconds_per_element + 0.2 * per_element
            self._samples += 1

    # --- worker threads -------------------------------------------------------------------

    def _work(self) -> None:
        request = self._new_request()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self._running += 1
            try:
                if self.servable.needs_reshape(job.inputs):  # only with shape auto: a single worker
                    self.servable.reshape_to(job.inputs)
                    request = self._new_request()
                _resolve(job, self._run(request, job.inputs, _elements(job.inputs)))
            except ServingError as exc:
                _resolve(job, error=exc)
            except Exception as exc:  # reading outputs or recompiling failed
                log.exception("%s v%d: request failed", self.servable.name, self.servable.version)
                _resolve(job, error=InferenceError(f"Inference failed: {_first_line(exc)}"))
            finally:
                with self._lock:
                    self._running -= 1


def _elements(inputs: dict[str, np.ndarray]) -> int:
    return max(1, sum(int(a.size) for a in inputs.values()))


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip() and not line.startswith("Exception from")]
    return lines[0] if lines else type(exc).__name__


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

    def refresh(self) -> bool:
        """Serve the version folders the policy wants now: load new ones (the highest becomes the
        default), unload removed ones after their in-flight requests; True when anything changed."""
        wanted = self.model.wanted_versions()
        served = set(self.model.versions())
        changed = False
        for version in sorted(wanted.keys() - served):
            try:
                servable = self.model.load_version(version, wanted[version])
            except ServingError as exc:
                log.error("%s: version %d failed to load: %s", self.model.name, version, exc)
                continue
            self.attach(servable)
            self.model.add_version(servable)
            changed = True
        for version in sorted(served - wanted.keys()):
            removed = self.model.remove_version(version)  # new requests no longer see it
            self.detach(version)  # drains in-flight requests
            if removed is not None:
                removed.close()
            log.info("%s: version %d unloaded", self.model.name, version)
            changed = True
        return changed

    def stats(self) -> EngineStats:
        with self._lock:
            parts = [e.stats() for e in self._engines.values()]
        return EngineStats(running=sum(p.running for p in parts), waiting=sum(p.waiting for p in parts),
                           pipeline_has_requests=any(p.pipeline_has_requests for p in parts))
