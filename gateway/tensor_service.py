"""What the KServe and TFS front ends (REST and gRPC) share: model/version lookup, metadata, inference."""
from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np

from scheduler.model_manager import Deployment, ModelManager
from servables.errors import InvalidRequest
from servables.kinds import TENSOR_ENDPOINT

SERVER_NAME = "genai-gateway"
EXTENSIONS = ["binary_tensor_data"]


def server_version() -> str:
    try:
        return importlib_metadata.version("genai-gateway")
    except importlib_metadata.PackageNotFoundError:
        return "0.1.0"


def parse_version(text: str | int | None) -> int | None:
    """A version from a URL or request field; empty/None/0 means the default version."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, int):
        return text
    if not (str(text).isascii() and str(text).isdigit()):  # int() refuses "³"
        raise InvalidRequest(f"Invalid model version {text!r}: must be a positive integer", "version")
    return int(text) or None


def resolve(manager: ModelManager, name: str, version: str | int | None) -> Deployment:
    """The deployment of one tensor model version (404 for unknown model or version)."""
    return manager.get_version(name, parse_version(version))


def exists(manager: ModelManager, name: str) -> bool:
    return any(d.name == name for d in manager.deployments())


def serves_tensors(deployment: Deployment) -> bool:
    """Tensor models and pipelines: KServe v2 / TFS, with versions."""
    return TENSOR_ENDPOINT in deployment.kind.endpoints


def is_tensor(manager: ModelManager, name: str) -> bool:
    return any(d.name == name and serves_tensors(d) for d in manager.deployments())


def kserve_metadata(deployment: Deployment, group_versions: list[int]) -> dict[str, Any]:
    servable = deployment.servable
    result = {
        "name": servable.name,
        "versions": [str(v) for v in group_versions],
        "platform": "OpenVINO",
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in servable.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in servable.outputs],
    }
    if servable.model_info:
        result["rt_info"] = {"model_info": servable.model_info}
    return result


def check_requested_outputs(deployment: Deployment, names: list[str]) -> None:
    if not names:  # most requests ask for every output
        return
    known = {t.name for t in deployment.servable.outputs}
    for name in names:
        if name not in known:
            raise InvalidRequest(f"Unknown output {name!r}; the model outputs {sorted(known)}", name)


async def infer(deployment: Deployment, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return await deployment.engine.infer(inputs)


async def stream(deployment: Deployment, inputs: dict[str, np.ndarray]) -> AsyncIterator[dict[str, np.ndarray]]:
    """The responses to one request: several from a pipeline whose Python node yields, else one."""
    engine_stream = getattr(deployment.engine, "stream", None)
    if engine_stream is None:
        yield await deployment.engine.infer(inputs)
        return
    async for outputs in engine_stream(inputs):
        yield outputs
