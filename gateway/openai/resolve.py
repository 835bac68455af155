"""Find the deployment named by a request's `model` and check that its kind answers the endpoint."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.request_context import note_model
from scheduler.model_manager import Deployment, ModelManager
from servables.errors import InvalidRequest


def manager_of(request: Request) -> ModelManager:
    return request.app.state.manager


def resolve(request: Request, model: str, endpoint: str) -> Deployment[Any, Any]:
    """The deployment of `model` (404 when unknown); 400 when its kind does not serve `endpoint`
    (the `endpoints` of its entry in servables/kinds.py)."""
    deployment = manager_of(request).get(model)
    note_model(request.scope, model)
    if endpoint not in deployment.kind.endpoints:
        raise InvalidRequest(
            f"Model {model} is a {deployment.kind.label} model and does not serve {endpoint}", "model"
        )
    return deployment
