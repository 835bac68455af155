"""Health and readiness (KServe v2 paths). The Prometheus endpoint is in metrics.py.

Ready (README "Health and readiness"): 200 once the initial load has finished and, unless the server
runs with `--strict_readiness false`, while no configured model failed to load; otherwise 503, whose
body names the failed models once the initial load has finished.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .openapi_models import Live, Ready
from .routes import Access, declared_router

router = declared_router(Access.PUBLIC)


@router.get("/v2/health/live", responses={200: {"model": Live}})
async def live() -> Response:
    return JSONResponse({"live": True})


@router.get("/v2/health/ready", responses={200: {"model": Ready}, 503: {
    "model": Ready, "description": "Not ready: loading, shutting down, or a configured model failed to load"}})
async def ready(request: Request) -> Response:
    manager = request.app.state.manager
    if manager.is_ready():
        return JSONResponse({"ready": True})
    failed = manager.failed() if manager.ready else []
    return JSONResponse({"ready": False, **({"failed_models": failed} if failed else {})}, status_code=503)
