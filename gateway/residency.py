"""Models loaded on request and unloaded when idle (README "On-demand models").

`wait_loaded` is called by gateway/routes.py when an endpoint found its model parked
(`ModelNotLoaded`): one load per model runs in a worker thread, every request for that model waits
for it up to the autoload timeout, then the route runs the endpoint again. `unload_idle_models`
runs with the app when `--idle_unload_timeout_seconds` is set (OVMS docs/idle_servable_management.md).
"""
from __future__ import annotations

import asyncio
import logging

from scheduler.model_manager import ModelManager
from servables.errors import ModelLoadError, ModelNotLoaded, ServingError

log = logging.getLogger(__name__)


class Autoloader:
    """One load task per model name; requests share it."""

    def __init__(self, manager: ModelManager, timeout_seconds: float) -> None:
        self.manager = manager
        self.timeout_seconds = timeout_seconds
        self._loads: dict[str, asyncio.Future[bool]] = {}

    async def wait_loaded(self, error: ModelNotLoaded) -> None:
        """Return once `error.name` is loaded; raise `error` itself when nobody may load it, a 503 with
        Retry-After when the load takes longer than the timeout, the load's error when it failed."""
        if not error.loadable:
            raise error
        name = error.name
        load = self._loads.get(name)
        if load is None:
            load = asyncio.ensure_future(asyncio.to_thread(self.manager.load_model, name))
            self._loads[name] = load
            load.add_done_callback(lambda done: self._finished(name, done))
        try:
            await asyncio.wait_for(asyncio.shield(load), self.timeout_seconds)
        except TimeoutError:
            raise ModelNotLoaded(name, True, f"Model {name} is loading; retry later") from None
        except ServingError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"Model {name} could not be loaded: {exc}") from exc

    def _finished(self, name: str, done: asyncio.Future[bool]) -> None:
        if self._loads.get(name) is done:
            del self._loads[name]
        if not done.cancelled() and done.exception() is not None:
            log.error("loading %s on request failed: %s", name, done.exception())


async def unload_idle_models(manager: ModelManager, idle_seconds: float) -> None:
    """Runs with the app: unloads models unused for `idle_seconds`; they load again on the next request."""
    interval = min(1.0, idle_seconds / 4)
    while True:
        await asyncio.sleep(interval)
        if not manager.ready:
            continue
        try:
            await asyncio.to_thread(manager.unload_idle, idle_seconds)
        except Exception:
            log.exception("idle unload failed")
