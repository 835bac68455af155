"""`GET /v1/config` (status of every servable) and `POST /v1/config/reload`; the config file poller."""
from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from servables.messages import without_paths

from .openapi_models import ConfigStatus, TensorError
from .routes import declared_router

log = logging.getLogger(__name__)

router = declared_router()  # POST /v1/config/reload is a management route: API key


@router.get("/v1/config", responses={200: {"model": ConfigStatus}})
async def config_status(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.manager.status())


@router.post("/v1/config/reload", responses={
    200: {"model": ConfigStatus, "description": "Nothing changed"},
    201: {"model": ConfigStatus, "description": "Models were loaded, reloaded or unloaded"},
    400: {"model": TensorError, "description": "The config file was rejected; nothing changed"}})
async def config_reload(request: Request) -> JSONResponse:
    """201 when something was (re)loaded or unloaded, 200 when nothing changed or there is no config
    file; a rejected file is a 400 with the reason, and nothing changes."""
    manager = request.app.state.manager
    reloader = getattr(request.app.state, "reloader", None)
    if reloader is None:  # no config file: only the servables' own folders can change
        changed = await asyncio.to_thread(manager.refresh)
        return JSONResponse(manager.status(), status_code=201 if changed else 200)
    outcome = await asyncio.to_thread(reloader.reload)
    if outcome.file_error is not None:
        message = without_paths(outcome.file_error)  # no paths of the server's disk (servables/messages.py)
        return JSONResponse({"error": f"Reloading config file failed: {message}"}, status_code=400)
    # entries that were skipped or failed to load show their error in their own status
    return JSONResponse(manager.status(), status_code=201 if outcome.changed else 200)


async def poll_config(manager, reloader, interval: float) -> None:
    """Runs with the app: re-reads the config file (when there is one) and lets servables rescan
    their own files (tensor model version folders) every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        if not manager.ready:  # the initial load (or shutdown) owns the models now
            continue
        try:
            await asyncio.to_thread(reloader.poll if reloader is not None else manager.refresh)
        except Exception:
            log.exception("config poll failed")
