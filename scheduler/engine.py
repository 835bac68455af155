"""What every engine offers the model manager, and how one is started and retired.

The kind table (servables/kinds.py) names each kind's engine class; engines differ in how jobs are
submitted (`submit`, `run`, `infer`), which only that kind's router calls.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from servables.base import Servable
from servables.kinds import kind


@runtime_checkable
class Engine(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop at once; work still queued fails with ModelUnavailable."""
        ...

    def stats(self) -> Any:
        """A snapshot for /metrics (running, waiting, ...)."""
        ...


def start_engine(servable: Servable) -> Engine:
    """Build and start the engine of a loaded servable's kind (not routed to yet)."""
    engine: Engine = kind(servable.spec.task).load("engine")(servable)
    engine.start()
    return engine


def retire(engine: Engine, timeout: float | None = None) -> None:
    """Let an engine finish what it has (when it supports `drain()`), then stop it."""
    drain = getattr(engine, "drain", None)
    if drain is not None:
        drain(timeout)
    engine.stop()
