"""create_app: wires routers, error handlers and the model manager into one FastAPI app."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from scheduler.model_manager import ModelManager

from . import config_api, metrics, ops
from .errors import install_error_handlers
from .openai import chat, completions, models

OPENAI_PREFIXES = ("/v3", "/v1", "/v3/v1")


def create_app(manager: ModelManager, metrics_enable: bool = False, reloader=None,
               poll_seconds: float = 0) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        poller = (asyncio.create_task(config_api.poll_config(reloader, poll_seconds))
                  if reloader is not None and poll_seconds > 0 else None)
        yield
        if poller is not None:
            poller.cancel()
        manager.close()

    app = FastAPI(title="genai-gateway", lifespan=lifespan)
    app.state.manager = manager
    app.state.reloader = reloader
    app.state.metrics_registry = metrics.build_registry(manager) if metrics_enable else None
    install_error_handlers(app)
    for prefix in OPENAI_PREFIXES:
        for module in (chat, completions, models):
            app.include_router(module.router, prefix=prefix)
    app.include_router(ops.router)
    app.include_router(config_api.router)
    app.include_router(metrics.router)
    return app
