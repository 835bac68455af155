"""Tiny ONNX models and a config for the pipeline (DAG) tests, built with onnx.helper.

- `add`: a [N,4] + b [N,4] -> sum [N,4]
- `mul`: x [N,4] * factor [N,4] -> product [N,4]
- `vdouble`: v [K] * 2 -> out [K] (rank 1: runs on demultiplexed rows)
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.model_cache import cached

BUILDER_VERSION = 1


def _binary(op: str, inputs: tuple[str, str], output: str):
    def build(root: Path) -> None:
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node(op, list(inputs), [output])], op.lower(),
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 4]) for name in inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 4])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 9
        (root / "1").mkdir(parents=True)
        onnx.save(model, str(root / "1" / "model.onnx"))
    return build


def _vdouble(root: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["v", "two"], ["out"])], "vdouble",
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, ["K"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["K"])],
        [numpy_helper.from_array(np.array([2], dtype=np.float32), "two")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    (root / "1").mkdir(parents=True)
    onnx.save(model, str(root / "1" / "model.onnx"))


def add_repository() -> Path:
    return cached("pipe-add", {"v": BUILDER_VERSION}, _binary("Add", ("a", "b"), "sum"))


def mul_repository() -> Path:
    return cached("pipe-mul", {"v": BUILDER_VERSION}, _binary("Mul", ("x", "factor"), "product"))


def vdouble_repository() -> Path:
    return cached("pipe-vdouble", {"v": BUILDER_VERSION}, _vdouble)


def request(node: str, item: str) -> dict:
    return {"node_name": node, "data_item": item}


ADD_MUL = {
    "name": "add_mul", "inputs": ["a", "b", "c"],
    "nodes": [
        {"name": "adder", "model_name": "add", "type": "DL model",
         "inputs": [{"a": request("request", "a")}, {"b": request("request", "b")}],
         "outputs": [{"data_item": "sum", "alias": "s"}]},
        {"name": "multiplier", "model_name": "mul", "type": "DL model",
         "inputs": [{"x": request("adder", "s")}, {"factor": request("request", "c")}],
         "outputs": [{"data_item": "product", "alias": "p"}]},
    ],
    "outputs": [{"result": request("multiplier", "p")}],
}

# sum rows split into branches (demultiply_count 0: as many as there are), each doubled, then gathered
# twice: by a node (gather_from_node) and, automatically, at the response
DEMUX = {
    "name": "demux", "inputs": ["a", "b"],
    "nodes": [
        {"name": "split", "model_name": "add", "type": "DL model", "demultiply_count": 0,
         "inputs": [{"a": request("request", "a")}, {"b": request("request", "b")}],
         "outputs": [{"data_item": "sum", "alias": "row"}]},
        {"name": "double", "model_name": "vdouble", "type": "DL model",
         "inputs": [{"v": request("split", "row")}], "outputs": [{"data_item": "out", "alias": "doubled"}]},
        {"name": "sum_up", "model_name": "add", "type": "DL model", "gather_from_node": "split",
         "inputs": [{"a": request("double", "doubled")}, {"b": request("double", "doubled")}],
         "outputs": [{"data_item": "sum", "alias": "total"}]},
    ],
    "outputs": [{"each": request("double", "doubled")}, {"total": request("sum_up", "total")}],
}

# the same rows, fixed count 3, demultiplied at the request (pipeline-level demultiply_count)
REQUEST_DEMUX = {
    "name": "request_demux", "inputs": ["v"], "demultiply_count": 3,
    "nodes": [{"name": "double", "model_name": "vdouble", "inputs": [{"v": request("request", "v")}],
               "outputs": [{"data_item": "out", "alias": "doubled"}]}],
    "outputs": [{"doubled": request("double", "doubled")}],
}


def _add_node(name: str, a: dict, b: dict | None = None, model: str = "add") -> dict:
    inputs = [{"a": a}] + ([{"b": b}] if b is not None else [])
    return {"name": name, "model_name": model, "type": "DL model", "inputs": inputs,
            "outputs": [{"data_item": "sum", "alias": "s"}]}


INVALID = [
    {"name": "cycle", "inputs": ["a"],
     "nodes": [_add_node("n1", request("n2", "s"), request("request", "a")),
               _add_node("n2", request("n1", "s"), request("request", "a"))],
     "outputs": [{"out": request("n2", "s")}]},
    {"name": "unknown_model", "inputs": ["a"],
     "nodes": [_add_node("ghost", request("request", "a"), request("request", "a"), model="no_such_model")],
     "outputs": [{"out": request("ghost", "s")}]},
    {"name": "unconnected", "inputs": ["a"],
     "nodes": [_add_node("half", request("request", "a"))],
     "outputs": [{"out": request("half", "s")}]},
    {"name": "unknown_node", "inputs": ["a"],
     "nodes": [_add_node("lonely", request("request", "a"), request("nowhere", "s"))],
     "outputs": [{"out": request("lonely", "s")}]},
    {"name": "mismatch", "inputs": ["x"],
     "nodes": [{"name": "dense3", "model_name": "dense", "inputs": [{"x": request("request", "x")}],
                "outputs": [{"data_item": "y", "alias": "y"}]},
               {"name": "mul4", "model_name": "mul",
                "inputs": [{"x": request("dense3", "y")}, {"factor": request("dense3", "y")}],
                "outputs": [{"data_item": "product", "alias": "p"}]}],
     "outputs": [{"out": request("mul4", "p")}]},
]


def pipeline_config(tmp_dir: Path, pipelines: list[dict], extra_models: list[dict] | None = None) -> Path:
    from tests.fixtures_tensor import dense_repository

    models = [{"name": "add", "base_path": str(add_repository())},
              {"name": "mul", "base_path": str(mul_repository())},
              {"name": "vdouble", "base_path": str(vdouble_repository())},
              {"name": "dense", "base_path": str(dense_repository())}] + (extra_models or [])
    path = tmp_dir / "config.json"
    path.write_text(json.dumps({"model_config_list": [{"config": m} for m in models],
                                "pipeline_config_list": pipelines}))
    return path
