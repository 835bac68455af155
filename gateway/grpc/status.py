"""Where gRPC calls end: errors become gRPC status codes (the table in gateway/error_policy.py), and each
model call is counted in the OVMS families (`ovms_requests_success|fail{interface="gRPC"}`,
`ovms_request_time_us`) when metrics are on."""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from servables.errors import ModelNotFound, ServingError

from ..error_policy import grpc_code, is_server_fault

log = logging.getLogger(__name__)

_TIMED = ("ModelInfer", "Predict")


def _model_of(request: Any) -> tuple[str, str] | None:
    """(name, requested version) of a model call; None for server-level calls."""
    if hasattr(request, "model_spec"):
        spec = request.model_spec
        return spec.name, str(spec.version.value) if spec.HasField("version") else ""
    if hasattr(request, "model_name"):
        return request.model_name, request.model_version
    if hasattr(request, "name"):
        return request.name, request.version
    return None


def _served_version(response: Any, requested: str) -> str:
    if hasattr(response, "model_version") and response.model_version:
        return response.model_version
    if hasattr(response, "model_spec") and response.model_spec.HasField("version"):
        return str(response.model_spec.version.value)
    return requested


def rpc(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap a servicer method (the servicer has `api` and `metrics`): a ServingError aborts the call
    with the mapped status and its message; model calls are counted."""

    @functools.wraps(method)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        model = _model_of(request)
        metrics = getattr(self, "metrics", None)
        try:
            response = await method(self, request, context)
        except ServingError as exc:
            if is_server_fault(exc):
                log.error("%s: %s", type(exc).__name__, exc.message)
            if metrics is not None and model is not None and not isinstance(exc, ModelNotFound):
                metrics.requests_fail.labels(self.api, "gRPC", method.__name__, model[0], model[1]).inc()
            await context.abort(grpc_code(exc), exc.message)
        except Exception as exc:  # a bug of ours: INTERNAL, logged once, the channel stays usable
            log.error("unhandled error in gRPC %s", method.__name__, exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL, "Internal server error")
        if metrics is not None and model is not None:
            version = _served_version(response, model[1])
            metrics.requests_success.labels(self.api, "gRPC", method.__name__, model[0], version).inc()
            if method.__name__ in _TIMED:
                metrics.request_time.labels("gRPC", model[0], version).observe((time.perf_counter() - started) * 1e6)
        return response

    return wrapper
