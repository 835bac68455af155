"""Device arbiter: every engine asks before each unit of work (one LLM step, one embedding/rerank
batch, one diffusion step, one tensor inference) and reports when it ends.

All engines share the same CPU cores, and each OpenVINO pipeline already uses every core for one
unit. Running two units at once only oversubscribes the cores, so a long image generation or an
embedding burst stretches every token step. The arbiter grants the device to one unit at a time:

- `off`: no arbitration; every engine runs whenever it likes (the behaviour without an arbiter).
- `fifo`: one unit at a time, in the order engines asked.
- `fair`: one unit at a time; the waiting lane with the lowest priority class goes first, and within
  a class, the lane with the least weighted device time (stride scheduling: a unit of d seconds
  costs a lane d / weight). A lane that has waited longer than its starvation wait goes next
  whatever its class, so queued images and embeddings always progress. The starvation wait is
  `starvation_ms`, or longer for a lane with long units: its mean unit x (the heaviest interactive
  weight / its weight). A fixed wait gave a lane with 230 ms diffusion steps and a 250 ms wait half
  the device next to busy token streams whatever its weight (bench/mixed_load.py: chat TPOT 2.3x);
  with the scaled wait a weight-1 image gets about 1/9 of the device next to a weight-8 LLM.
  Units cannot be interrupted, so when a background unit (class >= 1) has held the device for
  `overlap_ms` (a long diffusion step), an interactive unit (class 0) starts next to it instead of
  waiting for its end: token streams slow down by the overlap but never stall behind a long unit.

Units of kinds whose thread plan is `background` (servables/kinds.py: embeddings, rerank, images,
speech) run with every core, and the thread that runs them lowers its OS scheduling priority to
`background_nice` (Linux nice is per thread: setpriority(2) on the thread id) when the server also has
token streams to protect (an interactive lane exists). Alone, such a unit gets the whole CPU; next to a
token step, the kernel gives the cores to the token step first. See
`thread_defaults` for the measurements behind it.

Defaults per kind come from the kind table (servables/kinds.py: `priority`, `weight`), overridable
per model in config.json with `priority` and `weight`: LLM token streams class 0 weight 8;
embeddings / rerank class 1 weight 2; images class 1 weight 1.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from servables.base import ModelSpec
from servables.kinds import BY_NAME

log = logging.getLogger(__name__)

POLICIES = ("off", "fifo", "fair")
IDLE_S = 0.1  # a lane that asks again within this time after a unit counts as continuously busy
STREAM_GAP_S = 0.01  # fair: an interactive lane that released less than this ago is between two steps


@dataclass
class LaneStats:
    units: int = 0
    busy_seconds: float = 0.0
    wait_seconds: float = 0.0
    waiting: int = 0
    running: int = 0


@dataclass(eq=False)
class Lane:
    """One engine's place in the arbiter's queue."""

    arbiter: Arbiter
    name: str
    kind: str  # the kind's label, for metrics
    priority: int
    weight: float
    nice: int = 0  # OS priority (nice value) of the threads that run this lane's units; 0 leaves them alone
    mean_unit_s: float = 0.0  # moving average of this lane's unit durations (starvation wait)
    vtime: float = 0.0
    stats: LaneStats = field(default_factory=LaneStats)
    _held_since: float | None = None
    _released_at: float = float("-inf")
    _held: bool = False  # a lane serves one engine, whose units run one after the other (maybe on
    # different threads: GenAI calls the diffusion step callback from its own thread)

    def acquire(self) -> None:
        if self.nice and self.arbiter.serves_token_steps():
            lower_thread_priority(self.nice)
        self.arbiter._acquire(self)

    def release(self) -> None:
        self.arbiter._release(self)

    def switch(self) -> None:
        """Between two units of one long job (diffusion steps): let others in, then continue."""
        if self.held():
            self.release()
        self.acquire()

    def release_if_held(self) -> None:
        if self.held():
            self.release()

    def held(self) -> bool:
        return self._held

    @contextmanager
    def unit(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        self.arbiter._remove(self)


@dataclass
class _Waiter:
    lane: Lane
    ticket: int
    since: float


class Arbiter:
    def __init__(self, policy: str = "fair", starvation_ms: float = 250.0, overlap_ms: float = 25.0,
                 background_nice: int = 0) -> None:
        if policy not in POLICIES:
            raise ValueError(f"arbiter policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if not 0 <= background_nice <= 19:
            raise ValueError(f"background nice must be within 0..19, got {background_nice}")
        self.policy = policy
        self.background_nice = background_nice if policy != "off" else 0
        self.starvation_s = starvation_ms / 1000.0
        self.overlap_s = overlap_ms / 1000.0
        self._cond = threading.Condition()
        self._lanes: list[Lane] = []
        self._waiting: list[_Waiter] = []
        self._holders: dict[int, tuple[Lane, float]] = {}  # id(lane) -> (lane, since)
        self._tickets = itertools.count()

    def lane(self, name: str, kind: str, priority: int | None = None, weight: float | None = None) -> Lane:
        """A lane for an engine of `kind` (a task name of servables/kinds.py); priority and weight
        default to the kind's."""
        declared = BY_NAME.get(kind)
        default_priority, default_weight = (declared.priority, declared.weight) if declared else (1, 1.0)
        lane = Lane(self, name, declared.label if declared else kind,
                    default_priority if priority is None else priority,
                    max(float(default_weight if weight is None else weight), 1e-3),
                    self.background_nice if declared and declared.threads == "background" else 0)
        with self._cond:
            lane.vtime = min((other.vtime for other in self._lanes), default=0.0)
            self._lanes.append(lane)
        return lane

    def lanes(self) -> list[Lane]:
        with self._cond:
            return list(self._lanes)

    def serves_token_steps(self) -> bool:
        """Whether an interactive lane (class 0: an LLM's token steps) exists. Background units lower their
        thread's priority only then: with nothing to protect, a lowered priority only made images lose to
        unrelated processes (bench/image_throughput.py beside other load: 0.63x of the pipeline at nice 10,
        0.98x at nice 0)."""
        return any(lane.priority == 0 for lane in self._lanes)

    def _remove(self, lane: Lane) -> None:
        with self._cond:
            if lane in self._lanes:
                self._lanes.remove(lane)

    def starvation_wait(self, lane: Lane) -> float:
        """Seconds `lane` waits before it goes next whatever its class: `starvation_ms`, or its mean unit
        scaled by the heaviest interactive weight over its own, whichever is longer."""
        interactive = max((other.weight for other in self._lanes if other.priority == 0), default=0.0)
        if lane.priority == 0 or interactive <= 0:
            return self.starvation_s
        return max(self.starvation_s, lane.mean_unit_s * interactive / lane.weight)

    def _next(self, now: float) -> _Waiter:
        if self.policy == "fifo":
            return min(self._waiting, key=lambda w: w.ticket)
        starving = [w for w in self._waiting if now - w.since > self.starvation_wait(w.lane)]
        if starving:
            return min(starving, key=lambda w: w.since)
        return min(self._waiting, key=lambda w: (w.lane.priority, w.lane.vtime, w.ticket))

    def _may_start(self, waiter: _Waiter, now: float) -> bool:
        if not self._holders:
            if self._next(now) is not waiter:
                return False
            starving = now - waiter.since > self.starvation_wait(waiter.lane)
            if self.policy != "fair" or waiter.lane.priority == 0 or starving:
                return True
            # a token stream between two steps is still streaming: background units wait for a real
            # gap (or until they starve) instead of slipping in and delaying its next step
            return all(now - lane._released_at > STREAM_GAP_S for lane in self._lanes if lane.priority == 0)
        if self.policy != "fair" or waiter.lane.priority != 0:
            return False
        # an interactive unit does not wait behind a long background unit: it runs next to it
        return all(lane.priority > 0 and now - since >= self.overlap_s for lane, since in self._holders.values())

    def _acquire(self, lane: Lane) -> None:
        started = time.monotonic()
        if self.policy == "off":
            lane._held = True
            lane._held_since = started
            with self._cond:
                lane.stats.running += 1
            return
        with self._cond:
            waiter = _Waiter(lane, next(self._tickets), started)
            # a lane that was idle does not bank credit: it rejoins at the current minimum
            active = [w.lane.vtime for w in self._waiting]
            idle = lane.stats.waiting == 0 and lane.stats.running == 0 and started - lane._released_at > IDLE_S
            if active and idle:
                lane.vtime = max(lane.vtime, min(active))
            self._waiting.append(waiter)
            lane.stats.waiting += 1
            while not self._may_start(waiter, time.monotonic()):
                self._cond.wait(min(self.starvation_s, self.overlap_s, STREAM_GAP_S))
            self._waiting.remove(waiter)
            lane.stats.waiting -= 1
            lane.stats.running += 1
            now = time.monotonic()
            lane.stats.wait_seconds += now - started
            self._holders[id(lane)] = (lane, now)
        lane._held = True
        lane._held_since = now

    def _release(self, lane: Lane) -> None:
        now = time.monotonic()
        elapsed = now - (lane._held_since or now)
        lane._held = False
        with self._cond:
            lane.mean_unit_s = elapsed if not lane.stats.units else 0.8 * lane.mean_unit_s + 0.2 * elapsed
            lane.stats.units += 1
            lane.stats.busy_seconds += elapsed
            lane.stats.running -= 1
            lane.vtime += elapsed / lane.weight
            lane._released_at = now
            if self.policy != "off":
                self._holders.pop(id(lane), None)
                self._cond.notify_all()


