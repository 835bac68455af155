"""ASGI middleware: request id, one structured access-log line per request, request metrics, and the
last word on exceptions.

The route notes its declaration (gateway/routes.py), the model and token usage in the scope state
(gateway/request_context.py); this middleware reads them when the response ends, so streaming
responses are measured to their end. An exception that escapes everything inside becomes a 500 in
the OpenAI shape here, logged once, so that the keep-alive connection stays usable.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from .error_policy import unexpected_response
from .metrics import child
from .request_context import noted
from .routes import ROUTE_STATE_KEY, Api, RouteNote

access_log = logging.getLogger("genai_gateway.access")


@dataclass
class Route:
    """The metric labels of a request, from the declaration of the route that answered it."""

    api: Api
    method: str = ""  # KServe/TFS operation (ModelInfer, Predict, ...)
    name: str | None = None
    version: str = ""


def route_of(scope: dict[str, Any]) -> Route:
    note: RouteNote | None = noted(scope, ROUTE_STATE_KEY)
    if note is None:
        return Route(Api.OTHER)
    api = note.declaration.api
    if api not in (Api.KSERVE, Api.TFS):
        return Route(api)
    operation = noted(scope, "operation")  # TFS notes it; KServe routes are named after it
    if operation is not None:
        return Route(api, *operation)
    return Route(api, note.operation, note.path_params.get("name"), note.path_params.get("version") or "")


def _header(headers, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case) in an ASGI header list, without building a dict."""
    for key, value in headers:
        if key == name:
            return value
    return None


class ObservabilityMiddleware:
    def __init__(self, app, metrics=None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope.get("headers") or (), b"x-request-id")
        request_id = given.decode("latin-1")[:128] if given else ""
        request_id = request_id or os.urandom(16).hex()  # same 32 hex digits as uuid4().hex, at a third of the cost
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        info: dict[str, Any] = {"status": 500, "stream": False, "chunks": 0, "counted": False, "started": False}

        async def send_wrapper(message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                if message.get("body"):
                    info["chunks"] += 1
            elif kind == "http.response.start":
                info["status"] = message["status"]
                headers = list(message.get("headers") or ())
                headers.append(id_header)
                message["headers"] = headers
                info["stream"] = (_header(headers, b"content-type") or b"").startswith(b"text/event-stream")
                info["started"] = True
                self._graph_started(scope, info)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if info["started"]:  # a stream broke after its headers: nothing to send, log it once
                logging.getLogger("genai_gateway.errors").error(
                    "unhandled error in %s %s after the response started", scope["method"], scope["path"],
                    exc_info=exc)
            else:
                await unexpected_response(exc, where=f"{scope['method']} {scope['path']}")(
                    scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, route_of(scope), info, elapsed)
            self._log(scope, request_id, info, elapsed)

    def _graph_started(self, scope, info: dict) -> None:
        name = noted(scope, "model")
        if self.metrics is None or route_of(scope).api != Api.V3 or name is None:
            return
        info["counted"] = True
        child(self.metrics.current_graphs, name).inc()

    def _record(self, scope, route: Route, info: dict, elapsed: float) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        status = info["status"]
        if route.api == Api.V3:
            name = noted(scope, "model")
            if name is None:
                return
            method = "Stream" if info["stream"] else "Unary"
            labels = ("V3", "REST", method, name)
            if info["counted"]:
                child(metrics.current_graphs, name).dec()
            if status == 503:
                child(metrics.rejected, *labels).inc()
                return
            child(metrics.accepted, *labels).inc()
            if status >= 400:
                child(metrics.graph_error, *labels).inc()
                return
            child(metrics.responses, *labels).inc(max(info["chunks"], 1) if info["stream"] else 1)
            child(metrics.processing_time, name, method).observe(elapsed * 1e6)
        elif route.api in (Api.KSERVE, Api.TFS) and route.name is not None and status != 404:
            version = noted(scope, "model_version") or route.version
            family = metrics.requests_success if status < 400 else metrics.requests_fail
            child(family, route.api.value, "REST", route.method, route.name, version).inc()
            if route.method in ("ModelInfer", "Predict") and status < 400:
                child(metrics.request_time, "REST", route.name, version).observe(elapsed * 1e6)

    @staticmethod
    def _log(scope, request_id: str, info: dict, elapsed: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        record = {
            "request_id": request_id, "method": scope["method"], "path": scope["path"], "status": info["status"],
            "model": noted(scope, "model"), "latency_ms": round(elapsed * 1000, 2),
            "prompt_tokens": noted(scope, "prompt_tokens"), "completion_tokens": noted(scope, "completion_tokens"),
            "stream": info["stream"], "client": f"{client[0]}:{client[1]}" if client else None,
        }
        access_log.info(json.dumps(record, separators=(",", ":")))
