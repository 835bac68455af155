"""Error bodies of the tensor APIs (KServe v2 and TFS REST): `{"error": "<message>"}`, not OpenAI's shape.

Routers of those APIs use `TensorAPIRoute`, which turns a `ServingError` raised by a handler into that
body with the status of the error class (404 unknown model/version, 400 invalid input, 503 not ready).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from servables.errors import Overloaded, ServingError

log = logging.getLogger(__name__)


def tensor_error_response(exc: ServingError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, Overloaded) else None
    if exc.status_code >= 500 and not isinstance(exc, Overloaded):
        log.error("%s: %s", type(exc).__name__, exc.message)
    return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)


class TensorAPIRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ServingError as exc:
                return tensor_error_response(exc)

        return route_handler
