"""Loads servables from specs, keeps one `Deployment` per name, and applies model-list changes live.

A `Deployment` is the servable and its engine as one object: a request resolves it once and uses
both, so a swap never pairs a job prepared on one servable with another servable's engine.
Changes (`apply`) are made without failing requests in flight:
- added: load, then route to it;
- changed (any field of its spec): load the new one first, switch the entry atomically, then let
  the old engine finish what it has (`drain`) and close it;
- removed: stop routing to it (new requests get 404), drain, close.
Each name has an OVMS-style status (START, LOADING, AVAILABLE, UNLOADING, END and an error) for
`GET /v1/config`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from servables.base import ModelSpec, Servable
from servables.errors import ModelNotFound
from servables.kinds import TENSOR_ENDPOINT, Kind, create_servable, kind

from .engine import Engine, retire, start_engine

log = logging.getLogger(__name__)

# After a switch, a request that resolved the old deployment just before it may still be between
# `get()` and `engine.submit()` (synchronous code in one event-loop turn): wait this long before
# draining, so that it is counted.
SWITCH_GRACE_SECONDS = 0.5


S = TypeVar("S", bound=Servable)
E = TypeVar("E", bound=Engine)


@dataclass(frozen=True)
class Deployment(Generic[S, E]):
    """A servable and its engine, swapped as one. Routers get `Deployment[Any, Any]` and call the
    kind-specific methods their kind's servable and engine have (servables/kinds.py)."""

    servable: S
    engine: E
    created: int  # unix time it was loaded (OpenAI `created`)

    @property
    def kind(self) -> Kind:
        return kind(self.servable.spec.task)

    @property
    def name(self) -> str:
        return self.servable.name


class State(str, Enum):
    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclass
class VersionStatus:
    state: State
    error_code: str = "OK"  # OK, UNKNOWN, FAILED_PRECONDITION as in OVMS
    error_message: str = "OK"
    version: int = 1

    def as_ovms(self) -> dict[str, Any]:
        return {"version": str(self.version), "state": self.state.value,
                "status": {"error_code": self.error_code, "error_message": self.error_message}}


@dataclass
class ApplyResult:
    changed: bool = False
    errors: list[str] = field(default_factory=list)


