"""Test models built once and kept in ~/.cache/genai-gateway/test-models (GENAI_GATEWAY_TEST_MODELS)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE = Path(os.environ.get("GENAI_GATEWAY_TEST_MODELS", Path.home() / ".cache/genai-gateway/test-models"))


def cached(name: str, params: dict, build: Callable[[Path], None]) -> Path:
    """`<cache>/<name>-<hash of params>`: `build(folder)` fills an empty folder once, which is then
    renamed into place (so a half-built model never looks finished, and concurrent runs are safe)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    target = CACHE / f"{name}-{digest}"
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    try:
        out = work / "out"
        out.mkdir()
        build(out)
        try:
            os.rename(out, target)
        except OSError:  # built concurrently by another run
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
