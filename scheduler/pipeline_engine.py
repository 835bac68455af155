"""Runs pipeline (DAG) requests: each node's model through that model's own engine.

A request's data items are kept per branch: a branch key is a tuple of indices, one per
demultiplexer in force (the empty tuple outside any). Nodes run in the definition's topological
order; a node runs once per branch key, all branches at once (`asyncio.gather`), so the models'
engines batch and parallelise them as they do any request. A demultiplying node splits each output
along its first dimension into branches; a gathering node (and the response) stacks them back in
branch order (OVMS docs/demultiplexing.md).

DL model nodes resolve their model per request (a new version is used once it is served) and call
its engine's `infer`; Python nodes run the user's `execute` in a worker thread. An error in a node
names the node: request errors stay 400, a Python exception is a 500 (`InferenceError`), and the
server keeps serving.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import numpy as np

from servables.errors import InferenceError, InvalidRequest, ModelUnavailable, ServingError
from servables.pipeline import PipelineServable
from servables.pipeline_def import DL_MODEL, REQUEST, NodeDef

from .tensor_engine import EngineStats

log = logging.getLogger(__name__)

Key = tuple[int, ...]
Values = dict[tuple[str, str], dict[Key, np.ndarray]]


def node_error(node: NodeDef, exc: ServingError) -> ServingError:
    """The same error class, its message prefixed with the node (and model) it happened in."""
    what = f"node {node.name!r}" + (f" (model {node.model_name})" if node.type == DL_MODEL else "")
    error = type(exc).__new__(type(exc))
    ServingError.__init__(error, f"{what}: {exc.message}", exc.param, exc.code)
    return error


def split(node: NodeDef, outputs: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """A demultiplexer's outputs as one dict per branch (first dimension)."""
    counts = {alias: array.shape[0] if array.ndim else 0 for alias, array in outputs.items()}
    sizes = set(counts.values())
    if len(sizes) != 1:
        raise InvalidRequest(f"node {node.name!r}: outputs to demultiply differ in their first dimension {counts}")
    size = sizes.pop()
    if node.demultiply_count and node.demultiply_count > 0 and size != node.demultiply_count:
        raise InvalidRequest(f"node {node.name!r}: demultiply_count is {node.demultiply_count} but the outputs' "
                             f"first dimension is {size}")
    if size == 0:
        raise InvalidRequest(f"node {node.name!r}: the demultiplexer produced no results")
    return [{alias: array[i] for alias, array in outputs.items()} for i in range(size)]


def gather(branches: dict[Key, np.ndarray], where: str) -> dict[Key, np.ndarray]:
    """Stack the innermost demultiplexer's branches: keys lose their last index."""
    groups: dict[Key, list[tuple[int, np.ndarray]]] = {}
    for key, array in branches.items():
        groups.setdefault(key[:-1], []).append((key[-1], array))
    gathered = {}
    for prefix, parts in groups.items():
        arrays = [array for _, array in sorted(parts, key=lambda part: part[0])]
        if len({a.shape for a in arrays}) != 1:
            raise InvalidRequest(f"{where}: cannot gather branches of different shapes "
                                 f"{sorted({a.shape for a in arrays})}")
        gathered[prefix] = np.stack(arrays)
    return gathered


