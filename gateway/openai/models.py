"""GET /models and /models/{id} (the id may contain '/', as in HuggingFace names)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.openapi_models import ModelList, ModelObject
from gateway.routes import Access, declared_router
from scheduler.model_manager import Deployment

from .resolve import manager_of

router = declared_router(Access.PUBLIC)


def model_object(deployment: Deployment) -> dict[str, Any]:
    """OpenAI's model object, plus our `kind`, `endpoints` and what the servable describes."""
    return {"id": deployment.name, "object": "model", "created": deployment.created, "owned_by": "genai-gateway",
            "kind": deployment.kind.label, "endpoints": list(deployment.kind.endpoints),
            **deployment.servable.describe()}


@router.get("/models", response_model=None, responses={200: {"model": ModelList}})
async def list_models(request: Request) -> dict[str, Any]:
    manager = manager_of(request)
    return {"object": "list", "data": [model_object(d) for d in manager.deployments() + manager.aliases()]}


@router.get("/models/{model_id:path}", response_model=None, responses={200: {"model": ModelObject}})
async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
    return model_object(manager_of(request).get(model_id))
