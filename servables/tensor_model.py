"""A classic model with versions: `<base_path>/<version:int>/<model files>` and a version policy.

`TensorModel` is what a deployment of kind "tensor" holds under the model's name; it owns one
`TensorServable` per served version. The default version is the highest served one
(OVMS docs/model_version_policy.md). `base_path` may also be a single `.xml`/`.onnx` file: version 1.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import object_storage
from .base import ModelSpec
from .errors import ModelLoadError, VersionNotFound
from .model_formats import SUFFIXES
from .tensor import TensorServable

log = logging.getLogger(__name__)

MODEL_SUFFIXES = SUFFIXES  # every format OpenVINO reads (servables/model_formats.py)


@dataclass(frozen=True)
class VersionPolicy:
    """`{"latest": {"num_versions": N}}` (default N=1), `{"specific": {"versions": [...]}}` or `{"all": {}}`."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, value: Any) -> VersionPolicy:
        if value is None:
            return cls()
        if not isinstance(value, dict) or len(value) != 1:
            raise ModelLoadError('model_version_policy must be one of {"all": {}}, {"latest": {"num_versions": N}}, '
                                 '{"specific": {"versions": [...]}}')
        kind, body = next(iter(value.items()))
        body = body or {}
        if kind == "all":
            return cls("all")
        if kind == "latest":
            n = body.get("num_versions", 1)
            if not isinstance(n, int) or n < 1:
                raise ModelLoadError(f"model_version_policy.latest.num_versions must be >= 1, got {n!r}")
            return cls("latest", num_versions=n)
        if kind == "specific":
            versions = body.get("versions")
            if not isinstance(versions, list) or not versions or not all(isinstance(v, int) and v >= 1
                                                                          for v in versions):
                raise ModelLoadError("model_version_policy.specific.versions must be a list of integers >= 1")
            return cls("specific", versions=tuple(versions))
        raise ModelLoadError(f"unknown model_version_policy {kind!r}")

    def select(self, available: list[int]) -> list[int]:
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:]


def has_model_file(path: Path) -> bool:
    return any(p.suffix in MODEL_SUFFIXES for p in path.iterdir() if p.is_file())


def version_dirs(base_path: Path) -> dict[int, Path]:
    """Numeric subdirectories that hold a model file."""
    if not base_path.is_dir():
        return {}
    return {int(p.name): p for p in base_path.iterdir()
            if p.is_dir() and p.name.isascii() and p.name.isdigit() and int(p.name) > 0 and has_model_file(p)}


def is_model_repository(path: Path) -> bool:
    """A classic model: a folder with numeric version subfolders, or a single `.xml`/`.onnx` file."""
    if path.is_file():
        return path.suffix in MODEL_SUFFIXES
    return bool(version_dirs(path))


class TensorModel:
    """All served versions of one classic model."""


    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.policy = VersionPolicy.parse(spec.options.get("model_version_policy"))
        self._lock = threading.Lock()
        self._versions: dict[int, TensorServable] = {}
        self.retired: set[int] = set()  # versions once served and since unloaded (state END)

    @property
    def name(self) -> str:
        return self.spec.name

    def available_versions(self) -> dict[int, Path]:
        if self.spec.source is not None:  # object storage: bring the mirror up to date first
            object_storage.sync(self.spec.source)
        if self.spec.base_path.is_file():
            return {1: self.spec.base_path}
        return version_dirs(self.spec.base_path)

    def wanted_versions(self) -> dict[int, Path]:
        available = self.available_versions()
        return {v: available[v] for v in self.policy.select(list(available))}

    def load(self) -> None:
        wanted = self.wanted_versions()
        if not wanted:
            raise ModelLoadError(f"{self.name}: no model version to serve in {self.spec.base_path} "
                                 f"(policy {self.policy.kind})")
        for version, path in wanted.items():
            self._versions[version] = self.load_version(version, path)

    def load_version(self, version: int, path: Path) -> TensorServable:
        options = {k: v for k, v in self.spec.options.items() if k != "model_version_policy"}
        servable = TensorServable(replace(self.spec, base_path=path, version=version, options=options))
        servable.load()
        log.info("%s: version %d loaded from %s", self.name, version, path)
        return servable

    def add_version(self, servable: TensorServable) -> None:
        with self._lock:
            self._versions[servable.version] = servable
            self.retired.discard(servable.version)

    def remove_version(self, version: int) -> TensorServable | None:
        with self._lock:
            servable = self._versions.pop(version, None)
            if servable is not None:
                self.retired.add(version)
            return servable

    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._versions)

    def default_version(self) -> int:
        versions = self.versions()
        if not versions:
            raise VersionNotFound(self.name, None)
        return versions[-1]

    def version(self, version: int | None = None) -> TensorServable:
        """The servable of `version`, or of the default (highest served) version when None."""
        with self._lock:
            if version is None:
                version = max(self._versions, default=None)
            servable = self._versions.get(version) if version is not None else None
        if servable is None:
            raise VersionNotFound(self.name, version)
        return servable

    def close(self) -> None:
        with self._lock:
            servables, self._versions = list(self._versions.values()), {}
        for servable in servables:
            servable.close()

    def describe(self) -> dict[str, Any]:
        return {"versions": [str(v) for v in self.versions()]}

    def version_status(self) -> list[dict[str, Any]]:
        """`GET /v1/config` entries: served versions AVAILABLE, unloaded ones END."""
        with self._lock:
            entries = [(v, "AVAILABLE") for v in self._versions] + [(v, "END") for v in self.retired]
        return [{"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": "OK"}}
                for v, state in sorted(entries)]
