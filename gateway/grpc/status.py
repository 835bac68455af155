"""The one place that maps `ServingError`s to gRPC status codes (OVMS_REFERENCE 1.2)."""
from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable

import grpc

from servables.errors import ServingError

log = logging.getLogger(__name__)

_BY_HTTP = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
            503: grpc.StatusCode.UNAVAILABLE}


def grpc_code(exc: ServingError) -> grpc.StatusCode:
    return _BY_HTTP.get(exc.status_code, grpc.StatusCode.INTERNAL)


def rpc(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap a servicer method: a ServingError aborts the call with the mapped status and its message."""

    @functools.wraps(method)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except ServingError as exc:
            if exc.status_code >= 500 and exc.status_code != 503:
                log.error("%s: %s", type(exc).__name__, exc.message)
            await context.abort(grpc_code(exc), exc.message)

    return wrapper
