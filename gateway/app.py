"""create_app: wires routers, error handlers and the model manager into one FastAPI app."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from scheduler.config_reload import ConfigReloader
from scheduler.model_manager import ModelManager

from . import config_api, kserve, metrics, ops, tfs
from .errors import install_error_handlers
from .grpc.server import start_grpc_server
from .openai import chat, completions, models

OPENAI_PREFIXES = ("/v3", "/v1", "/v3/v1")


def create_app(manager: ModelManager, metrics_enable: bool = False, grpc_port: int = 0,
               grpc_host: str = "127.0.0.1", reloader: ConfigReloader | None = None,
               poll_seconds: float = 0) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        grpc_server = await start_grpc_server(manager, grpc_host, grpc_port) if grpc_port else None
        poller = asyncio.create_task(config_api.poll_forever(reloader, poll_seconds)) \
            if reloader is not None and poll_seconds > 0 else None
        yield
        if poller is not None:
            poller.cancel()
        if grpc_server is not None:
            await grpc_server.stop(grace=2)
        manager.close()

    app = FastAPI(title="genai-gateway", lifespan=lifespan)
    app.state.manager = manager
    app.state.reloader = reloader
    app.state.metrics_registry = metrics.build_registry(manager) if metrics_enable else None
    install_error_handlers(app)
    app.include_router(tfs.router)  # before the OpenAI routers: GET /v1/models/{id} dispatches by kind
    app.include_router(kserve.router)
    app.include_router(config_api.router)
    for prefix in OPENAI_PREFIXES:
        for module in (chat, completions, models):
            app.include_router(module.router, prefix=prefix)
    app.include_router(ops.router)
    app.include_router(metrics.router)
    return app
