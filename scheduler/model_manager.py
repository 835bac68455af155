"""Loads servables from specs into the registry and starts an engine for each."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable

from servables.base import ModelSpec
from servables.errors import ModelNotFound
from servables.registry import Registry, create_servable

from .scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass
class Deployment:
    servable: Any
    engine: Any
    created: int


class ModelManager:
    def __init__(self) -> None:
        self.registry = Registry()
        self.scheduler = Scheduler()
        self._created: dict[str, int] = {}
        self.ready = False

    def load(self, specs: Iterable[ModelSpec]) -> None:
        for spec in specs:
            started = time.monotonic()
            servable = create_servable(spec)
            log.info("loading %s (%s) from %s", spec.name, spec.task, spec.base_path)
            servable.load()
            self.scheduler.attach(servable)
            self.registry.add(servable)
            self._created[spec.name] = int(time.time())
            log.info("model %s ready in %.1f s", spec.name, time.monotonic() - started)
        self.ready = True

    def unload(self, name: str) -> None:
        """Remove a model: new requests get 404, in-flight ones finish (engines drain on stop)."""
        servable = self.registry.remove(name)
        self.scheduler.detach(name)
        self._created.pop(name, None)
        if servable is not None:
            servable.close()

    def get(self, name: str) -> Deployment:
        servable = self.registry.get(name)
        return Deployment(servable, self.scheduler.engine(name), self._created.get(name, 0))

    def get_version(self, name: str, version: int | None = None) -> Deployment:
        """A versioned (tensor) model's `version`, or its default version when None."""
        group = self.get(name)
        if getattr(group.servable, "kind", None) != "tensor":
            raise ModelNotFound(name)
        servable = group.servable.version(version)
        return Deployment(servable, group.engine.engine(servable.version), group.created)

    def deployments(self) -> list[Deployment]:
        return [self.get(s.name) for s in self.registry.all()]

    def close(self) -> None:
        self.ready = False
        self.scheduler.close()
        for servable in self.registry.all():
            servable.close()
