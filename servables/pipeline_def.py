"""A pipeline (DAG) definition from `pipeline_config_list`, parsed and checked without any model.

Field names and meaning are OVMS's (docs/dag_scheduler.md, docs/demultiplexing.md):

    {"name": "add_mul", "inputs": ["a", "b"], "demultiply_count": 0?,
     "nodes": [{"name": "add", "model_name": "adder", "type": "DL model", "version": 1?,
                "inputs": [{"x": {"node_name": "request", "data_item": "a"}}, ...],
                "outputs": [{"data_item": "sum", "alias": "s"}],
                "demultiply_count": 2?, "gather_from_node": "split"?}, ...],
     "outputs": [{"result": {"node_name": "mul", "data_item": "p"}}]}

A node input names its model's input and where the data comes from: the pipeline's `request` or
another node's output alias. `demultiply_count` on a node splits every output along its first
dimension into that many branches (0 or -1: as many as the dimension has) that the following
nodes run separately; `gather_from_node` on a later node, or the pipeline's response, stacks the
branches back along a new first dimension. `type: "python"` nodes run a user's class from
`handler_path` (servables/python_node.py).

`parse()` checks what needs no model: unknown node names and data items, cycles, gathers that do
not match a demultiplexer, nodes whose outputs lead nowhere. Every message names the node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUEST = "request"  # the pipeline's entry node, as OVMS names it
DL_MODEL = "DL model"
PYTHON = "python"
NODE_TYPES = (DL_MODEL, PYTHON)


class PipelineError(ValueError):
    """The pipeline definition is invalid; the message names the node."""


@dataclass(frozen=True)
class Source:
    node: str  # REQUEST or a node name
    item: str  # a pipeline input name, or the producing node's output alias


@dataclass(frozen=True)
class NodeDef:
    name: str
    type: str
    inputs: dict[str, Source]  # the node's (model's) input name -> where it comes from
    outputs: dict[str, str]  # alias -> data_item (the model's output name)
    model_name: str | None = None
    version: int | None = None
    demultiply_count: int | None = None  # None: no demultiplexing; 0 or -1: dynamic
    gather_from_node: str | None = None
    handler_path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # python nodes: passed to initialize()
    output_types: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # python nodes, by alias


@dataclass(frozen=True)
class PipelineDef:
    name: str
    inputs: tuple[str, ...]
    outputs: dict[str, Source]
    nodes: tuple[NodeDef, ...]  # in an order where every node comes after its producers
    demultiply_count: int | None = None
    # demultiplexers in force on each node's outputs (outermost first); "request" when the pipeline demultiplies
    stacks: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def node(self, name: str) -> NodeDef:
        return next(n for n in self.nodes if n.name == name)


def _single(entry: Any, where: str) -> tuple[str, Any]:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise PipelineError(f"{where}: each entry must be an object with exactly one key")
    return next(iter(entry.items()))


def _source(value: Any, where: str) -> Source:
    if not isinstance(value, dict) or not isinstance(value.get("node_name"), str) \
            or not isinstance(value.get("data_item"), str):
        raise PipelineError(f"{where}: must be {{\"node_name\": ..., \"data_item\": ...}}")
    return Source(value["node_name"], value["data_item"])


def _demultiply(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < -1:
        raise PipelineError(f"{where}: demultiply_count must be an integer >= -1, got {value!r}")
    return value


def _node(raw: Any, index: int) -> NodeDef:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise PipelineError(f"nodes[{index}]: a node needs a string 'name'")
    name = raw["name"]
    where = f"node {name!r}"
    if name == REQUEST:
        raise PipelineError(f"{where}: the name {REQUEST!r} is reserved for the pipeline's request")
    node_type = raw.get("type", DL_MODEL)
    if node_type not in NODE_TYPES:
        hint = " (custom node libraries are not supported)" if node_type == "custom" else ""
        raise PipelineError(f"{where}: type must be one of {', '.join(NODE_TYPES)}, got {node_type!r}{hint}")
    inputs: dict[str, Source] = {}
    for k, entry in enumerate(raw.get("inputs") or []):
        input_name, value = _single(entry, f"{where} inputs[{k}]")
        if input_name in inputs:
            raise PipelineError(f"{where}: input {input_name!r} is connected twice")
        inputs[input_name] = _source(value, f"{where} input {input_name!r}")
    outputs: dict[str, str] = {}
    output_types: dict[str, tuple[str, list[int]]] = {}
    for k, entry in enumerate(raw.get("outputs") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("data_item"), str):
            raise PipelineError(f"{where} outputs[{k}]: must be {{\"data_item\": ..., \"alias\": ...}}")
        alias = entry.get("alias") or entry["data_item"]
        if alias in outputs:
            raise PipelineError(f"{where}: output alias {alias!r} is used twice")
        outputs[alias] = entry["data_item"]
        if "datatype" in entry or "shape" in entry:
            output_types[alias] = (str(entry.get("datatype", "FP32")), list(entry.get("shape") or [-1]))
    if not outputs:
        raise PipelineError(f"{where}: a node needs at least one output")
    model_name = raw.get("model_name")
    handler_path = raw.get("handler_path")
    if node_type == DL_MODEL and not isinstance(model_name, str):
        raise PipelineError(f"{where}: a 'DL model' node needs 'model_name'")
    if node_type == PYTHON and not isinstance(handler_path, str):
        raise PipelineError(f"{where}: a python node needs 'handler_path'")
    version = raw.get("version")
    if version is not None and not (isinstance(version, int) and version >= 1):
        raise PipelineError(f"{where}: version must be an integer >= 1")
    gather = raw.get("gather_from_node")
    if gather is not None and not isinstance(gather, str):
        raise PipelineError(f"{where}: gather_from_node must be a node name")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise PipelineError(f"{where}: params must be an object")
    return NodeDef(name, node_type, inputs, outputs, model_name, version,
                   _demultiply(raw.get("demultiply_count"), where), gather, handler_path, params, output_types)


def parse(raw: dict[str, Any]) -> PipelineDef:
    """Parse and check one `pipeline_config_list` entry (raises `PipelineError`)."""
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise PipelineError("a pipeline needs a string 'name'")
    inputs = raw.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise PipelineError("'inputs' must be a non-empty list of input names")
    if not isinstance(raw.get("nodes"), list) or not raw["nodes"]:
        raise PipelineError("'nodes' must be a non-empty list")
    nodes = [_node(n, k) for k, n in enumerate(raw["nodes"])]
    by_name: dict[str, NodeDef] = {}
    for node in nodes:
        if node.name in by_name:
            raise PipelineError(f"node {node.name!r}: the name is used twice")
        by_name[node.name] = node
    outputs: dict[str, Source] = {}
    for k, entry in enumerate(raw.get("outputs") or []):
        output_name, value = _single(entry, f"outputs[{k}]")
        outputs[output_name] = _source(value, f"pipeline output {output_name!r}")
    if not outputs:
        raise PipelineError("'outputs' must name at least one output")

    def check_source(source: Source, where: str) -> None:
        if source.node == REQUEST:
            if source.item not in inputs:
                raise PipelineError(f"{where}: the request has no input {source.item!r} (pipeline inputs: {inputs})")
        elif source.node not in by_name:
            raise PipelineError(f"{where}: unknown node {source.node!r}")
        elif source.item not in by_name[source.node].outputs:
            raise PipelineError(f"{where}: node {source.node!r} has no output alias {source.item!r}")

    for node in nodes:
        for input_name, source in node.inputs.items():
            check_source(source, f"node {node.name!r} input {input_name!r}")
    for output_name, source in outputs.items():
        check_source(source, f"pipeline output {output_name!r}")
    ordered = _topological(nodes)
    _check_used(ordered, outputs)
    demultiply = _demultiply(raw.get("demultiply_count"), "pipeline")
    stacks = _stacks(ordered, demultiply)
    return PipelineDef(name, tuple(inputs), outputs, tuple(ordered), demultiply, stacks)


def _topological(nodes: list[NodeDef]) -> list[NodeDef]:
    """Kahn's order; a cycle is a load error naming the nodes on it."""
    pending = {n.name: {s.node for s in n.inputs.values() if s.node != REQUEST} for n in nodes}
    order: list[NodeDef] = []
    by_name = {n.name: n for n in nodes}
    while pending:
        ready = [name for name, needs in pending.items() if not needs]
        if not ready:
            raise PipelineError(f"cycle between nodes {', '.join(repr(n) for n in _cycle(pending))}")
        for name in sorted(ready, key=list(by_name).index):
            order.append(by_name[name])
            del pending[name]
        for needs in pending.values():
            needs.difference_update(ready)
    return order


