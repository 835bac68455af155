"""Health and readiness (KServe v2 paths). The Prometheus endpoint is in metrics.py."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .openapi_models import Live, Ready
from .routes import Access, declared_router

router = declared_router(Access.PUBLIC)


@router.get("/v2/health/live", responses={200: {"model": Live}})
async def live() -> Response:
    return JSONResponse({"live": True})


@router.get("/v2/health/ready", responses={200: {"model": Ready}, 503: {"model": Ready, "description": "Not ready"}})
async def ready(request: Request) -> Response:
    is_ready = request.app.state.manager.ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)
