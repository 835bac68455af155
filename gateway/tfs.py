"""TensorFlow Serving REST: model status, metadata and `:predict` (row and column formats, b64 strings).

`GET /v1/models/{id}` is shared with the OpenAI models API: names are unique, so a generative model
answers the OpenAI model object and a tensor model answers its TFS status. TFS errors use the
`{"error": "..."}` body; an unknown name under a plain `/v1/models/{id}` keeps the OpenAI error.
"""
from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from servables.errors import InvalidRequest, ModelNotFound
from servables.tensor import TensorInfo

from . import tensor_codec as codec
from . import tensor_service as service
from .error_policy import ErrorFamily, http_response
from .guard import load_json
from .openai.models import model_object
from .openapi import json_body
from .openapi_models import ModelObject, ModelStatus, OpenAIError, PredictRequest, PredictResponse, TensorError
from .request_context import note_model_version, note_operation
from .routes import Access, Api, declared_router

router = declared_router(Access.PUBLIC, Api.TFS, ErrorFamily.TENSOR)  # open, as in OVMS

_GET_PATH = re.compile(r"^(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<metadata>/metadata)?/?$")
_POST_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?:(?P<verb>[a-z]+)$")

TF_DTYPES = {"BOOL": "DT_BOOL", "UINT8": "DT_UINT8", "UINT16": "DT_UINT16", "UINT32": "DT_UINT32",
             "UINT64": "DT_UINT64", "INT8": "DT_INT8", "INT16": "DT_INT16", "INT32": "DT_INT32",
             "INT64": "DT_INT64", "FP16": "DT_HALF", "FP32": "DT_FLOAT", "FP64": "DT_DOUBLE", "BYTES": "DT_STRING"}
SIGNATURE = "serving_default"


@router.get("/v1/models/{path:path}", responses={200: {
    "model": ModelStatus | ModelObject | dict[str, Any],
    "description": "`{name}[/versions/{v}]`: the model status; `.../metadata`: its signature (TFS); a "
                   "generative model's name: its OpenAI model object"},
    404: {"model": TensorError | OpenAIError, "description": "Unknown model: OpenAI-shaped unless the path names a "
                                                             "version or metadata (as the OpenAI models API)"}})
async def get_model(path: str, request: Request) -> Response:
    manager = request.app.state.manager
    match = _GET_PATH.match(path)
    if match is None or not service.is_tensor(manager, match["name"]):
        if match is not None and (match["version"] or match["metadata"]) and not service.exists(manager, path):
            raise ModelNotFound(match["name"])
        try:
            return JSONResponse(model_object(manager.get(path)))  # the OpenAI model object
        except ModelNotFound as exc:
            return http_response(exc, ErrorFamily.OPENAI)  # as the OpenAI models API answers
    operation = "GetModelMetadata" if match["metadata"] else "GetModelStatus"
    note_operation(request.scope, operation, match["name"], match["version"])
    if match["metadata"]:
        return JSONResponse(metadata_json(manager, match["name"], match["version"]))
    return JSONResponse(status_json(manager, match["name"], match["version"]))


@router.post("/v1/models/{path:path}", responses={200: {"model": PredictResponse}},
             openapi_extra=json_body(PredictRequest, "text/plain", "application/octet-stream"))
async def post_model(path: str, request: Request) -> Response:
    match = _POST_PATH.match(path)
    if match is None:
        raise InvalidRequest("Invalid request URL")
    if match["verb"] != "predict":
        raise InvalidRequest(f"Method :{match['verb']} is not implemented; use :predict")
    note_operation(request.scope, "Predict", match["name"], match["version"])
    deployment = service.resolve(request.app.state.manager, match["name"], match["version"])
    note_model_version(request.scope, str(deployment.servable.version))
    body = load_json(await request.body(), request.app.state.max_json_depth)
    return JSONResponse(await predict(deployment, body))


def status_json(manager, name: str, version: str | None) -> dict[str, Any]:
    group = manager.get(name).servable
    versions = [service.resolve(manager, name, version).servable.version] if version else group.versions()
    return {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in versions]}


def _tensor_info(info: TensorInfo) -> dict[str, Any]:
    return {"dtype": TF_DTYPES.get(info.datatype, "DT_INVALID"),
            "tensorShape": {"dim": [{"size": str(d), "name": ""} for d in info.shape], "unknownRank": False},
            "name": info.name}


