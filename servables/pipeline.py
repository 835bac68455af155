"""The pipeline servable (kind "pipeline"): a DAG of served tensor models and Python nodes.

Built from a `pipeline_config_list` entry (servables/pipeline_def.py). `load()` binds every
`DL model` node to the model it names, as served now, and checks what the definition alone could
not: the model exists, every model input is connected, the node's outputs exist, and connected
tensors agree in datatype and shape (after demultiplexing and gathering). A failure is a load
error naming the node. The metadata a client sees (KServe/TFS) is derived from the graph: an input
takes its datatype and shape from the model inputs it feeds, an output from the model output it
comes from, with one leading dimension per demultiplexer still in force at the response.

Requests run in scheduler/pipeline_engine.py, which resolves each node's model again per request,
so a new model version is used as soon as it is served. Pipelines are unversioned: version 1.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .base import ModelSpec
from .errors import InvalidRequest, ModelLoadError, ServingError, VersionNotFound
from .pipeline_def import DL_MODEL, PYTHON, REQUEST, NodeDef, PipelineDef, PipelineError, Source, parse
from .tensor import TensorInfo, datatype_of_array

log = logging.getLogger(__name__)

Shape = list[int]
ItemInfo = tuple[str, Shape] | None  # (datatype, shape) of a data item; None: unknown (python node)


def validate_definition(options: dict[str, Any]) -> None:
    """The kind's option validator: the definition parses (ValueError naming the node otherwise)."""
    parse(options.get("pipeline") or {})


def compatible(a: Shape, b: Shape) -> bool:
    """Shapes agree where both are known (-1 is any size; [-1] alone is any rank)."""
    if a == [-1] or b == [-1]:
        return True
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b, strict=True))


