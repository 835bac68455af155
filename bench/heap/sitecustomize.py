"""Loaded by a server that bench/soak.py starts with this folder on PYTHONPATH.

SIGUSR2 calls glibc's `malloc_trim(0)` (man 3 malloc_trim): the RSS it gives back is memory that was
freed but kept by the allocator, not a leak. With `$GENAI_HEAP_DIR` set (soak.py --tracemalloc),
it also traces the Python heap (tracemalloc, one frame per allocation) and writes a snapshot to
`$GENAI_HEAP_DIR/<n>.snapshot` on every SIGUSR1, so that a soak can diff the heap after its
warm-up against the heap at its end (tracemalloc's Snapshot.compare_to in the Python docs).
"""
from __future__ import annotations

import ctypes
import os
import signal
import tracemalloc


def _trim(signum: int, frame: object) -> None:
    ctypes.CDLL("libc.so.6").malloc_trim(0)


signal.signal(signal.SIGUSR2, _trim)

_directory = os.environ.get("GENAI_HEAP_DIR")
if _directory:
    tracemalloc.start(1)
    _taken = [0]

    def _dump(signum: int, frame: object) -> None:
        _taken[0] += 1
        path = os.path.join(_directory, f"{_taken[0]}.snapshot")
        tracemalloc.take_snapshot().dump(path + ".tmp")
        os.replace(path + ".tmp", path)  # appears complete, or not at all

    signal.signal(signal.SIGUSR1, _dump)
