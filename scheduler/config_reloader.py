"""Re-reads `config.json` when it changes (polling) or on demand, and applies it to the manager.

An invalid file changes nothing; invalid entries are skipped and reported. Each poll also asks the
servables to rescan their own files (`ModelManager.refresh`, e.g. tensor model version folders).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from servables.base import ModelSpec
from servables.config_file import ConfigError, read_config

from .model_manager import ModelManager

log = logging.getLogger(__name__)


@dataclass
class ReloadOutcome:
    changed: bool = False
    file_error: str | None = None  # the file as a whole was rejected: nothing changed
    errors: list[str] = field(default_factory=list)  # entries skipped or failed to load


class ConfigReloader:
    def __init__(self, manager: ModelManager, path: Path,
                 adjust: Callable[[ModelSpec], ModelSpec] = lambda spec: spec) -> None:
        self.manager = manager
        self.path = Path(path)
        self.adjust = adjust  # e.g. apply CLI defaults to every entry
        self._lock = threading.Lock()
        self._seen: bytes | None = None  # digest of the content last read
        self._stat: tuple[int, int] | None = None
        self._started = False  # polls do nothing until the initial load is done

    def _digest(self) -> bytes | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None

    def load_initial(self) -> ReloadOutcome:
        """At start-up: a file error raises `ConfigError`; bad entries are skipped. Polling starts after."""
        with self._lock:
            self._stat, self._seen = self._file_stat(), self._digest()
            contents = read_config(self.path)
            result = self.manager.apply([self.adjust(s) for s in contents.specs], contents.invalid)
            self.manager.ready = True
            self._started = True
            return ReloadOutcome(result.changed, None, result.errors)

    def reload(self) -> ReloadOutcome:
        """Read the file and apply it (added, changed and removed models)."""
        with self._lock:
            self._stat, self._seen = self._file_stat(), self._digest()
            try:
                contents = read_config(self.path)
            except ConfigError as exc:
                log.error("config reload rejected, nothing changed: %s", exc)
                return ReloadOutcome(False, str(exc))
            result = self.manager.apply([self.adjust(s) for s in contents.specs], contents.invalid)
            return ReloadOutcome(result.changed, None, result.errors)

    def poll(self) -> ReloadOutcome | None:
        """Reload when the file's content changed since the last read; otherwise only rescan servables."""
        if not self._started:
            return None
        stat = self._file_stat()
        if stat != self._stat:
            digest = self._digest()
            if digest != self._seen:
                return self.reload()
            self._stat = stat
        self.manager.refresh()
        return None

    def _file_stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size
