"""create_app: wires routers, error handlers and the model manager into one FastAPI app."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from scheduler.model_manager import ModelManager

from . import kserve, metrics, ops, tfs
from .errors import install_error_handlers
from .grpc.server import start_grpc_server
from .openai import chat, completions, models

OPENAI_PREFIXES = ("/v3", "/v1", "/v3/v1")


def create_app(manager: ModelManager, metrics_enable: bool = False, grpc_port: int = 0,
               grpc_host: str = "127.0.0.1") -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        grpc_server = await start_grpc_server(manager, grpc_host, grpc_port) if grpc_port else None
        yield
        if grpc_server is not None:
            await grpc_server.stop(grace=2)
        manager.close()

    app = FastAPI(title="genai-gateway", lifespan=lifespan)
    app.state.manager = manager
    app.state.metrics_registry = metrics.build_registry(manager) if metrics_enable else None
    install_error_handlers(app)
    app.include_router(tfs.router)  # before the OpenAI routers: GET /v1/models/{id} dispatches by kind
    app.include_router(kserve.router)
    for prefix in OPENAI_PREFIXES:
        for module in (chat, completions, models):
            app.include_router(module.router, prefix=prefix)
    app.include_router(ops.router)
    app.include_router(metrics.router)
    return app
