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

Residency: a configured model may be *parked* (configured, not loaded): an entry with
`"load": "on_demand"`, one unloaded by `unload_model` (admin endpoint) or by `unload_idle`. `get()`
of a parked model raises `ModelNotLoaded`; `load_model` loads it. Unloading drains as a removal does.
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
from servables.errors import ModelNotFound, ModelNotLoaded
from servables.kinds import TENSOR_ENDPOINT, Kind, create_servable, kind
from servables.messages import without_paths

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


class Parked(str, Enum):
    """Why a configured model is not loaded."""

    ON_DEMAND = "on_demand"  # its entry says "load": "on_demand" and nobody asked for it yet
    UNLOADED = "unloaded"  # POST /v3/models/{name}/unload
    IDLE = "idle"  # unused for the idle timeout


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
        self._parked: dict[str, tuple[ModelSpec, Parked]] = {}  # configured, not loaded
        self._last_used: dict[str, float] = {}  # monotonic time of the last get() per loaded name
        self.autoload = False  # --models_autoload: a request may load any parked model
        self.strict_readiness = True  # --strict_readiness: ready only while no configured model failed

    # --- lookups (any thread) -------------------------------------------------------------

    def failed(self) -> list[str]:
        """Configured models (or config entries) whose load failed and that serve nothing: their status
        is LOADING with an error. A model still serving its previous version after a failed reload is
        not among them, nor is a parked one (it loads on request or by the admin endpoint)."""
        with self._lock:
            return [name for name, status in self._status.items()
                    if status.error_code != "OK" and status.state is State.LOADING
                    and name not in self._deployments and name not in self._parked]

    def is_ready(self) -> bool:
        """Server readiness (KServe v2 `/v2/health/ready`, gRPC ServerReady): the initial load has
        finished and, with `strict_readiness`, every configured model is available (none `failed()`)."""
        return self.ready and not (self.strict_readiness and self.failed())

    def get(self, name: str, use: bool = True) -> Deployment[Any, Any]:
        """The deployment serving `name`; with `use` the model counts as used now (idle unload).
        Status reads (readiness, model metadata) pass use=False."""
        with self._lock:
            deployment = self._deployments.get(name)
            if deployment is not None:  # the request path: no walk over the other deployments
                if use:
                    self._last_used[name] = time.monotonic()
                return deployment
            deployment = self._alias(name)  # an LLM's `<base>:<adapter>` shares its base's engine
            if deployment is not None:
                if use:
                    base = next((n for n, d in self._deployments.items() if d.engine is deployment.engine), name)
                    self._last_used[base] = time.monotonic()
                return deployment
            parked = self._parked.get(name)
        if parked is None:
            raise ModelNotFound(name)
        raise ModelNotLoaded(name, self._loadable(parked[1]))

    def _loadable(self, reason: Parked) -> bool:
        """A request may load a parked model: any with --models_autoload; idle-unloaded ones always
        (idle unload must not change what the server answers, as OVMS docs/idle_servable_management.md)."""
        return self.autoload or reason is Parked.IDLE

    def parked(self) -> list[tuple[ModelSpec, Parked]]:
        """Configured models that are not loaded now, for `/v3/models`."""
        with self._lock:
            return list(self._parked.values())

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
            parked = dict(self._parked)
            retiring = {d.servable.name for d in self._retiring.values()}
        out: dict[str, Any] = {}
        for name, status in statuses.items():
            own = getattr(deployments[name].servable, "version_status", None) if name in deployments else None
            versions = own() if own is not None else [status.as_ovms()]
            if name in parked and name not in deployments and status.error_code == "OK":
                versions = [self._parked_status(parked[name][1], name in retiring).as_ovms()]
            if name in deployments or name in parked:
                for version in versions:
                    version["loaded"] = name in deployments
            out[name] = {"model_version_status": versions}
        return out

    def _parked_status(self, reason: Parked, draining: bool) -> VersionStatus:
        """A parked model that a request wakes is AVAILABLE (as OVMS shows idle-unloaded servables);
        one that needs an explicit load is END; UNLOADING while its last instance drains."""
        if draining:
            return VersionStatus(State.UNLOADING)
        if self._loadable(reason):
            return VersionStatus(State.AVAILABLE, error_message=f"OK (not loaded: {reason.value})")
        return VersionStatus(State.END, error_message=f"OK (not loaded: {reason.value})")

    # --- changes (one at a time; slow: call from a worker thread, not the event loop) ------

    def load(self, specs: Iterable[ModelSpec], strict: bool = True) -> ApplyResult:
        """Initial load. `strict`: the first failure raises (single-model mode); otherwise it is
        recorded in the status and the other models load."""
        result = ApplyResult()
        with self._apply_lock:
            for spec in specs:
                if spec.load == Parked.ON_DEMAND.value:
                    self._park(spec, Parked.ON_DEMAND)
                    continue
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
            for name in [n for n in self._parked if n not in wanted and n not in invalid]:
                with self._lock:
                    del self._parked[name]
                    self._status[name] = VersionStatus(State.END)
                touched.add(name)
                result.changed = True
            for name, spec in wanted.items():
                if self._specs.get(name) == spec:
                    continue
                if name in self._parked or (spec.load == Parked.ON_DEMAND.value and name not in self._specs):
                    # not loaded: it stays so, with its new spec (loaded on request or by the admin endpoint)
                    why = self._parked[name][1] if name in self._parked else Parked.ON_DEMAND
                    if self._parked.get(name) != (spec, why):
                        self._park(spec, why)
                        result.changed = True
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

    # --- residency: load and unload configured models by name ------------------------------

    def load_model(self, name: str) -> bool:
        """Load a parked model (same path as a config reload adding it). False when it was loaded
        already; raises ModelNotFound for a name that is not configured, and the load's error."""
        with self._apply_lock:
            if name in self._deployments:
                return False
            with self._lock:
                parked = self._parked.get(name)
            if parked is None:
                raise ModelNotFound(name)
            self._deploy(parked[0])  # on failure it stays parked, its status shows the error
            with self._lock:
                self._parked.pop(name, None)
            return True

    def unload_model(self, name: str, reason: Parked = Parked.UNLOADED) -> bool:
        """Stop routing to a loaded model, let its requests finish, then unload it (as a removal from
        the config file does); it stays configured. False when it was not loaded."""
        with self._apply_lock:
            spec = self._specs.get(name)
            if spec is None or name not in self._deployments:
                if name in self._parked:
                    return False
                raise ModelNotFound(name)
            self._undeploy(name)
            self._park(spec, reason)
            log.info("model %s unloaded (%s)", name, reason.value)
            return True

    def unload_idle(self, idle_seconds: float) -> list[str]:
        """Unload every model unused for `idle_seconds` (status and metrics reads do not count as use;
        a model with requests running or queued is in use)."""
        now = time.monotonic()
        unloaded = []
        for deployment in self.deployments():
            name = deployment.name
            stats = deployment.engine.stats()
            if getattr(stats, "running", 0) or getattr(stats, "waiting", 0):
                with self._lock:
                    self._last_used[name] = now
                continue
            with self._lock:
                last = self._last_used.get(name, now)
            if now - last >= idle_seconds and self.unload_model(name, Parked.IDLE):
                unloaded.append(name)
        return unloaded

    def _park(self, spec: ModelSpec, reason: Parked) -> None:
        with self._lock:
            self._parked[spec.name] = (spec, reason)
            self._last_used.pop(spec.name, None)
            if spec.name not in self._status or reason is Parked.ON_DEMAND:
                self._status[spec.name] = VersionStatus(State.END)

    # --- internals -------------------------------------------------------------------------

    def _set_status(self, name: str, state: State, error: str | None = None) -> None:
        with self._lock:
            self._status[name] = (VersionStatus(state) if error is None  # public (GET /v1/config): no paths
                                  else VersionStatus(state, "FAILED_PRECONDITION", without_paths(error)))

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
            self._last_used[name] = time.monotonic()
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
                    f"config entry is invalid, serving the previous config: {without_paths(reason)}")
            else:
                self._status[label] = VersionStatus(State.LOADING, "FAILED_PRECONDITION", without_paths(reason))
