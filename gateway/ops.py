"""Health and readiness (KServe v2 paths), and the Prometheus endpoint."""
from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

router = APIRouter()


@router.get("/v2/health/live")
async def live() -> Response:
    return JSONResponse({"live": True})


@router.get("/v2/health/ready")
async def ready(request: Request) -> Response:
    is_ready = request.app.state.manager.ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)
