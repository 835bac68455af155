"""The scheduler owns one engine per loaded servable and routes jobs to it."""
from __future__ import annotations

import logging
from typing import Any, Callable

from servables.errors import ModelUnavailable

from .image_engine import ImageEngine
from .llm_engine import LLMEngine

log = logging.getLogger(__name__)

# kind -> factory(servable) -> engine. Engines have start(), stop(), submit(job) and stats().
ENGINE_FACTORIES: dict[str, Callable[[Any], Any]] = {"llm": LLMEngine, "image": ImageEngine}


def register_engine(kind: str, factory: Callable[[Any], Any]) -> None:
    ENGINE_FACTORIES[kind] = factory


class Scheduler:
    def __init__(self) -> None:
        self._engines: dict[str, Any] = {}

    def attach(self, servable: Any) -> Any:
        """Start an engine for a loaded servable (replacing any engine of the same name)."""
        factory = ENGINE_FACTORIES.get(servable.kind)
        if factory is None:
            raise ModelUnavailable(f"No engine for servables of kind {servable.kind!r}")
        engine = factory(servable)
        engine.start()
        old = self._engines.get(servable.name)
        self._engines[servable.name] = engine
        if old is not None:
            old.stop()
        return engine

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
