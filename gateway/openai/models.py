"""GET /models and /models/{id} (the id may contain '/', as in HuggingFace names)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.openapi_models import ModelList, ModelObject
from gateway.routes import Access, declared_router
from scheduler.model_manager import Deployment, Parked
from servables.base import ModelSpec
from servables.kinds import kind

from .resolve import manager_of

router = declared_router(Access.PUBLIC)


def model_object(deployment: Deployment) -> dict[str, Any]:
    """OpenAI's model object, plus our `kind`, `endpoints` and what the servable describes."""
    return {"id": deployment.name, "object": "model", "created": deployment.created, "owned_by": "genai-gateway",
            "kind": deployment.kind.label, "endpoints": list(deployment.kind.endpoints),
            "state": "loaded", **deployment.servable.describe()}


def parked_object(spec: ModelSpec, reason: Parked) -> dict[str, Any]:
    """A configured model that is not loaded (on demand, unloaded, idle): `created` 0, `state` "unloaded"."""
    entry = kind(spec.task)
    return {"id": spec.name, "object": "model", "created": 0, "owned_by": "genai-gateway", "kind": entry.label,
            "endpoints": list(entry.endpoints), "state": "unloaded", "unloaded_reason": reason.value}


@router.get("/models", response_model=None, responses={200: {"model": ModelList}})
async def list_models(request: Request) -> dict[str, Any]:
    manager = manager_of(request)
    return {"object": "list", "data": [model_object(d) for d in manager.deployments() + manager.aliases()]
            + [parked_object(spec, reason) for spec, reason in manager.parked()]}


@router.get("/models/{model_id:path}", response_model=None, responses={200: {"model": ModelObject}})
async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
    manager = manager_of(request)
    for spec, reason in manager.parked():
        if spec.name == model_id:
            return parked_object(spec, reason)
    return model_object(manager.get(model_id, use=False))
