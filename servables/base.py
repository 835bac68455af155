"""The `Servable` protocol: what every model kind implements, and the spec it is built from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model list, from the CLI or a `config.json` entry.

    `options` holds the task's node options (OVMS graph options, docs/llm/reference.md) as plain JSON values.
    """

    name: str
    base_path: Path
    task: str
    options: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    priority: int | None = None  # device arbiter: lower class goes first (default by kind)
    weight: float | None = None  # device arbiter: share of device time within a class
    source: str | None = None  # object-storage URL that base_path mirrors (servables/object_storage.py)


@runtime_checkable
class Servable(Protocol):
    spec: ModelSpec  # spec.task names its kind (servables/kinds.py)

    @property
    def name(self) -> str: ...

    def load(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Extra metadata for `/v3/models` (context length, parsers ...)."""
        ...
