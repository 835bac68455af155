"""The one error policy: our error types -> HTTP status and gRPC code, and one formatter per API family.

`POLICY` is the table (most specific class first wins, by the exception's MRO). The formatters
render an error into the family's body: OpenAI `{"error": {"message", "type", "param", "code"}}`
(OpenAI, Cohere and the management routes), Anthropic `{"type": "error", "error": {"type", "message"}}`
(the Messages API, Anthropic's "Errors" documentation), KServe/TFS REST `{"error": "<message>"}`, and
gRPC status codes. A route says which family it speaks where it is declared (gateway/routes.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

from starlette.responses import JSONResponse

from servables.errors import (
    Cancelled,
    InferenceError,
    InvalidRequest,
    ModelLoadError,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    PayloadTooLarge,
    PullError,
    ServingError,
)
from servables.messages import without_paths

log = logging.getLogger("genai_gateway.errors")


class ErrorFamily(str, Enum):
    OPENAI = "openai"  # OpenAI, Cohere and management routes
    TENSOR = "tensor"  # KServe v2 and TFS REST
    ANTHROPIC = "anthropic"  # the Anthropic Messages API


@dataclass(frozen=True)
class Policy:
    http: int
    grpc: str  # name of a grpc.StatusCode (grpc is imported only when gRPC serves)
    openai_type: str  # `error.type` of the OpenAI body
    anthropic_type: str  # `error.type` of the Anthropic body


POLICY: dict[type[ServingError], Policy] = {
    PayloadTooLarge: Policy(413, "RESOURCE_EXHAUSTED", "invalid_request_error", "request_too_large"),
    InvalidRequest: Policy(400, "INVALID_ARGUMENT", "invalid_request_error", "invalid_request_error"),
    ModelNotFound: Policy(404, "NOT_FOUND", "not_found_error", "not_found_error"),  # VersionNotFound too
    Overloaded: Policy(503, "UNAVAILABLE", "server_overloaded", "overloaded_error"),
    ModelUnavailable: Policy(503, "UNAVAILABLE", "model_unavailable", "overloaded_error"),
    Cancelled: Policy(499, "CANCELLED", "cancelled", "api_error"),
    ModelLoadError: Policy(500, "INTERNAL", "model_load_error", "api_error"),
    PullError: Policy(500, "INTERNAL", "pull_error", "api_error"),
    InferenceError: Policy(500, "INTERNAL", "internal_error", "api_error"),
    ServingError: Policy(500, "INTERNAL", "internal_error", "api_error"),
}
INTERNAL = POLICY[ServingError]


def policy_of(exc: BaseException) -> Policy:
    for cls in type(exc).__mro__:
        found = POLICY.get(cls)
        if found is not None:
            return found
    return INTERNAL


def is_server_fault(exc: ServingError) -> bool:
    """True when the error is ours (logged), not the client's or a busy server's."""
    return policy_of(exc).http >= 500 and not isinstance(exc, (Overloaded, ModelUnavailable))


# --- formatters ------------------------------------------------------------------------------

def openai_error(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The OpenAI error body; every OpenAI-shaped error in the gateway is built here."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def client_message(exc: ServingError) -> str:
    """The message a client sees: a model load error without the paths of the server's disk
    (servables/messages.py; the server log keeps them)."""
    return without_paths(exc.message) if isinstance(exc, ModelLoadError) else exc.message


def openai_body(exc: ServingError) -> dict[str, Any]:
    return openai_error(client_message(exc), policy_of(exc).openai_type, exc.param, exc.code)


def anthropic_error(message: str, error_type: str) -> dict[str, Any]:
    """The Anthropic error body; every Anthropic-shaped error in the gateway is built here."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def anthropic_body(exc: ServingError) -> dict[str, Any]:
    return anthropic_error(client_message(exc), policy_of(exc).anthropic_type)


def tensor_body(exc: ServingError) -> dict[str, Any]:
    return {"error": client_message(exc)}


def _headers(exc: ServingError) -> dict[str, str] | None:
    retry_after = getattr(exc, "retry_after_seconds", None)  # Overloaded, ModelNotLoaded
    return {"Retry-After": str(retry_after)} if retry_after is not None else None


BODIES = {ErrorFamily.OPENAI: openai_body, ErrorFamily.TENSOR: tensor_body, ErrorFamily.ANTHROPIC: anthropic_body}


def http_response(exc: ServingError, family: ErrorFamily = ErrorFamily.OPENAI) -> JSONResponse:
    """The response for a ServingError in the family's shape; server faults are logged here, once."""
    if is_server_fault(exc):
        log.error("%s: %s", type(exc).__name__, exc.message)
    body = BODIES[family](exc)
    return JSONResponse(body, status_code=policy_of(exc).http, headers=_headers(exc))


def unexpected_response(exc: BaseException, family: ErrorFamily = ErrorFamily.OPENAI,
                        where: str = "") -> JSONResponse:
    """A 500 for an exception nobody mapped: logged once with its traceback, no details to the client."""
    log.error("unhandled error%s", f" in {where}" if where else "", exc_info=exc)
    if family is ErrorFamily.TENSOR:
        return JSONResponse({"error": "Internal server error"}, status_code=500)
    if family is ErrorFamily.ANTHROPIC:
        return JSONResponse(anthropic_error("Internal server error", "api_error"), status_code=500)
    return JSONResponse(openai_error("Internal server error", "internal_error"), status_code=500)


def grpc_code(exc: BaseException) -> Any:
    """The grpc.StatusCode of an error (imports grpc: call only from the gRPC services)."""
    import grpc

    return getattr(grpc.StatusCode, policy_of(exc).grpc)