class PipelineEngine:
    """The engine of one pipeline deployment (the pipeline's only version)."""

    def __init__(self, pipeline: PipelineServable):
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = 0
        self._stopping = False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        with self._lock:
            self._stopping = True

    def drain(self, timeout: float | None = None) -> None:
        """Wait for the requests in flight (a reload swaps pipelines without failing them)."""
        deadline = time.monotonic() + (timeout if timeout is not None else 60.0)
        with self._idle:
            self._stopping = True
            while self._running and time.monotonic() < deadline:
                self._idle.wait(0.1)

    def stats(self) -> EngineStats:
        with self._lock:
            return EngineStats(running=self._running, waiting=0, pipeline_has_requests=self._running > 0)

    def engine(self, version: int) -> PipelineEngine:
        return self

    def _enter(self) -> None:
        with self._lock:
            if self._stopping:
                raise ModelUnavailable(f"Pipeline {self.pipeline.name} is being replaced or removed; retry")
            self._running += 1

    def _leave(self) -> None:
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    async def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the whole graph for one request; returns pipeline output name -> array."""
        inputs = self.pipeline.validate(inputs)
        self._enter()
        try:
            values = self._request_values(inputs)
            for node in self.pipeline.definition.nodes:
                await self._run_node(node, values)
            return self._response(values)
        finally:
            self._leave()

    async def stream(self, inputs: dict[str, np.ndarray]) -> AsyncIterator[dict[str, np.ndarray]]:
        """Run the graph; when its last Python node yields several times, each result is one
        response (servables/python_node.py). Without such a node: one response."""
        inputs = self.pipeline.validate(inputs)
        streaming = self._streaming_node()
        self._enter()
        try:
            values = self._request_values(inputs)
            for node in self.pipeline.definition.nodes:
                if node is not streaming:
                    await self._run_node(node, values)
                    continue
                async for partial in self._stream_node(node, values):
                    yield self._response(partial)
                return
            yield self._response(values)
        finally:
            self._leave()

    # --- the graph -----------------------------------------------------------------------------

    def _streaming_node(self) -> NodeDef | None:
        """The python node whose `execute` is a generator, when it is the graph's last node."""
        nodes = self.pipeline.definition.nodes
        last = nodes[-1]
        python = self.pipeline.python_nodes.get(last.name)
        if python is None or not python.streams:
            return None
        if self.pipeline.definition.stacks[last.name]:
            raise InvalidRequest(f"node {last.name!r}: a streaming python node cannot run in demultiplexed branches")
        return last

    def _request_values(self, inputs: dict[str, np.ndarray]) -> Values:
        definition = self.pipeline.definition
        values: Values = {}
        for name, array in inputs.items():
            values[(REQUEST, name)] = {(): array}
        if definition.demultiply_count is not None:
            request_node = NodeDef(REQUEST, "request", {}, {name: name for name in inputs},
                                   demultiply_count=definition.demultiply_count)
            branches = split(request_node, dict(inputs))
            for name in inputs:
                values[(REQUEST, name)] = {(i,): branch[name] for i, branch in enumerate(branches)}
        return values

    def _node_inputs(self, node: NodeDef, values: Values) -> dict[Key, dict[str, np.ndarray]]:
        """The node's inputs per branch key (gathered first when the node gathers)."""
        per_input: dict[str, dict[Key, np.ndarray]] = {}
        for input_name, source in node.inputs.items():
            branches = values[(source.node, source.item)]
            if node.gather_from_node is not None:
                branches = gather(branches, f"node {node.name!r}")
            per_input[input_name] = branches
        keys = sorted(next(iter(per_input.values())).keys()) if per_input else [()]
        return {key: {name: branches[key] for name, branches in per_input.items()} for key in keys}

    async def _run_node(self, node: NodeDef, values: Values) -> None:
        batches = self._node_inputs(node, values)
        results = await asyncio.gather(*(self._call(node, inputs) for inputs in batches.values()))
        for key, outputs in zip(batches, results, strict=True):
            self._store(node, key, outputs, values)

    def _store(self, node: NodeDef, key: Key, outputs: dict[str, np.ndarray], values: Values) -> None:
        named = {}
        for alias, data_item in node.outputs.items():
            if data_item not in outputs:
                raise InferenceError(f"node {node.name!r}: produced no output {data_item!r} "
                                     f"(it produced {sorted(outputs)})")
            named[alias] = outputs[data_item]
        if node.demultiply_count is None:
            for alias, array in named.items():
                values.setdefault((node.name, alias), {})[key] = array
            return
        for index, branch in enumerate(split(node, named)):
            for alias, array in branch.items():
                values.setdefault((node.name, alias), {})[key + (index,)] = array

    async def _call(self, node: NodeDef, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            if node.type == DL_MODEL:
                deployment = self.pipeline.model(node)
                return await deployment.engine.infer(inputs)
            return await asyncio.to_thread(self.pipeline.python_nodes[node.name].execute, inputs)
        except ServingError as exc:
            raise node_error(node, exc) from exc

    async def _stream_node(self, node: NodeDef, values: Values) -> AsyncIterator[Values]:
        """Each result the node's generator yields, pulled in a worker thread one at a time; closing
        this iterator (client gone) closes the user's generator."""
        (inputs,) = self._node_inputs(node, values).values()
        python = self.pipeline.python_nodes[node.name]
        try:
            results = await asyncio.to_thread(python.iterate, inputs)
            try:
                while (outputs := await asyncio.to_thread(next, results, None)) is not None:
                    partial = dict(values)
                    self._store(node, (), outputs, partial)
                    yield partial
            finally:
                await asyncio.to_thread(results.close)
        except ServingError as exc:
            raise node_error(node, exc) from exc

    def _response(self, values: Values) -> dict[str, np.ndarray]:
        """Pipeline outputs, every demultiplexer still in force gathered (innermost first)."""
        result = {}
        for output_name, source in self.pipeline.definition.outputs.items():
            branches = values[(source.node, source.item)]
            while next(iter(branches)):
                branches = gather(branches, f"pipeline output {output_name!r}")
            result[output_name] = branches[()]
        return result

