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
from ..metrics import child

log = logging.getLogger(__name__)

_TIMED = ("ModelInfer", "Predict")


def _model_of(request: Any) -> tuple[str, str] | None:
    """(name, requested version) of a model call; None for server-level calls."""
    cls = type(request)
    extract = _EXTRACTORS.get(cls)
    if extract is None:
        extract = _EXTRACTORS[cls] = _extractor(cls)
    return extract(request)


def _extractor(cls: type) -> Callable[[Any], tuple[str, str] | None]:
    """How to read the model of one request message type, decided once per type from its fields
    (a failing `hasattr` on a protobuf message costs microseconds on every call)."""
    descriptor = getattr(cls, "DESCRIPTOR", None)
    fields = descriptor.fields_by_name if descriptor is not None else {}
    if "model_spec" in fields:
        return lambda r: (r.model_spec.name, str(r.model_spec.version.value) if r.model_spec.HasField("version")
                          else "")
    if "model_name" in fields:
        return lambda r: (r.model_name, r.model_version)
    if "name" in fields:
        return lambda r: (r.name, r.version)
    return lambda r: None


_EXTRACTORS: dict[type, Callable[[Any], tuple[str, str] | None]] = {}


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
        metrics = self.metrics
        model = _model_of(request) if metrics is not None else None
        try:
            response = await method(self, request, context)
        except ServingError as exc:
            if is_server_fault(exc):
                log.error("%s: %s", type(exc).__name__, exc.message)
            if metrics is not None and model is not None and not isinstance(exc, ModelNotFound):
                child(metrics.requests_fail, self.api, "gRPC", method.__name__, model[0], model[1]).inc()
            await context.abort(grpc_code(exc), exc.message)
        except Exception as exc:  # a bug of ours: INTERNAL, logged once, the channel stays usable
            log.error("unhandled error in gRPC %s", method.__name__, exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL, "Internal server error")
        if metrics is not None and model is not None:
            version = _served_version(response, model[1])
            child(metrics.requests_success, self.api, "gRPC", method.__name__, model[0], version).inc()
            if method.__name__ in _TIMED:
                child(metrics.request_time, "gRPC", model[0], version).observe((time.perf_counter() - started) * 1e6)
        return response

    return wrapper