def metadata_json(manager, name: str, version: str | None) -> dict[str, Any]:
    servable = service.resolve(manager, name, version).servable
    return {"modelSpec": {"name": name, "signatureName": "", "version": str(servable.version)},
            "metadata": {"signature_def": {
                "@type": "type.googleapis.com/tensorflow.serving.SignatureDefMap",
                "signatureDef": {SIGNATURE: {
                    "inputs": {t.name: _tensor_info(t) for t in servable.inputs},
                    "outputs": {t.name: _tensor_info(t) for t in servable.outputs},
                    "methodName": "tensorflow/serving/predict"}}}}}


# --- predict -----------------------------------------------------------------------------

async def predict(deployment, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidRequest("The request must have exactly one of 'instances' (row format) or 'inputs' "
                             "(column format)")
    servable = deployment.servable
    infos = {t.name: t for t in servable.inputs}
    row = "instances" in body
    inputs = _row_inputs(body["instances"], infos) if row else _column_inputs(body["inputs"], infos)
    outputs = await service.infer(deployment, inputs)
    if row:
        if len(outputs) == 1:
            return {"predictions": _to_json(next(iter(outputs.values())))}
        batch = min(len(a) if a.ndim else 1 for a in outputs.values())
        return {"predictions": [{name: _to_json(a[i]) for name, a in outputs.items()} for i in range(batch)]}
    if len(outputs) == 1:
        return {"outputs": _to_json(next(iter(outputs.values())))}
    return {"outputs": {name: _to_json(a) for name, a in outputs.items()}}


def _row_inputs(instances: Any, infos: dict[str, TensorInfo]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise InvalidRequest("'instances' must be a non-empty list", "instances")
    named = all(isinstance(i, dict) and "b64" not in i for i in instances)
    if not named:
        if len(infos) != 1:
            raise InvalidRequest("Each instance must be an object naming the model's inputs "
                                 f"{sorted(infos)}", "instances")
        info = next(iter(infos.values()))
        return {info.name: _array(info.name, instances, info)}
    columns: dict[str, list[Any]] = {}
    for instance in instances:
        if set(instance) != set(columns or instance):
            raise InvalidRequest("All instances must name the same inputs", "instances")
        for name, value in instance.items():
            columns.setdefault(name, []).append(value)
    return {name: _array(name, values, infos.get(name)) for name, values in columns.items()}


def _column_inputs(inputs: Any, infos: dict[str, TensorInfo]) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict) and "b64" not in inputs:
        return {name: _array(name, value, infos.get(name)) for name, value in inputs.items()}
    if len(infos) != 1:
        raise InvalidRequest(f"'inputs' must be an object naming the model's inputs {sorted(infos)}", "inputs")
    info = next(iter(infos.values()))
    return {info.name: _array(info.name, inputs, info)}


def _decode_b64(name: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_b64(name, v) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise InvalidRequest(f"Input {name!r}: binary values must be {{\"b64\": \"<base64>\"}}", name)
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as exc:
            raise InvalidRequest(f"Input {name!r}: invalid base64: {exc}", name) from exc
    return value


def _array(name: str, value: Any, info: TensorInfo | None) -> np.ndarray:
    """JSON values -> array of the model input's datatype (TFS JSON carries no types)."""
    if info is None:
        raise InvalidRequest(f"Unexpected input {name!r}", name)
    if info.datatype == "BYTES":
        value = _decode_b64(name, value)
    elif len(info.shape) == 4 and _has_b64(value):  # encoded images for an image input (servables/binary_input.py)
        return codec.array_from_list(name, "BYTES", None, _decode_b64(name, value))
    return codec.array_from_list(name, info.datatype, None, value)


def _has_b64(value: Any) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, dict) and "b64" in value


def _to_json(array: Any) -> Any:
    array = np.asarray(array)
    if array.dtype.kind in ("S", "U", "O"):
        def _text(v: Any) -> Any:
            raw = v if isinstance(v, bytes) else str(v).encode()
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(raw).decode()}
        return np.vectorize(_text, otypes=[object])(array).tolist() if array.ndim else _text(array.item())
    return array.tolist()
