"""Find the deployment named by a request's `model` and check it can serve the endpoint."""
from __future__ import annotations

from starlette.requests import Request

from gateway.request_context import note_model
from scheduler.model_manager import Deployment, ModelManager
from servables.errors import InvalidRequest


def manager_of(request: Request) -> ModelManager:
    return request.app.state.manager


def resolve(request: Request, model: str, kind: str, endpoint: str) -> Deployment:
    deployment = manager_of(request).get(model)
    note_model(request.scope, model)
    if deployment.servable.kind != kind:
        raise InvalidRequest(
            f"Model {model} is a {deployment.servable.kind} model and does not serve {endpoint}", "model"
        )
    return deployment
