"""KServe v2 REST: server/model metadata and readiness, and `/infer` with JSON or binary tensor data.

Health (`/v2/health/live|ready`) lives in ops.py. Errors use KServe's `{"error": "..."}` body.
Binary extension: the JSON header's length is in `Inference-Header-Content-Length`; raw input
tensors follow it in input order (`parameters.binary_data_size`); outputs are returned raw when the
request asks for `binary_data_output` (or per output `binary_data`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from servables.errors import InvalidRequest, ModelNotFound
from servables.tensor import datatype_of_array

from . import fast_json
from . import tensor_codec as codec
from . import tensor_service as service
from .error_policy import ErrorFamily
from .guard import load_json
from .openapi import json_body
from .openapi_models import InferRequest, InferResponse, ModelMetadata, ModelReady, ServerMetadata
from .request_context import note_model_version
from .routes import Access, Api, declared_router

router = declared_router(Access.PUBLIC, Api.KSERVE, ErrorFamily.TENSOR)  # open, as in OVMS
HEADER_LENGTH = "Inference-Header-Content-Length"


def _manager(request: Request):
    return request.app.state.manager


# Routes with and without `/versions/{version}` are separate endpoints: one function for both would
# document `version` as a query parameter of the short path (it is a path segment only).

@router.get("/v2", name="ServerMetadata", response_model=None, responses={200: {"model": ServerMetadata}})
@router.get("/v2/", name="ServerMetadata", include_in_schema=False)
async def server_metadata() -> dict[str, Any]:
    return {"name": service.SERVER_NAME, "version": service.server_version(), "extensions": service.EXTENSIONS}


@router.get("/v2/models/{name}/ready", name="ModelReady", responses={200: {"model": ModelReady}})
async def model_ready(name: str, request: Request) -> Response:
    return _model_ready(request, name, None)


@router.get("/v2/models/{name}/versions/{version}/ready", name="ModelReady", responses={200: {"model": ModelReady}})
async def model_version_ready(name: str, version: str, request: Request) -> Response:
    return _model_ready(request, name, version)


def _model_ready(request: Request, name: str, version: str | None) -> Response:
    manager = _manager(request)
    deployment = manager.get(name, use=False)  # 503 when not loaded; a probe does not keep a model loaded
    if not service.serves_tensors(deployment):
        if version is not None:
            raise ModelNotFound(name)
        return JSONResponse({"name": name, "ready": True})
    resolved = service.resolve(manager, name, version)
    note_model_version(request.scope, str(resolved.servable.version))
    return JSONResponse({"name": name, "version": str(resolved.servable.version), "ready": True})


@router.get("/v2/models/{name}", name="ModelMetadata", response_model=None, responses={200: {"model": ModelMetadata}})
@router.get("/v2/models/{name}/", name="ModelMetadata", include_in_schema=False)
async def model_metadata(name: str, request: Request) -> dict[str, Any]:
    return _model_metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", name="ModelMetadata", response_model=None,
            responses={200: {"model": ModelMetadata}})
@router.get("/v2/models/{name}/versions/{version}/", name="ModelMetadata", include_in_schema=False)
async def model_version_metadata(name: str, version: str, request: Request) -> dict[str, Any]:
    return _model_metadata(request, name, version)


def _model_metadata(request: Request, name: str, version: str | None) -> dict[str, Any]:
    manager = _manager(request)
    group = manager.get(name)
    if not service.serves_tensors(group):
        raise ModelNotFound(name)
    deployment = service.resolve(manager, name, version)
    note_model_version(request.scope, str(deployment.servable.version))
    return service.kserve_metadata(deployment, group.servable.versions())


_INFER_DOCS: dict[str, Any] = {
    "responses": {200: {"model": InferResponse, "description": "JSON; with binary outputs, "
                        f"`application/octet-stream`: the JSON part ({HEADER_LENGTH} bytes), then raw tensors",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
    "openapi_extra": json_body(InferRequest, "application/octet-stream"),
}


@router.post("/v2/models/{name}/infer", name="ModelInfer", **_INFER_DOCS)
async def model_infer(name: str, request: Request) -> Response:
    return await _infer(request, name, None)


@router.post("/v2/models/{name}/versions/{version}/infer", name="ModelInfer", **_INFER_DOCS)
async def model_version_infer(name: str, version: str, request: Request) -> Response:
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    deployment = service.resolve(_manager(request), name, version)
    note_model_version(request.scope, str(deployment.servable.version))
    body = await request.body()
    header, tail = _split_body(request, body)
    inputs = _decode_inputs(header, tail)
    requested, binary_outputs = _requested_outputs(header)
    service.check_requested_outputs(deployment, list(requested))
    outputs = await service.infer(deployment, inputs)
    return _encode_response(header, deployment, outputs, requested, binary_outputs)


def _split_body(request: Request, body: bytes) -> tuple[dict[str, Any], bytes]:
    length_text = request.headers.get(HEADER_LENGTH)
    if length_text is not None:
        # ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses
        if not (length_text.isascii() and length_text.isdigit()) or int(length_text) > len(body):
            raise InvalidRequest(f"Invalid {HEADER_LENGTH}: {length_text!r}")
        json_part, tail = body[: int(length_text)], body[int(length_text):]
    else:
        json_part, tail = body, b""
    header = load_json(json_part, request.app.state.max_json_depth)
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list) or not header["inputs"]:
        raise InvalidRequest("The request must be a JSON object with a non-empty 'inputs' array", "inputs")
    return header, tail


def _decode_inputs(header: dict[str, Any], tail: bytes) -> dict[str, Any]:
    specs = header["inputs"]
    inputs: dict[str, Any] = {}
    offset = 0
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidRequest("Each input must be an object with a string 'name'", "inputs")
        name = spec["name"]
        if name in inputs:
            raise InvalidRequest(f"Input {name!r} is given twice", name)
        datatype = spec.get("datatype")
        if not isinstance(datatype, str):
            raise InvalidRequest(f"Input {name!r}: missing 'datatype'", name)
        shape = codec.check_shape(name, spec.get("shape"))
        parameters = spec.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None and "data" not in spec and datatype == "BYTES" and len(specs) == 1 and tail:
            size = len(tail)
        if size is not None:
            if "data" in spec:
                raise InvalidRequest(f"Input {name!r} has both 'data' and binary data", name)
            if not isinstance(size, int) or size < 0 or offset + size > len(tail):
                raise InvalidRequest(f"Input {name!r}: binary_data_size {size!r} exceeds the binary data", name)
            inputs[name] = codec.array_from_raw(name, datatype, shape, tail[offset: offset + size])
            offset += size
        elif "data" in spec:
            inputs[name] = codec.array_from_list(name, datatype, shape, spec["data"])
        else:
            raise InvalidRequest(f"Input {name!r} has no 'data' and no binary_data_size", name)
    if offset != len(tail):
        raise InvalidRequest(f"{len(tail) - offset} bytes of binary data belong to no input")
    return inputs


def _flag(parameters: Any, key: str) -> bool:
    return isinstance(parameters, dict) and parameters.get(key) is True


def _requested_outputs(header: dict[str, Any]) -> tuple[dict[str, bool], bool]:
    """Requested output name -> binary flag, and the request-level binary_data_output flag."""
    binary_all = _flag(header.get("parameters"), "binary_data_output")
    requested: dict[str, bool] = {}
    outputs = header.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list):
            raise InvalidRequest("'outputs' must be an array", "outputs")
        for out in outputs:
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise InvalidRequest("Each requested output must be an object with a string 'name'", "outputs")
            params = out.get("parameters")
            binary = binary_all if not (isinstance(params, dict) and "binary_data" in params) \
                else _flag(params, "binary_data")
            requested[out["name"]] = binary
    return requested, binary_all


def _encode_response(header: dict[str, Any], deployment, outputs: dict, requested: dict[str, bool],
                     binary_all: bool) -> Response:
    names = list(requested) if requested else list(outputs)
    body_outputs, blobs = [], []
    non_finite = False  # NaN/Infinity in JSON data: written as the standard library always wrote them
    for name in names:
        array = outputs[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of_array(array), "shape": list(array.shape)}
        if requested.get(name, binary_all):
            raw = codec.array_to_raw(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = codec.array_to_list(array)
            non_finite = non_finite or (array.dtype.kind == "f" and not np.isfinite(array).all())
        body_outputs.append(entry)
    servable = deployment.servable
    result: dict[str, Any] = {"model_name": servable.name, "model_version": str(servable.version),
                              "outputs": body_outputs}
    if "id" in header:
        result["id"] = header["id"]
    text = fast_json.dumps(result, allow_nan=non_finite)
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(text + b"".join(blobs), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(text))})
