"""All servables by name; builds a servable of the right kind from a `ModelSpec`.

A new model kind is one new module with a class implementing `Servable`, registered here by task.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any

from .base import ModelSpec
from .errors import ModelLoadError, ModelNotFound

# task -> "module:Class"; imported on first use so that unused kinds cost nothing.
SERVABLE_CLASSES: dict[str, str] = {
    "text_generation": "servables.llm:LLMServable",
    "embeddings": "servables.embeddings:EmbeddingsServable",
    "rerank": "servables.rerank:RerankServable",
    "image_generation": "servables.image:ImageServable",
    "tensor": "servables.tensor_model:TensorModel",
}


def register_kind(task: str, target: str) -> None:
    SERVABLE_CLASSES[task] = target


def create_servable(spec: ModelSpec) -> Any:
    target = SERVABLE_CLASSES.get(spec.task)
    if target is None:
        raise ModelLoadError(f"{spec.name}: task {spec.task!r} is not supported by this server")
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)(spec)


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servables: dict[str, Any] = {}

    def add(self, servable: Any) -> Any:
        """Add or replace; returns the servable that was replaced, if any."""
        with self._lock:
            old = self._servables.get(servable.name)
            self._servables[servable.name] = servable
            return old

    def remove(self, name: str) -> Any | None:
        with self._lock:
            return self._servables.pop(name, None)

    def get(self, name: str) -> Any:
        with self._lock:
            servable = self._servables.get(name)
        if servable is None:
            raise ModelNotFound(name)
        return servable

    def all(self) -> list[Any]:
        with self._lock:
            return list(self._servables.values())
