"""The app-level exception handlers: request validation and Starlette's HTTP errors in OpenAI's shape.

Errors raised inside a route are rendered by the route itself (gateway/routes.py) in its API's
family; the handlers below cover what FastAPI raises before or around a route (body validation,
404/405 of unknown paths) and anything a route let through (gateway/error_policy.py).
"""
from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servables.errors import InvalidRequest, ServingError

from .error_policy import ErrorFamily, anthropic_error, http_response, openai_error, unexpected_response
from .routes import error_family_of

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$|^\d+$")
_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "none", "bytes"}


def _field_path(loc: tuple | list) -> list[str]:
    """The request field a pydantic error location names, without `body` and without the union-branch
    tags pydantic inserts (`temperature.int`, `tool_choice.literal[...]`, `NamedToolChoice`)."""
    return [str(p) for p in loc if p != "body" and _FIELD.match(str(p)) and str(p) not in _TYPE_TAGS]


def _describe_validation_error(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request", None
    first = errors[0]
    kind = first.get("type", "")
    loc = _field_path(first.get("loc", ()))
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
        return http_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe_validation_error(exc)  # in the body shape of the route's family
        return http_response(InvalidRequest(message, param), error_family_of(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown paths and methods (no route: OpenAI's shape), and what FastAPI raises inside a route
        (a body that is not UTF-8: "There was an error parsing the body") in the route's family."""
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        family = error_family_of(request)
        body = (anthropic_error(str(exc.detail), kind) if family is ErrorFamily.ANTHROPIC
                else {"error": str(exc.detail)} if family is ErrorFamily.TENSOR
                else openai_error(str(exc.detail), kind))
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(exc, where=f"{request.method} {request.url.path}")
