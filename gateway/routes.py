"""Routes declare what they are; authentication, error bodies and metrics read the declaration.

Every router of the gateway is made by `declared_router(...)`:
- `access`: `PROTECTED` (the default: generative and management routes) asks for the API key on
  every POST when the server has one; `PUBLIC` is the explicit opt-out (health, listings, and the
  KServe/TFS tensor APIs, which OVMS leaves open too).
- `api`: the request-metric family the route counts in (`V3`: the OVMS generative families;
  `KServe` / `TensorFlowServing`: `ovms_requests_success|fail`; `other`: none).
- `errors`: the body shape of its errors (gateway/error_policy.py). Routes of the Anthropic family
  also take the key from `x-api-key`, the header Anthropic's clients send.
A body the guard refused (too large, too deep: gateway/guard.py) is answered first, in the route's
error family. The route notes its declaration in the ASGI scope state, where gateway/observability.py reads it
to label metrics. tests/test_routes.py fails when a POST route is neither protected nor public.
A POST whose model is configured but not loaded (`ModelNotLoaded`) waits for the model to load
(gateway/residency.py) and runs once more.
"""
from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from servables.errors import ModelNotLoaded, ServingError

from .disconnect import ClientDisconnected
from .error_policy import ErrorFamily, anthropic_error, http_response, openai_error, unexpected_response
from .guard import pending_refusal

log = logging.getLogger(__name__)


class Access(str, Enum):
    PROTECTED = "protected"  # generative / management: POST needs the API key
    PUBLIC = "public"  # explicitly open


class Api(str, Enum):
    V3 = "V3"
    KSERVE = "KServe"
    TFS = "TensorFlowServing"
    OTHER = "other"


@dataclass(frozen=True)
class RouteDeclaration:
    access: Access
    api: Api
    errors: ErrorFamily

    def protects(self, methods: set[str] | None) -> bool:
        return self.access is Access.PROTECTED and "POST" in (methods or set())


@dataclass(frozen=True)
class RouteNote:
    """What the observability middleware learns about the route that answered."""

    declaration: RouteDeclaration
    operation: str  # the route's name: KServe/TFS metric `method` label (ModelInfer, ...)
    path_params: dict[str, Any]


ROUTE_STATE_KEY = "route"


UNAUTHORIZED = "Unauthorized request due to invalid or missing api-key"
KEY_HEADERS = {ErrorFamily.ANTHROPIC: "x-api-key"}  # accepted besides `Authorization: Bearer`


def unauthorized(family: ErrorFamily = ErrorFamily.OPENAI) -> JSONResponse:
    body = (anthropic_error(UNAUTHORIZED, "authentication_error") if family is ErrorFamily.ANTHROPIC
            else openai_error(UNAUTHORIZED, "invalid_request_error", code="invalid_api_key"))
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def authorized(request: Request, key_header: str | None = None) -> bool:
    """True when the server has no API key or the request carries it (constant-time comparison):
    as `Authorization: Bearer <key>`, or in `key_header` when the route's family names one."""
    key: bytes | None = getattr(request.app.state, "api_key", None)
    if not key:
        return True
    if key_header is not None and key_header in request.headers:
        return hmac.compare_digest(request.headers[key_header].strip().encode("latin-1", "replace"), key)
    scheme, _, token = request.headers.get("authorization", "").encode("latin-1", "replace").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key)


def error_family_of(request: Request) -> ErrorFamily:
    """The error family of the route that took the request; when none did (an unknown path or method), that of
    the declared route whose path is the request's or a parent of it (`/v1/messages/batches` answers in
    Anthropic's shape), else OpenAI's."""
    note = request.scope.get("state", {}).get(ROUTE_STATE_KEY)
    if isinstance(note, RouteNote):
        return note.declaration.errors
    path = request.url.path
    for route_path, family in getattr(request.app.state, "route_families", ()):
        if path == route_path or path.startswith(route_path + "/"):
            return family
    return ErrorFamily.OPENAI


def route_families(router: Any, prefix: str = "") -> list[tuple[str, ErrorFamily]]:
    """(full path, error family) of a router's declared routes, for `error_family_of` (app.state.route_families)."""
    return [(prefix + route.path, route.declaration.errors) for route in router.routes
            if isinstance(route, DeclaredRoute)]


class DeclaredRoute(APIRoute):
    """An APIRoute that applies its router's declaration before and around the endpoint."""

    declaration: ClassVar[RouteDeclaration]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declaration = self.declaration
        protected = declaration.protects(self.methods)
        operation = self.name
        key_header = KEY_HEADERS.get(declaration.errors)

        async def declared_handler(request: Request) -> Response:
            request.scope.setdefault("state", {})[ROUTE_STATE_KEY] = RouteNote(
                declaration, operation, request.path_params)
            refusal = pending_refusal(request.scope)  # the guard refused the body (gateway/guard.py)
            if refusal is not None:
                return http_response(refusal, declaration.errors)
            if protected and not authorized(request, key_header):
                return unauthorized(declaration.errors)
            try:
                try:
                    return await handler(request)
                except ModelNotLoaded as exc:  # a parked model: a POST may load it, then runs again
                    autoloader = getattr(request.app.state, "autoloader", None)
                    if autoloader is None or request.method != "POST":
                        raise
                    await autoloader.wait_loaded(exc)  # gateway/residency.py
                    return await handler(request)
            except ServingError as exc:
                return http_response(exc, declaration.errors)
            except ClientDisconnected:  # nobody is listening: no body, no error log
                return Response(status_code=499)
            except (RequestValidationError, HTTPException):
                raise  # the app's handlers render these (gateway/errors.py)
            except Exception as exc:  # a bug of ours: a 500 in the API's shape, the connection stays usable
                return unexpected_response(exc, declaration.errors, f"{request.method} {request.url.path}")

        return declared_handler


def declared_router(access: Access = Access.PROTECTED, api: Api = Api.OTHER,
                    errors: ErrorFamily = ErrorFamily.OPENAI) -> APIRouter:
    """A router whose routes carry this declaration."""
    declaration = RouteDeclaration(access, api, errors)
    route_class = type(f"DeclaredRoute_{access.value}_{api.value}", (DeclaredRoute,), {"declaration": declaration})
    return APIRouter(route_class=route_class)


def declaration_of(route: Any) -> RouteDeclaration | None:
    return getattr(route, "declaration", None)


def served_routes(app: Any) -> list[tuple[str, set[str], Any]]:
    """(path with its prefix, methods, original route) of every route the app serves.

    FastAPI 0.165+ keeps included routers as `_IncludedRouter`s; `iter_route_contexts` flattens them.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        return [(r.path, set(getattr(r, "methods", None) or ()), r) for r in app.routes]
    return [(c.path or "", set(c.methods or ()), c.original_route) for c in iter_route_contexts(app.routes)]
