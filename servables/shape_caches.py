"""`--cpu_shape_caches off`: flat memory instead of the CPU plugin's per-shape caches (README "Memory over time").

Continuous batching feeds the model a new input shape almost every step (sequences x tokens per step).
OpenVINO's CPU plugin keeps the executors it builds per shape in its runtime cache
(`CPU_RUNTIME_CACHE_CAPACITY`, 5000 entries by default) and oneDNN keeps the primitives behind them in
its primitive cache (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`, 1024 by default): both are bounded by a count
of entries, not bytes, so RSS climbs for as long as new batch shapes keep appearing. With both at 0 the
memory malloc holds stays flat under the same load, at a cost in speed (every step rebuilds its
executors); either one alone is not enough (a runtime-cache miss builds new primitives, which then land
in oneDNN's cache). The caches stay on unless the server is told otherwise.
"""
from __future__ import annotations

import os
from typing import Any

RUNTIME_CACHE = "CPU_RUNTIME_CACHE_CAPACITY"
PRIMITIVE_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"

_caches_on = True  # process-wide, like oneDNN's own setting; set once by `serve` before any model loads


def configure(caches_on: bool) -> None:
    """With the caches off, set oneDNN's primitive cache capacity to 0 unless the environment already sets it
    (oneDNN reads it when the CPU plugin first builds a primitive: call this before any model loads), and give
    CPU LLMs `CPU_RUNTIME_CACHE_CAPACITY: 0` unless their `plugin_config` chooses one."""
    global _caches_on
    _caches_on = caches_on
    if not caches_on:
        os.environ.setdefault(PRIMITIVE_CACHE_ENV, "0")


def with_runtime_cache_default(device: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A copy of `properties`, with the runtime cache off when the caches are off, the device is the CPU (other
    devices reject the CPU plugin's property) and `plugin_config` does not choose a capacity itself."""
    if _caches_on or device.upper() != "CPU" or RUNTIME_CACHE in properties:
        return dict(properties)
    return {**properties, RUNTIME_CACHE: 0}