def _text(shape: Shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


class PipelineServable:
    """One pipeline; served as version 1 of a model of that name."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        try:
            self.definition: PipelineDef = parse(spec.options.get("pipeline") or {})
        except PipelineError as exc:
            raise ModelLoadError(f"pipeline {spec.name}: {exc}") from exc
        self._lookup: Callable[[str, int | None], Any] | None = None
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        self._input_info: dict[str, ItemInfo] = {}
        self.python_nodes: dict[str, Any] = {}  # node name -> servables.python_node.PythonNode

    @property
    def name(self) -> str:
        return self.spec.name

    def bind_models(self, lookup: Callable[[str, int | None], Any]) -> None:
        """Called by the model manager before `load()`: `lookup(model, version)` -> its deployment."""
        self._lookup = lookup

    def model_names(self) -> set[str]:
        """The models its nodes run (the model manager reloads the pipeline when one changes)."""
        return {node.model_name for node in self.definition.nodes if node.model_name}

    def model(self, node: NodeDef) -> Any:
        """The deployment serving `node`'s model now (ServingError when it is not served)."""
        if self._lookup is None:
            raise ModelLoadError(f"pipeline {self.name}: no model registry bound")
        return self._lookup(node.model_name or "", node.version)

    # --- loading -------------------------------------------------------------------------------

    def load(self) -> None:
        try:
            self._load()
        except PipelineError as exc:
            self.close()
            raise ModelLoadError(f"pipeline {self.name}: {exc}") from exc

    def _count(self, demultiplexer: str) -> int:
        count = self.definition.demultiply_count if demultiplexer == REQUEST \
            else self.definition.node(demultiplexer).demultiply_count
        return count if count is not None and count > 0 else -1

    def _load(self) -> None:
        definition = self.definition
        items: dict[tuple[str, str], ItemInfo] = {}
        request_items: dict[str, ItemInfo] = {}
        for node in definition.nodes:
            if node.type == DL_MODEL:
                self._bind_model_node(node, items, request_items)
            elif node.type == PYTHON:
                self._load_python_node(node, items)
        self._input_info = {name: request_items.get(name) for name in definition.inputs}
        outer = [self._count(REQUEST)] if definition.demultiply_count is not None else []
        self.inputs = [TensorInfo(name, info[0] if info else "FP32", outer + (info[1] if info else [-1]))
                       for name, info in self._input_info.items()]
        self.outputs = []
        for output_name, source in definition.outputs.items():
            info = request_items.get(source.item) if source.node == REQUEST else items[(source.node, source.item)]
            lead = [self._count(d) for d in definition.stacks[source.node]]
            datatype, shape = info if info else ("FP32", [-1])
            self.outputs.append(TensorInfo(output_name, datatype, lead + shape))

    def _incoming(self, node: NodeDef, source: Source, items: dict[tuple[str, str], ItemInfo],
                  request_items: dict[str, ItemInfo]) -> tuple[ItemInfo, bool]:
        """What `node` receives from `source` (gathering adds the leading dimension) and whether the
        source is a request input nobody described yet."""
        if source.node == REQUEST:
            info = request_items.get(source.item)
            fresh = source.item not in request_items
        else:
            info, fresh = items[(source.node, source.item)], False
        if info is not None and node.gather_from_node is not None:
            info = (info[0], [self._count(node.gather_from_node)] + info[1])
        return info, fresh

    def _bind_model_node(self, node: NodeDef, items: dict[tuple[str, str], ItemInfo],
                         request_items: dict[str, ItemInfo]) -> None:
        where = f"node {node.name!r}"
        try:
            model = self.model(node).servable
        except ServingError as exc:
            version = f" version {node.version}" if node.version else ""
            raise PipelineError(f"{where}: model {node.model_name!r}{version} is not served ({exc})") from exc
        model_inputs = {t.name: t for t in model.inputs}
        model_outputs = {t.name: t for t in model.outputs}
        for input_name in model_inputs:
            if input_name not in node.inputs:
                raise PipelineError(f"{where}: input {input_name!r} of model {node.model_name!r} is not connected")
        for input_name, source in node.inputs.items():
            if input_name not in model_inputs:
                raise PipelineError(f"{where}: model {node.model_name!r} has no input {input_name!r} "
                                    f"(inputs: {sorted(model_inputs)})")
            expected = model_inputs[input_name]
            info, fresh = self._incoming(node, source, items, request_items)
            if fresh:
                request_items[source.item] = (expected.datatype, list(expected.shape))
                continue
            if info is None:
                continue
            datatype, shape = info
            if datatype != expected.datatype:
                raise PipelineError(f"{where}: input {input_name!r} expects {expected.datatype} but "
                                    f"{source.node}.{source.item} is {datatype}")
            if not compatible(shape, list(expected.shape)):
                raise PipelineError(f"{where}: input {input_name!r} expects shape {_text(expected.shape)} but "
                                    f"{source.node}.{source.item} has shape {_text(shape)}")
        for alias, data_item in node.outputs.items():
            if data_item not in model_outputs:
                raise PipelineError(f"{where}: model {node.model_name!r} has no output {data_item!r} "
                                    f"(outputs: {sorted(model_outputs)})")
            produced = model_outputs[data_item]
            shape = list(produced.shape)
            if node.demultiply_count is not None:
                if shape == [-1]:
                    shape = [-1, -1]
                if len(shape) < 1 or (node.demultiply_count > 0 and shape[0] not in (-1, node.demultiply_count)):
                    raise PipelineError(f"{where}: demultiply_count {node.demultiply_count} does not match the "
                                        f"first dimension of output {data_item!r} {_text(produced.shape)}")
                shape = shape[1:]
            items[(node.name, alias)] = (produced.datatype, shape)

    def _load_python_node(self, node: NodeDef, items: dict[tuple[str, str], ItemInfo]) -> None:
        from .python_node import PythonNode

        handler = Path(node.handler_path or "")
        if not handler.is_absolute():
            handler = self.spec.base_path / handler
        try:
            self.python_nodes[node.name] = PythonNode.load(node, handler)
        except ServingError as exc:
            raise PipelineError(f"node {node.name!r}: {exc}") from exc
        for alias in node.outputs:
            items[(node.name, alias)] = node.output_types.get(alias)

    def close(self) -> None:
        nodes, self.python_nodes = list(self.python_nodes.values()), {}
        for python_node in nodes:
            python_node.finalize()

    # --- the model-like surface the KServe/TFS front ends use ---------------------------------

    def versions(self) -> list[int]:
        return [1]

    def version(self, version: int | None = None) -> PipelineVersion:
        """What a KServe/TFS request resolves (as `TensorModel.version` gives a `TensorServable`)."""
        if version not in (None, 1):
            raise VersionNotFound(self.name, version)
        return PipelineVersion(self)

    def describe(self) -> dict[str, Any]:
        return {"versions": ["1"], "nodes": [n.name for n in self.definition.nodes]}

    def validate(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check a request against the pipeline's inputs (names, and datatype/shape where known)."""
        expected = list(self._input_info)
        if len(inputs) != len(expected):
            raise InvalidRequest(f"Invalid number of inputs - Expected: {len(expected)}; Actual: {len(inputs)}",
                                 "inputs")
        for info in self.inputs:
            if info.name not in inputs:
                raise InvalidRequest(f"Missing input {info.name!r}", info.name)
            if self._input_info[info.name] is None:
                continue
            array = inputs[info.name]
            if datatype_of_array(array) != info.datatype:
                raise InvalidRequest(f"Invalid input precision for {info.name!r} - Expected: {info.datatype}; "
                                     f"Actual: {datatype_of_array(array)}", info.name)
            if not compatible(list(array.shape), info.shape):
                raise InvalidRequest(f"Invalid input shape for {info.name!r} - Expected: {_text(info.shape)}; "
                                     f"Actual: {list(array.shape)}", info.name)
        return inputs


class PipelineVersion:
    """The pipeline as its one version: the surface of a `TensorServable` the front ends read."""

    version = 1
    model_info: dict[str, str] = {}

    def __init__(self, pipeline: PipelineServable):
        self.pipeline = pipeline
        self.spec = pipeline.spec

    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def inputs(self) -> list[TensorInfo]:
        return self.pipeline.inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        return self.pipeline.outputs
