"""Dynamic batching engine for embeddings and rerank (docs/architecture.md).

Requests carry a list of items (texts, or query-document pairs). One worker thread collects
queued items until as many items are waiting as the previous batch had (at most `max_batch_size`)
or `max_wait_ms` has passed, runs ONE `servable.infer(items)` call over all of them, and splits the outputs back
to their requests. A request bigger than a batch spans consecutive batches; several small
requests share one. Outputs cross back to asyncio in exactly one place: `_deliver`, through
`loop.call_soon_threadsafe`, once per batch. A full queue raises `Overloaded` (HTTP 503).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from servables.errors import InferenceError, ModelUnavailable, Overloaded, ServingError

from .arbiter import lane_for
from .bridge import Settlement, settle_futures

log = logging.getLogger(__name__)


@dataclass
class _Request:
    items: Sequence[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    results: list[Any]
    enqueued_at: float = field(default_factory=time.monotonic)
    taken: int = 0  # items already handed to a batch
    remaining: int = 0  # items whose outputs have not come back yet
    closed: bool = False  # cancelled by the client or failed: skip what is not taken yet


@dataclass
class BatcherStats:
    running: int  # items in the inference running now
    waiting: int  # items queued
    kv_cache_usage_percent: float  # always 0: no KV cache (kept so every engine reports the same gauges)
    batches: int  # inferences run since start
    items: int  # items inferred since start
    requests: int  # requests completed since start


class BatchingEngine:
    """One per embeddings or rerank servable; the servable provides `infer(items) -> outputs`."""

    def __init__(self, servable: Any, infer: Callable[[list[Any]], Sequence[Any]] | None = None,
                 max_batch_size: int | None = None, max_wait_ms: int | None = None,
                 max_queue_size: int | None = None):
        options = servable.options
        self.servable = servable
        self._infer = infer or servable.infer
        self.max_batch_size = max_batch_size or options.max_batch_size
        self.max_wait = (options.max_wait_ms if max_wait_ms is None else max_wait_ms) / 1000.0
        self.max_queue_size = max_queue_size or options.max_queue_size
        self._cond = threading.Condition()
        self._queue: deque[_Request] = deque()
        self._queued_items = 0
        self._running_items = 0
        self._batches = 0
        self._items = 0
        self._requests = 0
        self._last_batch_items = 1
        self._last_batch_end = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"batcher:{servable.name}", daemon=True)
        self._lane = lane_for(servable)  # the device arbiter's queue for this engine's batches

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._lane.close()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued and running item is done (new requests are still taken); used before
        `stop()` when the model is unloaded or replaced, so no request in flight fails. False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._stopping or (self._queued_items == 0 and self._running_items == 0), timeout)

    def stats(self) -> BatcherStats:
        with self._cond:
            return BatcherStats(self._running_items, self._queued_items, 0.0, self._batches, self._items,
                                self._requests)

    # --- asyncio side -------------------------------------------------------------------

    async def run(self, items: Sequence[Any]) -> list[Any]:
        """Queue `items`, wait for their outputs (in order). Raises Overloaded when the queue is full."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        request = _Request(items, loop, loop.create_future(), [None] * len(items), remaining=len(items))
        with self._cond:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} is shutting down")
            if self._queue and self._queued_items + len(items) > self.max_queue_size:
                raise Overloaded(f"Model {self.servable.name} has {self._queued_items} inputs waiting; retry later")
            self._queue.append(request)
            self._queued_items += len(items)
            self._cond.notify_all()
        try:
            return await request.future
        finally:
            if not request.future.done() or request.future.cancelled():
                self._close(request)

    def _close(self, request: _Request) -> None:
        with self._cond:
            if not request.closed:
                request.closed = True
                self._queued_items -= len(request.items) - request.taken
                self._cond.notify_all()

    # --- worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._collect()
                if batch is None:
                    break
                self._running_items = sum(end - start for _, start, end in batch)
            self._execute(batch)
            with self._cond:
                self._running_items = 0
                self._cond.notify_all()  # wake drain()
        self._shutdown()

    def _collect(self) -> list[tuple[_Request, int, int]] | None:
        """Under the lock: wait for work, then for company, then take up to max_batch_size items."""
        while True:
            while not self._stopping and not self._queue:
                self._cond.wait()
            if self._stopping:
                return None
            # Wait for company only when the last batch says it is coming: a lone client never waits,
            # while under load stragglers (clients still reading their last answer) get max_wait to join.
            target = min(self.max_batch_size, self._last_batch_items)
            deadline = max(self._queue[0].enqueued_at, self._last_batch_end) + self.max_wait
            while not self._stopping and self._queued_items < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._stopping:
                return None
            batch: list[tuple[_Request, int, int]] = []
            room = self.max_batch_size
            while self._queue and room > 0:
                request = self._queue[0]
                if request.closed:
                    self._queue.popleft()
                    continue
                start = request.taken
                end = min(len(request.items), start + room)
                batch.append((request, start, end))
                request.taken = end
                room -= end - start
                self._queued_items -= end - start
                if end == len(request.items):
                    self._queue.popleft()
            if batch:
                return batch

    def _execute(self, batch: list[tuple[_Request, int, int]]) -> None:
        flat = [item for request, start, end in batch for item in request.items[start:end]]
        try:
            with self._lane.unit():
                outputs = self._infer(flat)
            if len(outputs) != len(flat):
                raise RuntimeError(f"{len(outputs)} outputs for {len(flat)} inputs")
        except Exception as exc:
            log.exception("inference failed on %s", self.servable.name)
            error = exc if isinstance(exc, ServingError) else InferenceError(f"Inference failed: {exc}")
            for request, _, _ in batch:
                self._close(request)
            _deliver([(request, None, error) for request, _, _ in batch])
            return
        finished: list[tuple[_Request, Any, Exception | None]] = []
        offset = 0
        for request, start, end in batch:
            request.results[start:end] = outputs[offset:offset + end - start]
            offset += end - start
            request.remaining -= end - start
            if request.remaining == 0 and not request.closed:
                finished.append((request, request.results, None))
        with self._cond:  # counted before the answers leave: a client that reads /metrics next sees its batch
            self._batches += 1
            self._items += len(flat)
            self._requests += len(finished)
            self._last_batch_items = len(flat)
            self._last_batch_end = time.monotonic()
        _deliver(finished)

    def _shutdown(self) -> None:
        with self._cond:
            waiting, self._queue = list(self._queue), deque()
            self._queued_items = 0
        error = ModelUnavailable(f"Model {self.servable.name} was unloaded")
        _deliver([(request, None, error) for request in waiting])


def _deliver(settled: list[tuple[_Request, Any, Exception | None]]) -> None:
    """The thread -> asyncio handoff: settle the requests' futures with one wake-up per event loop
    (all requests come from the server's one loop, so one `call_soon_threadsafe` per batch)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Settlement]] = {}
    for request, result, error in settled:
        by_loop.setdefault(request.loop, []).append((request.future, result, error))
    for loop, settlements in by_loop.items():
        settle_futures(loop, settlements)
