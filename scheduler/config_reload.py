"""Runtime configuration changes (OVMS_REFERENCE 1.14, 3.5, 3.6).

`reload()` re-reads the model list (config.json) and applies it: new entries are loaded, removed
ones unloaded, changed ones reloaded (the new servable replaces the old one, so there is no 404
window); then every tensor model's version folders are re-scanned against its version policy: a new
version folder is loaded (and becomes the default when highest), a deleted one is unloaded after its
in-flight requests finish. `poll()` does the same when the config file's timestamp changed, else only
the re-scan; the app calls it every `--file_system_poll_wait_seconds`.
An entry that fails to load is skipped and reported in `status()`; the others proceed.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from servables.base import ModelSpec
from servables.errors import ServingError

from .model_manager import ModelManager

log = logging.getLogger(__name__)


class ConfigReloader:
    def __init__(self, manager: ModelManager, spec_source: Callable[[], list[ModelSpec]] | None = None,
                 config_path: Path | None = None):
        self.manager = manager
        self.spec_source = spec_source
        self.config_path = Path(config_path) if config_path else None
        self._mtime = self._config_mtime()
        self._lock = threading.Lock()
        self.failed: dict[str, str] = {}

    def _config_mtime(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime if self.config_path else None
        except OSError:
            return None

    def reload(self) -> bool:
        """Re-read the config and re-scan versions; True when anything changed. Raises ConfigError."""
        with self._lock:
            changed = False
            if self.spec_source is not None and self.config_path is not None:
                self._mtime = self._config_mtime()
                changed = self._apply(self.spec_source())
            return self._rescan() or changed

    def poll(self) -> bool:
        if self.config_path is not None and self._config_mtime() != self._mtime:
            try:
                return self.reload()
            except Exception as exc:  # an invalid file changes nothing; the next edit is tried again
                log.error("config reload failed: %s", exc)
                return False
        with self._lock:
            return self._rescan()

    def _apply(self, specs: list[ModelSpec]) -> bool:
        current = {d.servable.name: d.servable for d in self.manager.deployments()}
        wanted = {spec.name: spec for spec in specs}
        changed = False
        for name in current.keys() - wanted.keys():
            log.info("config: unloading %s", name)
            self.manager.unload(name)
            changed = True
        for name in list(self.failed):
            if name not in wanted:
                del self.failed[name]
        for name, spec in wanted.items():
            old = current.get(name)
            if old is not None and old.spec == spec:
                continue
            try:
                self.manager.load([spec])
            except (ServingError, OSError, ValueError) as exc:
                log.error("config: %s failed to load: %s", name, exc)
                self.failed[name] = str(exc)
                continue
            self.failed.pop(name, None)
            if old is not None:
                old.close()
            log.info("config: %s %s", "reloaded" if old is not None else "loaded", name)
            changed = True
        return changed

    def _rescan(self) -> bool:
        changed = False
        for deployment in self.manager.deployments():
            if deployment.servable.kind == "tensor":
                changed = sync_versions(deployment.servable, deployment.engine) or changed
        return changed

    def status(self) -> dict[str, Any]:
        """`GET /v1/config`: every servable's versions and their states."""
        result: dict[str, Any] = {}
        for deployment in self.manager.deployments():
            servable = deployment.servable
            if servable.kind == "tensor":
                entries = [(v, "AVAILABLE") for v in servable.versions()] + [(v, "END") for v in servable.retired]
            else:
                entries = [(1, "AVAILABLE")]
            result[servable.name] = {"model_version_status": [
                {"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": "OK"}}
                for v, state in sorted(entries)]}
        for name, message in self.failed.items():
            result[name] = {"model_version_status": [{"version": "1", "state": "LOADING", "status": {
                "error_code": "FAILED_PRECONDITION", "error_message": message}}]}
        return result


def sync_versions(model: Any, engine: Any) -> bool:
    """Load the version folders the policy wants and unload the others; True when anything changed."""
    wanted = model.wanted_versions()
    served = set(model.versions())
    changed = False
    for version in sorted(wanted.keys() - served):
        try:
            servable = model.load_version(version, wanted[version])
        except ServingError as exc:
            log.error("%s: version %d failed to load: %s", model.name, version, exc)
            continue
        engine.attach(servable)
        model.add_version(servable)
        changed = True
    for version in sorted(served - wanted.keys()):
        servable = model.remove_version(version)  # new requests no longer see it
        engine.detach(version)  # drains in-flight requests
        if servable is not None:
            servable.close()
        log.info("%s: version %d unloaded", model.name, version)
        changed = True
    return changed
