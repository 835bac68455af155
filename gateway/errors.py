"""The one place that maps exceptions to HTTP responses in OpenAI's error shape."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servables.errors import Overloaded, ServingError

log = logging.getLogger(__name__)


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(exc: ServingError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, Overloaded) else None
    return JSONResponse(
        error_body(exc.message, exc.error_type, exc.param, exc.code), status_code=exc.status_code, headers=headers
    )


def _describe_validation_error(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request", None
    first = errors[0]
    kind = first.get("type", "")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    if kind == "json_invalid":
        return f"Invalid JSON body: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    if kind == "missing" and not loc:
        return "Request body is missing", None
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {field}", field
    if kind == "missing":
        return f"Missing required parameter: {field}", field
    if kind == "model_attributes_type" or (kind.endswith("_type") and not loc):
        return "Request body must be a JSON object", None
    return f"Invalid value for {field}: {first.get('msg')}", field


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def _serving_error(_: Request, exc: ServingError) -> JSONResponse:
        if exc.status_code >= 500 and not isinstance(exc, Overloaded):
            log.error("%s: %s", type(exc).__name__, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe_validation_error(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("Internal server error", "internal_error"), status_code=500)