class ModelManager:
    def __init__(self) -> None:
        self.ready = False
        self._lock = threading.RLock()  # guards the maps below; held only for dict updates
        self._apply_lock = threading.RLock()  # one model-list change (or refresh) at a time
        self._deployments: dict[str, Deployment] = {}  # the one name -> (servable, engine) map
        self._specs: dict[str, ModelSpec] = {}  # the spec last applied per name (loaded or failed)
        self._status: dict[str, VersionStatus] = {}
        self._retiring: dict[int, Deployment] = {}
        self._closed = False

    # --- lookups (any thread) -------------------------------------------------------------

    def get(self, name: str) -> Deployment[Any, Any]:
        with self._lock:
            deployment = self._deployments.get(name)
            if deployment is None:
                deployment = self._alias(name)
        if deployment is None:
            raise ModelNotFound(name)
        return deployment

    def _alias(self, name: str) -> Deployment[Any, Any] | None:
        """A servable's alias (an LLM's `<base>:<adapter>`, servables/lora.py) sharing its engine."""
        for deployment in self._deployments.values():
            alias = getattr(deployment.servable, "alias", None)
            view = alias(name) if alias is not None else None
            if view is not None:
                return Deployment(view, deployment.engine, deployment.created)
        return None

    def aliases(self) -> list[Deployment[Any, Any]]:
        """Every servable's aliases, as deployments (for listing; they share their base's engine)."""
        return [Deployment(view, d.engine, d.created) for d in self.deployments()
                for view in getattr(d.servable, "aliases", list)()]

    def get_version(self, name: str, version: int | None = None) -> Deployment[Any, Any]:
        """A versioned (tensor) model's `version`, or its default version when None."""
        group = self.get(name)
        if TENSOR_ENDPOINT not in group.kind.endpoints:  # tensor models and pipelines
            raise ModelNotFound(name)
        servable = group.servable.version(version)
        return Deployment(servable, group.engine.engine(servable.version), group.created)

    def deployments(self) -> list[Deployment[Any, Any]]:
        with self._lock:
            return list(self._deployments.values())

    def status(self) -> dict[str, Any]:
        """`GET /v1/config`: {name: {"model_version_status": [...]}}.

        A servable with versions of its own (tensor models) reports them via `version_status()`.
        """
        with self._lock:
            statuses = dict(self._status)
            deployments = dict(self._deployments)
        out: dict[str, Any] = {}
        for name, status in statuses.items():
            own = getattr(deployments[name].servable, "version_status", None) if name in deployments else None
            versions = own() if own is not None else [status.as_ovms()]
            out[name] = {"model_version_status": versions}
        return out

    # --- changes (one at a time; slow: call from a worker thread, not the event loop) ------

    def load(self, specs: Iterable[ModelSpec], strict: bool = True) -> ApplyResult:
        """Initial load. `strict`: the first failure raises (single-model mode); otherwise it is
        recorded in the status and the other models load."""
        result = ApplyResult()
        with self._apply_lock:
            for spec in specs:
                try:
                    self._deploy(spec)
                    result.changed = True
                except Exception as exc:
                    if strict:
                        raise
                    result.errors.append(f"{spec.name}: {exc}")
        self.ready = True
        return result

    def apply(self, specs: Iterable[ModelSpec], invalid: dict[str, str] | None = None) -> ApplyResult:
        """Make the served models match `specs`.

        `invalid` maps an entry (its model name, or a label such as `model_config_list[3]`) to the
        reason it was skipped; a model already served under such a name keeps its previous config.
        """
        invalid = dict(invalid or {})
        wanted = {spec.name: spec for spec in specs}
        result = ApplyResult(errors=[f"{label}: {reason}" for label, reason in invalid.items()])
        touched: set[str] = set()  # names added, changed or removed
        with self._apply_lock:
            for name in list(self._specs):
                if name not in wanted and name not in invalid:
                    self._undeploy(name)
                    touched.add(name)
                    result.changed = True
            for name, spec in wanted.items():
                if self._specs.get(name) == spec:
                    continue
                result.changed = True
                touched.add(name)
                try:
                    self._deploy(spec)
                except Exception as exc:
                    result.errors.append(f"{name}: {exc}")
            self._redeploy_dependents(touched, result)
            for label, reason in invalid.items():
                self._mark_invalid(label, reason)
            with self._lock:  # forget the errors of entries that are gone from the file
                for name in [n for n in self._status if n not in self._specs and n not in invalid]:
                    if self._status[name].state != State.END and not self._is_retiring(name):
                        self._status[name] = VersionStatus(State.END)
            result.changed |= self.refresh()
        for error in result.errors:
            log.error("config: %s", error)
        return result

    def _redeploy_dependents(self, touched: set[str], result: ApplyResult) -> None:
        """Servables built from other models (pipelines: `model_names()`) are loaded again, and so
        checked again, when a model they use was added, changed or removed (OVMS reloads the DAGs
        that depend on a changed model); a failure leaves the previous one serving, with the error."""
        for deployment in self.deployments():
            uses = getattr(deployment.servable, "model_names", None)
            if uses is None or deployment.name in touched or not touched & set(uses()):
                continue
            result.changed = True
            try:
                self._deploy(self._specs[deployment.name])
            except Exception as exc:
                result.errors.append(f"{deployment.name}: {exc}")

    def refresh(self) -> bool:
        """Per-servable rescans (e.g. tensor model version folders): each servable that has a
        `refresh() -> bool` method is asked to pick up changes on disk; True when any did."""
        changed = False
        with self._apply_lock:
            for deployment in self.deployments():
                refresh = getattr(deployment.engine, "refresh", None) or getattr(deployment.servable, "refresh", None)
                if refresh is None:
                    continue
                try:
                    changed |= bool(refresh())
                except Exception:
                    log.exception("refresh of %s failed", deployment.servable.name)
        return changed

    def close(self) -> None:
        self.ready = False
        self._closed = True
        with self._lock:
            deployments = list(self._deployments.values()) + list(self._retiring.values())
            self._deployments.clear()
            self._retiring.clear()
        for deployment in deployments:
            deployment.engine.stop()
            deployment.servable.close()

    # --- internals -------------------------------------------------------------------------

    def _set_status(self, name: str, state: State, error: str | None = None) -> None:
        with self._lock:
            self._status[name] = (VersionStatus(state) if error is None
                                  else VersionStatus(state, "FAILED_PRECONDITION", error))

    def _start(self, spec: ModelSpec) -> Deployment:
        """Load a servable and start its engine, not yet routed to."""
        started = time.monotonic()
        log.info("loading %s (%s) from %s", spec.name, spec.task, spec.base_path)
        servable = create_servable(spec)
        bind = getattr(servable, "bind_models", None)
        if bind is not None:  # a servable built from other served models (pipelines)
            bind(self.get_version)
        try:
            servable.load()
            engine = start_engine(servable)
        except Exception:
            servable.close()
            raise
        log.info("model %s ready in %.1f s", spec.name, time.monotonic() - started)
        return Deployment(servable, engine, int(time.time()))

    def _deploy(self, spec: ModelSpec) -> None:
        name = spec.name
        serving = name in self._deployments
        if not serving:
            self._set_status(name, State.LOADING)
        self._specs[name] = spec
        try:
            deployment = self._start(spec)
        except Exception as exc:
            if serving:
                self._set_status(name, State.AVAILABLE, f"reload failed, serving the previous version: {exc}")
            else:
                self._set_status(name, State.LOADING, str(exc))
            raise
        with self._lock:
            old = self._deployments.get(name)
            self._deployments[name] = deployment
            self._status[name] = VersionStatus(State.AVAILABLE)
        if old is not None:
            log.info("model %s replaced; the previous one finishes its requests", name)
            self._retire(name, old, removed=False)

    def _undeploy(self, name: str) -> None:
        self._specs.pop(name, None)
        with self._lock:
            old = self._deployments.pop(name, None)
            if old is not None:
                self._status[name] = VersionStatus(State.UNLOADING)
            else:
                self._status[name] = VersionStatus(State.END)
        if old is not None:
            log.info("model %s removed; it finishes its requests, then unloads", name)
            self._retire(name, old, removed=True)

    def _is_retiring(self, name: str) -> bool:
        return any(d.servable.name == name for d in self._retiring.values())

    def _retire(self, name: str, deployment: Deployment, removed: bool) -> None:
        key = id(deployment)
        with self._lock:
            self._retiring[key] = deployment

        def run() -> None:
            time.sleep(SWITCH_GRACE_SECONDS)
            try:
                retire(deployment.engine)
            finally:
                deployment.servable.close()
                with self._lock:
                    self._retiring.pop(key, None)
                    if removed and name not in self._deployments and not self._closed:
                        self._status[name] = VersionStatus(State.END)
                log.info("model %s: previous instance unloaded", name)

        threading.Thread(target=run, name=f"retire:{name}", daemon=True).start()

    def _mark_invalid(self, label: str, reason: str) -> None:
        with self._lock:
            if label in self._deployments:
                self._status[label] = VersionStatus(
                    State.AVAILABLE, "FAILED_PRECONDITION",
                    f"config entry is invalid, serving the previous config: {reason}")
            else:
                self._status[label] = VersionStatus(State.LOADING, "FAILED_PRECONDITION", reason)
