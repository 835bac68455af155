"""Helpers shared by the end-to-end tests: waiting on observable state, reading `/metrics`, writing configs.

Tests wait for something they can observe (a metric, a log line, a finished future) with a deadline,
never for a fixed time.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

T = TypeVar("T")

# OpenVINO picks bf16 by default on CPUs with AMX or AVX512-BF16; tests that compare exact tokens or
# numbers pin f32 so that their greedy outputs do not depend on the CPU they run on.
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.05,
             message: str = "condition") -> T:
    """Call `predicate` until it returns something truthy, and return that; AssertionError after
    `timeout` seconds. Exceptions from `predicate` propagate (a server that died fails at once)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached within {timeout:g}s (last value: {value!r})")
        time.sleep(interval)


# --- /metrics ----------------------------------------------------------------------------------

def scrape(target: Any) -> str:
    """The `/metrics` text of a server: a ServerProcess, a base URL, or an httpx.Client with a base_url."""
    if isinstance(target, httpx.Client):
        response = target.get("/metrics")
    else:
        response = httpx.get(f"{getattr(target, 'url', target)}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def metric_samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _named(sample: Sample, name: str) -> bool:
    # prometheus_client's parser spells counter samples `<family>_total`; the server (as OVMS) may not
    return sample.name == name or sample.name == f"{name}_total"


def metric_value(text: str, metric: str, /, *, default: float | None = None, **labels: str) -> float:
    """The value of the one sample called `metric` whose labels include `labels` (others may differ
    only if they are not given). A counter may be named with or without `_total`. Without a match:
    `default`, or KeyError when no default is given; several matches are an error."""
    found = [s for s in metric_samples(text) if _named(s, metric)
             and all(s.labels.get(k) == str(v) for k, v in labels.items())]
    if not found:
        if default is not None:
            return default
        raise KeyError(f"no sample {metric}{labels or ''} in /metrics")
    if len(found) > 1:
        raise LookupError(f"{len(found)} samples match {metric}{labels}: {[s.labels for s in found]}")
    return float(found[0].value)


def metric(target: Any, metric_name: str, /, *, default: float | None = None, **labels: str) -> float:
    """`metric_value` of a fresh scrape of `target` (see `scrape`)."""
    return metric_value(scrape(target), metric_name, default=default, **labels)


# --- config files -------------------------------------------------------------------------------

def write_config(path: Path, entries: Iterable[dict[str, Any]] | None = None, *, text: str | None = None) -> Path:
    """Write an OVMS-style config.json: `entries` are the `config` objects of `model_config_list`
    (or `text` is written as is, e.g. a broken file). Replaced atomically, so a polling server never
    reads half a file."""
    path = Path(path)
    if text is None:
        text = json.dumps({"model_config_list": [{"config": entry} for entry in entries or []]})
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


# --- synthetic engine events (unit tests of the API formatters) ------------------------------

class ScriptedEvents:
    """An engine's event stream that yields the given scheduler events and records being closed."""

    def __init__(self, events: Iterable[Any]):
        self.pending = list(events)
        self.closed = False

    def __aiter__(self) -> ScriptedEvents:
        return self

    async def __anext__(self) -> Any:
        if not self.pending:
            raise StopAsyncIteration
        return self.pending.pop(0)

    async def aclose(self) -> None:
        self.closed = True


def started_run(shape: Any, events: list[Any], num_choices: int = 1, model: str = "m") -> Any:
    """A `gateway.openai.generation.Run` over scripted events, its first event already awaited (as
    `start_run` leaves it); `run.events.closed` tells whether the formatter closed the stream."""
    from gateway.openai.generation import Run

    return Run(ScriptedEvents(events[1:]), events[0], model, shape, num_choices)
