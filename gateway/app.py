"""create_app: wires routers, error handlers and the model manager into one FastAPI app."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from scheduler.model_manager import ModelManager

from . import metrics, ops
from .errors import install_error_handlers
from .openai import chat, completions, images, models

OPENAI_PREFIXES = ("/v3", "/v1", "/v3/v1")


def create_app(manager: ModelManager, metrics_enable: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        manager.close()

    app = FastAPI(title="genai-gateway", lifespan=lifespan)
    app.state.manager = manager
    app.state.metrics_registry = metrics.build_registry(manager) if metrics_enable else None
    install_error_handlers(app)
    for prefix in OPENAI_PREFIXES:
        for module in (chat, completions, models, images):
            app.include_router(module.router, prefix=prefix)
    app.include_router(ops.router)
    app.include_router(metrics.router)
    return app