_arbiter = Arbiter("off")


def configure(policy: str, starvation_ms: float = 250.0, overlap_ms: float = 25.0,
              background_nice: int = 0) -> Arbiter:
    """Install the process-wide arbiter (call before models load)."""
    global _arbiter
    _arbiter = Arbiter(policy, starvation_ms, overlap_ms, background_nice)
    return _arbiter


def lower_thread_priority(nice: int) -> None:
    """Give the calling thread at least `nice` (Linux: setpriority(2) with PRIO_PROCESS and a thread id
    changes that thread only). Lowering needs no privilege; it is never raised again, so it is only called
    from engine threads that run nothing but background units. Elsewhere (no per-thread nice) it does nothing."""
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: the unit runs at the normal priority
        log.debug("cannot lower the priority of thread %d", tid, exc_info=True)


def current() -> Arbiter:
    return _arbiter


def lane_for(servable: Any) -> Lane:
    """The lane of a servable, with `priority` / `weight` from its config entry when given."""
    spec: ModelSpec = servable.spec
    return _arbiter.lane(servable.name, spec.task, spec.priority, spec.weight)


def thread_defaults(spec: ModelSpec, policy: str, cores: int) -> ModelSpec:
    """OpenVINO thread settings for pipelines that share the cores under the arbiter.

    With OpenVINO's defaults a diffusion or embedding unit running next to a token step pins its
    threads onto the cores the LLM's threads are pinned to, and chat TPOT grows 1.6-4x; CPU pinning is
    off in every arbitrated pipeline. Background pipelines used to get half the cores: on 2 cores that
    cost an idle image pipeline 0.63x of its images/s, and did not protect chat either (a parallel token
    step is as slow as its slowest thread, and one of its threads shared a core with the image thread).
    The `background` plan gives them every core and lowers the priority of the threads that run their
    units instead (`Lane.nice`), so the kernel hands the cores to a token step whenever one runs
    (bench/mixed_load.py, README "Device arbiter"). Values the user put in `plugin_config` win;
    `--arbiter off` changes nothing. The kind table says which plan a kind follows (`threads`: all,
    background, half, or own = untouched).
    """
    declared = BY_NAME.get(spec.task)
    if policy == "off" or declared is None or declared.threads == "own":
        return spec
    plugin_config = spec.options.get("plugin_config")
    if isinstance(plugin_config, str):  # a JSON string, as OVMS graphs carry it: leave it alone
        return spec
    defaults: dict[str, Any] = {"ENABLE_CPU_PINNING": False}
    if declared.threads == "half":
        defaults["INFERENCE_NUM_THREADS"] = max(1, cores // 2)
    return replace(spec, options={**spec.options, "plugin_config": {**defaults, **(plugin_config or {})}})
