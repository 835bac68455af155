"""The scheduler owns one engine per loaded servable and routes jobs to it."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from servables.errors import ModelUnavailable

from .batcher import BatchingEngine
from .image_engine import ImageEngine
from .llm_engine import LLMEngine
from .tensor_engine import TensorModelEngine

log = logging.getLogger(__name__)

# kind -> factory(servable) -> engine. Engines have start(), stop(), submit(job) and stats().
ENGINE_FACTORIES: dict[str, Callable[[Any], Any]] = {
    "llm": LLMEngine,
    "tensor": TensorModelEngine,
    "embeddings": BatchingEngine,
    "rerank": BatchingEngine,
    "image": ImageEngine,
}


def retire(engine: Any, timeout: float | None = None) -> None:
    """Let an engine finish what it has (when it supports `drain()`), then stop it."""
    drain = getattr(engine, "drain", None)
    if drain is not None:
        drain(timeout)
    engine.stop()


def register_engine(kind: str, factory: Callable[[Any], Any]) -> None:
    ENGINE_FACTORIES[kind] = factory


class Scheduler:
    def __init__(self) -> None:
        self._engines: dict[str, Any] = {}

    def create(self, servable: Any) -> Any:
        """Start an engine for a loaded servable without routing anything to it yet."""
        factory = ENGINE_FACTORIES.get(servable.kind)
        if factory is None:
            raise ModelUnavailable(f"No engine for servables of kind {servable.kind!r}")
        engine = factory(servable)
        engine.start()
        return engine

    def install(self, name: str, engine: Any) -> Any | None:
        """Route `name` to `engine`; returns the engine it replaced (still running: drain, then stop it)."""
        old = self._engines.get(name)
        self._engines[name] = engine
        return old

    def attach(self, servable: Any) -> Any:
        """Start an engine for a loaded servable (replacing and stopping any engine of the same name)."""
        engine = self.create(servable)
        old = self.install(servable.name, engine)
        if old is not None:
            retire(old)
        return engine

    def uninstall(self, name: str) -> Any | None:
        """Stop routing to `name`; returns its engine, still running."""
        return self._engines.pop(name, None)

    def detach(self, name: str) -> None:
        engine = self._engines.pop(name, None)
        if engine is not None:
            engine.stop()

    def engine(self, name: str) -> Any:
        engine = self._engines.get(name)
        if engine is None:
            raise ModelUnavailable(f"Model {name} is not loaded")
        return engine

    def engines(self) -> dict[str, Any]:
        return dict(self._engines)

    def close(self) -> None:
        for name in list(self._engines):
            self.detach(name)
