"""create_app: wires routers, middleware, error handlers and the model manager into one FastAPI app."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from scheduler import telemetry
from scheduler.model_manager import ModelManager

from . import config_api, metrics, ops
from .errors import install_error_handlers
from .guard import GuardMiddleware
from .observability import ObservabilityMiddleware
from .openai import chat, completions, models

OPENAI_PREFIXES = ("/v3", "/v1", "/v3/v1")


@dataclass
class HttpSettings:
    """Front-door settings from the CLI (defaults match `genai-gateway serve`)."""

    metric_families: tuple[str, ...] | None = None  # None: metrics off
    api_key: str | None = None
    allowed_origins: list[str] = field(default_factory=lambda: ["*"])
    allowed_methods: list[str] = field(default_factory=lambda: ["*"])
    allowed_headers: list[str] = field(default_factory=lambda: ["*"])
    allow_credentials: bool = False
    max_body_bytes: int = 64 * 2**20
    max_json_depth: int = 100


def create_app(manager: ModelManager, settings: HttpSettings | None = None, reloader=None,
               poll_seconds: float = 0) -> FastAPI:
    settings = settings or HttpSettings()

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
    recorder = metrics.Metrics(settings.metric_families, manager) if settings.metric_families else None
    app.state.metrics = recorder
    if recorder is not None:
        telemetry.install(recorder)
    install_error_handlers(app)
    for prefix in OPENAI_PREFIXES:
        for module in (chat, completions, models):
            app.include_router(module.router, prefix=prefix)
    app.include_router(ops.router)
    app.include_router(config_api.router)
    app.include_router(metrics.router)
    # added last = outermost: CORS answers preflights before the guard asks for an API key
    app.add_middleware(GuardMiddleware, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes,
                       max_json_depth=settings.max_json_depth)
    app.add_middleware(ObservabilityMiddleware, metrics=recorder)
    app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins,
                       allow_methods=settings.allowed_methods, allow_headers=settings.allowed_headers,
                       allow_credentials=settings.allow_credentials)
    return app
