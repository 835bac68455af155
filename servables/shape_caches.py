"""Defaults that keep the CPU plugin's per-shape caches from growing the process (README "Memory over time").

Continuous batching feeds the model a new input shape almost every step (sequences x tokens per step).
OpenVINO's CPU plugin keeps the executors it builds per shape in its runtime cache
(`CPU_RUNTIME_CACHE_CAPACITY`, 5000 entries by default) and oneDNN keeps the primitives behind them in
its primitive cache (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`, 1024 by default): both are bounded by a count
of entries, not bytes, so RSS climbs for as long as new batch shapes keep appearing. With both at 0 the
memory malloc holds stays flat under the same load; either one alone is not enough (a runtime-cache miss
builds new primitives, which then land in oneDNN's cache).
"""
from __future__ import annotations

import os
from typing import Any

RUNTIME_CACHE = "CPU_RUNTIME_CACHE_CAPACITY"
PRIMITIVE_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_CAPACITY = 0


def apply_process_default() -> None:
    """Set oneDNN's primitive cache capacity unless the environment already does. oneDNN reads it when
    the CPU plugin first builds a primitive, so call this before any model loads."""
    os.environ.setdefault(PRIMITIVE_CACHE_ENV, str(DEFAULT_CAPACITY))


def with_runtime_cache_default(device: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A copy of `properties` with the CPU runtime cache capacity set when the device is the CPU and `plugin_config`
    does not choose one (other devices reject the CPU plugin's property)."""
    if device.upper() != "CPU" or RUNTIME_CACHE in properties:
        return dict(properties)
    return {**properties, RUNTIME_CACHE: DEFAULT_CAPACITY}
