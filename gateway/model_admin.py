"""`POST /v3/models/{id}/load` and `/unload`: load or unload a configured model by name (API key protected).

Both reuse the model manager's config-reload path: a load is an added entry (load, then route to
it); an unload is a removed entry (stop routing, let requests in flight finish, then unload) that
stays configured, listed in `/v3/models` with `"state": "unloaded"`.
"""
from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .openai.models import model_object, parked_object
from .openai.resolve import manager_of
from .openapi_models import ModelObject
from .routes import declared_router

router = declared_router()  # management: POST needs the API key


def _model_state(request: Request, model_id: str) -> dict[str, Any]:
    manager = manager_of(request)
    for spec, reason in manager.parked():
        if spec.name == model_id:
            return parked_object(spec, reason)
    return model_object(manager.get(model_id))


@router.post("/v3/models/{model_id:path}/load", responses={200: {"model": ModelObject}})
async def load_model(model_id: str, request: Request) -> JSONResponse:
    """200 with the model object once it is loaded (already loaded: nothing happens); 404 unknown."""
    await asyncio.to_thread(manager_of(request).load_model, model_id)
    return JSONResponse(_model_state(request, model_id))


@router.post("/v3/models/{model_id:path}/unload", responses={200: {"model": ModelObject}})
async def unload_model(model_id: str, request: Request) -> JSONResponse:
    """200 once new requests no longer reach it; requests in flight finish before it unloads."""
    await asyncio.to_thread(manager_of(request).unload_model, model_id)
    return JSONResponse(_model_state(request, model_id))
