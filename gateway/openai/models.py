"""GET /models and /models/{id} (the id may contain '/', as in HuggingFace names)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from .resolve import manager_of

router = APIRouter()


def model_object(deployment) -> dict[str, Any]:
    servable = deployment.servable
    return {"id": servable.name, "object": "model", "created": deployment.created, "owned_by": "genai-gateway",
            **servable.describe()}


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(d) for d in manager_of(request).deployments()]}


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
    return model_object(manager_of(request).get(model_id))
