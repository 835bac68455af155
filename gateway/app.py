"""create_app: wires routers, middleware, error handlers and the model manager into one FastAPI app."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from scheduler import telemetry
from scheduler.model_manager import ModelManager

from . import cohere, config_api, kserve, metrics, model_admin, ops, playground, residency, tfs
from .anthropic import messages
from .disconnect import ChunkYieldMiddleware
from .errors import install_error_handlers
from .guard import GuardMiddleware
from .media import MediaPolicy
from .observability import ObservabilityMiddleware
from .openai import audio, chat, completions, embeddings, images, models, responses, tokenize
from .openapi import install_openapi
from .routes import route_families

OPENAI_PREFIXES = ("/v3", "/v1", "/v3/v1")


@dataclass
class HttpSettings:
    """Front-door settings from the CLI (defaults match `genai-gateway serve`)."""

    metric_families: tuple[str, ...] | None = None  # None: metrics off
    vllm_metrics: bool = True  # vLLM's names too (gateway/vllm_metrics.py), when metrics are on
    api_key: str | None = None
    allowed_origins: list[str] = field(default_factory=lambda: ["*"])
    allowed_methods: list[str] = field(default_factory=lambda: ["*"])
    allowed_headers: list[str] = field(default_factory=lambda: ["*"])
    allow_credentials: bool = False
    max_body_bytes: int = 64 * 2**20
    max_json_depth: int = 100
    media: MediaPolicy = field(default_factory=MediaPolicy)  # image content parts (gateway/media.py)
    ui: bool = True  # the web playground at / and /ui (gateway/playground.py)


def create_app(manager: ModelManager, settings: HttpSettings | None = None, grpc_port: int = 0,
               grpc_host: str = "127.0.0.1", reloader=None, poll_seconds: float = 0,
               autoload_timeout_seconds: float = 60.0, idle_unload_seconds: float = 0) -> FastAPI:
    """`grpc_port` > 0 also serves KServe v2 / TFS gRPC in this event loop; `reloader` backs
    /v1/config/reload and, with `poll_seconds` > 0, re-reads the config file and rescans model folders.
    A request for a parked model waits up to `autoload_timeout_seconds` for its load;
    `idle_unload_seconds` > 0 unloads models unused that long (gateway/residency.py)."""
    settings = settings or HttpSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        grpc_server = None
        if grpc_port:  # grpcio and the protobuf stubs are imported only when gRPC is served
            from .grpc.server import start_grpc_server
            grpc_server = await start_grpc_server(manager, grpc_host, grpc_port, recorder)
        poller = (asyncio.create_task(config_api.poll_config(manager, reloader, poll_seconds))
                  if poll_seconds > 0 else None)
        idle = (asyncio.create_task(residency.unload_idle_models(manager, idle_unload_seconds))
                if idle_unload_seconds > 0 else None)
        yield
        for task in (poller, idle):
            if task is not None:
                task.cancel()
        if grpc_server is not None:
            await grpc_server.stop(grace=2)
        manager.close()

    app = FastAPI(title="genai-gateway", lifespan=lifespan)
    app.state.manager = manager
    app.state.reloader = reloader
    app.state.max_json_depth = settings.max_json_depth  # gateway/guard.py load_json (KServe, TFS)
    app.state.media_policy = settings.media
    app.state.autoloader = residency.Autoloader(manager, autoload_timeout_seconds)  # gateway/routes.py uses it
    app.state.api_key = settings.api_key.encode() if settings.api_key else None  # gateway/routes.py checks it
    recorder = (metrics.Metrics(settings.metric_families, manager, settings.vllm_metrics)
                if settings.metric_families else None)
    app.state.metrics = recorder
    if recorder is not None:
        telemetry.install(recorder)
    install_error_handlers(app)
    install_openapi(app)  # 400s instead of 422s, error bodies per route family (gateway/openapi.py)
    app.include_router(tfs.router)  # before the OpenAI routers: GET /v1/models/{id} dispatches by kind
    app.include_router(kserve.router)
    app.include_router(config_api.router)
    app.include_router(model_admin.router)  # before the OpenAI routers: POST /v3/models/{id}/load
    app.state.route_families = []  # unknown paths below a declared route answer in its error shape
    for prefix in OPENAI_PREFIXES:
        for module in (audio, chat, completions, embeddings, images, models, responses, tokenize, messages):
            app.include_router(module.router, prefix=prefix)
            app.state.route_families += route_families(module.router, prefix)
    for prefix in cohere.PREFIXES:
        app.include_router(cohere.router, prefix=prefix)
    app.include_router(ops.router)
    if settings.ui:
        app.include_router(playground.router)
    app.include_router(metrics.router)
    # added last = outermost: CORS answers preflights before anything else
    app.add_middleware(ChunkYieldMiddleware)  # innermost: a stream stops writing once its client is gone
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    app.add_middleware(ObservabilityMiddleware, metrics=recorder)
    app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins,
                       allow_methods=settings.allowed_methods, allow_headers=settings.allowed_headers,
                       allow_credentials=settings.allow_credentials)
    return app
