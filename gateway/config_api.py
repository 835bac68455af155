"""`POST /v1/config/reload` and `GET /v1/config` (OVMS_REFERENCE 1.14), with `{"error": ...}` bodies."""
from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)

router = APIRouter()


def _reloader(request: Request):
    return getattr(request.app.state, "reloader", None)


@router.post("/v1/config/reload")
async def reload_config(request: Request) -> JSONResponse:
    reloader = _reloader(request)
    if reloader is None:
        return JSONResponse({}, status_code=200)
    if not reloader.manager.ready:
        return JSONResponse({"error": "Server is not ready: the initial model load is still running"},
                            status_code=503)
    try:
        changed = await asyncio.to_thread(reloader.reload)
    except Exception as exc:  # invalid file: nothing was changed
        log.error("config reload failed: %s", exc)
        return JSONResponse({"error": f"Reloading config file failed: {exc}"}, status_code=400)
    return JSONResponse(reloader.status(), status_code=201 if changed else 200)


@router.get("/v1/config")
async def config_status(request: Request) -> JSONResponse:
    reloader = _reloader(request)
    return JSONResponse(reloader.status() if reloader is not None else {})


async def poll_forever(reloader, seconds: float) -> None:
    """Re-scan version folders (and a changed config file) every `seconds`."""
    while True:
        await asyncio.sleep(seconds)
        if not reloader.manager.ready:  # the initial load (or shutdown) owns the models now
            continue
        try:
            await asyncio.to_thread(reloader.poll)
        except Exception:
            log.exception("model repository poll failed")