def _cycle(pending: dict[str, set[str]]) -> list[str]:
    """One cycle among the nodes left by Kahn's algorithm (each has a pending producer)."""
    path: list[str] = []
    node = next(iter(pending))
    while node not in path:
        path.append(node)
        node = sorted(pending[node])[0]
    return path[path.index(node):] + [node]


def _check_used(ordered: list[NodeDef], outputs: dict[str, Source]) -> None:
    """Every node must lead to the response (OVMS rejects nodes that are not connected to it)."""
    used = {s.node for s in outputs.values()}
    for node in reversed(ordered):
        if node.name in used:
            used.update(s.node for s in node.inputs.values())
        else:
            raise PipelineError(f"node {node.name!r}: its outputs reach no pipeline output")


def _stacks(ordered: list[NodeDef], demultiply: int | None) -> dict[str, tuple[str, ...]]:
    """The demultiplexers in force on each node's outputs; inputs of one node must agree."""
    stacks: dict[str, tuple[str, ...]] = {REQUEST: (REQUEST,) if demultiply is not None else ()}
    for node in ordered:
        incoming = {stacks[s.node] for s in node.inputs.values()} or {stacks[REQUEST]}
        if len(incoming) > 1:
            raise PipelineError(f"node {node.name!r}: its inputs come from different demultiplexed branches")
        stack = next(iter(incoming))
        if node.gather_from_node is not None:
            if not stack or stack[-1] != node.gather_from_node:
                raise PipelineError(f"node {node.name!r}: gather_from_node {node.gather_from_node!r} is not the "
                                    f"innermost demultiplexer before it (in force: {list(stack) or 'none'})")
            stack = stack[:-1]
        if node.demultiply_count is not None:
            stack = stack + (node.name,)
        stacks[node.name] = stack
    return stacks
