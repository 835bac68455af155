"""The OpenAPI schema at /openapi.json, made to describe what the server really answers.

FastAPI documents every validation error as 422 `HTTPValidationError`; ours are 400s in the
route's error family (gateway/errors.py). `install_openapi` post-processes FastAPI's schema:
- drops 422 and its schemas;
- adds the error responses every route can give, in the body of its declared family
  (gateway/routes.py, gateway/error_policy.py): 400 (invalid body or parameters), 401 (protected
  POST routes, when the server has an API key), 404 (unknown model), 413 (body too large), 500,
  and 503 (overloaded or unavailable model) on POST routes.
Success bodies are declared on the routes with `responses=` (models in gateway/openapi_models.py);
`json_or_sse` documents the streaming endpoints (`text/event-stream`: each event, its JSON payload
from gateway/openapi_events.py; docs/openapi.md), `multipart_body` the forms of /images/edits and
the audio uploads.
"""
from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from . import openapi_events
from .error_policy import ErrorFamily
from .openapi_models import AnthropicError, OpenAIError, TensorError
from .routes import Access, declaration_of, served_routes

REF = "#/components/schemas/{model}"
_CONVERTOR = re.compile(r"{(\w+):\w+}")  # "{path:path}" is "{path}" in the schema
_DESCRIPTIONS = {400: "Invalid request: the error names the parameter", 401: "Missing or wrong API key",
                 404: "Unknown model or version", 413: "Request body too large",
                 500: "Internal server error", 503: "Server overloaded (Retry-After) or model unavailable"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def sse_event(*payloads: type[BaseModel], done: bool = True) -> dict[str, Any]:
    """The schema of one Server-Sent Event whose `data` is one of `payloads` as JSON, or `[DONE]` when
    `done` (OpenAPI 3.1: the `text/event-stream` schema describes each event; docs/openapi.md)."""
    payload = _ref(payloads[0]) if len(payloads) == 1 else {"anyOf": [_ref(p) for p in payloads]}
    data: dict[str, Any] = {"type": "string", "contentMediaType": "application/json", "contentSchema": payload}
    if done:
        data = {"anyOf": [data, {"const": "[DONE]", "description": "the end of the stream"}]}
    return {"type": "object", "required": ["data"],
            "properties": {"data": data, "event": {"type": "string", "description": "the payload's `type`, if named"},
                           "id": {"type": "string"}, "retry": {"type": "integer"}}}


def json_or_sse(model: Any, *payloads: type[BaseModel], done: bool = True) -> dict[int | str, dict[str, Any]]:
    """`responses=` of an endpoint that answers JSON, or Server-Sent Events with `stream: true`."""
    names = " or ".join(f"`{p.__name__}`" for p in payloads)
    ending = ", ending with `data: [DONE]`" if done else ""
    return {200: {"model": model, "description": f"JSON; with `stream: true`, Server-Sent Events whose data is "
                  f"{names}{ending}", "content": {"text/event-stream": {"schema": sse_event(*payloads, done=done)}}}}


def multipart_body(model: type[BaseModel], files: dict[str, bool]) -> dict[str, Any]:
    """`openapi_extra` of an endpoint that reads a multipart form itself: `model`'s fields plus files
    (name -> required)."""
    schema = model.model_json_schema(ref_template=REF)
    schema["properties"].update({name: {"type": "string", "format": "binary"} for name in files})
    schema["required"] = [*schema.get("required", []), *(name for name, required in files.items() if required)]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def json_body(model: type[BaseModel], *extra_types: str) -> dict[str, Any]:
    """`openapi_extra` of an endpoint that parses its JSON body itself (any of `extra_types` too)."""
    schema = model.model_json_schema(ref_template=REF)
    defs = schema.pop("$defs", {})
    content = {media: {"schema": schema} for media in ("application/json", *extra_types)}
    return {"requestBody": {"required": True, "content": content}, "x-schema-defs": defs}


ERROR_MODELS: dict[ErrorFamily, type[BaseModel]] = {
    ErrorFamily.OPENAI: OpenAIError, ErrorFamily.TENSOR: TensorError, ErrorFamily.ANTHROPIC: AnthropicError}


def _error_ref(family: ErrorFamily) -> dict[str, Any]:
    return {"$ref": REF.format(model=ERROR_MODELS[family].__name__)}


def _response(status: int, family: ErrorFamily) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[status], "content": {"application/json": {"schema": _error_ref(family)}}}


def _declarations(app: FastAPI) -> dict[tuple[str, str], Any]:
    found = {}
    for path, methods, route in served_routes(app):
        declaration = declaration_of(route)
        for method in methods:
            found[(_CONVERTOR.sub(r"{\1}", path), method.lower())] = declaration
    return found


def _add_errors(operation: dict[str, Any], method: str, declaration: Any) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    family = declaration.errors if declaration is not None else ErrorFamily.OPENAI
    has_input = method == "post" or "requestBody" in operation or bool(operation.get("parameters"))
    wanted = [500]
    if has_input:
        wanted += [400, 404]
    if method == "post":
        wanted += [413, 503]
        if declaration is not None and declaration.access is Access.PROTECTED:
            wanted.append(401)
    for status in sorted(wanted):
        if str(status) not in responses:  # 401 is Anthropic- or else OpenAI-shaped (gateway/routes.py unauthorized)
            shape = ErrorFamily.OPENAI if status == 401 and family is ErrorFamily.TENSOR else family
            responses[str(status)] = _response(status, shape)


def build_schema(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                         description="genai-gateway: OpenAI, Cohere, KServe v2 and TensorFlow Serving APIs")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    declarations = _declarations(app)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            components.update(operation.pop("x-schema-defs", {}))
            _add_errors(operation, method, declarations.get((path, method)))
    for model in (*ERROR_MODELS.values(), *openapi_events.PAYLOADS):  # SSE payloads are $refs (sse_event)
        definition = model.model_json_schema(ref_template=REF)
        components.update(definition.pop("$defs", {}))
        components[model.__name__] = definition
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve `build_schema(app)` at /openapi.json (built once, on first request)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
