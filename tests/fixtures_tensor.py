"""Tiny classic models built by the tests (cached under ~/.cache/genai-gateway/test-models).

- `dense` (ONNX, dynamic batch, versions 1..3): y = x @ (v * W) + b with small integer weights, so
  results are exact in any precision.
- `types` (OpenVINO IR): BOOL, BYTES, FP16 and a static INT32 [2,2] input in one model.
- `static` (OpenVINO IR, static [1,4]): y = 3 * x, served with `shape: auto`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.model_cache import cached  # noqa: E402

W = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
B = np.array([1, -2, 3], dtype=np.float32)
BUILDER_VERSION = 1


def dense_expected(x: np.ndarray, version: int) -> np.ndarray:
    return (x.astype(np.float32) @ (W * version) + B).astype(np.float32)


def _cached(name: str, params: dict, build: Callable[[Path], None]) -> Path:
    return cached(name, {**params, "v": BUILDER_VERSION}, build)


def _dense_onnx(path: Path, version: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(W * version, "w"), numpy_helper.from_array(B, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path / "model.onnx"))


def dense_repository(versions: tuple[int, ...] = (1, 2, 3)) -> Path:
    def build(root: Path) -> None:
        for v in versions:
            _dense_onnx(root / str(v), v)
    return _cached("dense", {"versions": list(versions)}, build)


def _slow_onnx(root: Path) -> None:
    """x [N,512] through 8 MatMuls with one 512x512 weight: milliseconds per batch of 64."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, prev = [], "x"
    for i in range(8):
        nodes.append(helper.make_node("MatMul", [prev, "w"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    weight = (np.eye(512) * 0.5).astype(np.float32)
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 512])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    (root / "1").mkdir(parents=True)
    onnx.save(model, str(root / "1" / "model.onnx"))


def slow_repository() -> Path:
    return _cached("slow", {}, _slow_onnx)


def _types_ir(root: Path) -> None:
    import openvino as ov
    import openvino.opset13 as ops

    flag = ops.parameter([-1], ov.Type.boolean, name="flag")
    text = ops.parameter([-1], ov.Type.string, name="text")
    half = ops.parameter([-1], ov.Type.f16, name="half")
    count = ops.parameter([2, 2], ov.Type.i32, name="count")
    outs = []
    for node, name in ((ops.logical_not(flag), "not_flag"), (ops.add(half, ops.constant(np.float16(1))), "half_plus"),
                       (ops.multiply(count, ops.constant(np.int32(-3))), "count_times")):
        node.output(0).get_tensor().set_names({name})
        outs.append(ops.result(node))
    outs.append(ops.result(text))
    model = ov.Model(outs, [flag, text, half, count], "types")
    model.set_rt_info("types-demo", ["model_info", "model_type"])
    (root / "1").mkdir(parents=True)
    ov.save_model(model, str(root / "1" / "model.xml"))


def types_repository() -> Path:
    return _cached("types", {"rt_info": True}, _types_ir)


def _static_ir(root: Path) -> None:
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], ov.Type.f32, name="x")
    y = ops.multiply(x, ops.constant(np.float32(3)))
    y.output(0).get_tensor().set_names({"y"})
    (root / "1").mkdir(parents=True)
    ov.save_model(ov.Model([ops.result(y)], [x], "static"), str(root / "1" / "model.xml"))


def _fragile_ir(root: Path) -> None:
    """y = reshape(x, t): OpenVINO fails at run time when x's size does not match t."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([-1], ov.Type.f32, name="x")
    t = ops.parameter([2], ov.Type.i64, name="t")
    y = ops.reshape(x, t, special_zero=False)
    y.output(0).get_tensor().set_names({"y"})
    (root / "1").mkdir(parents=True)
    ov.save_model(ov.Model([ops.result(y)], [x, t], "fragile"), str(root / "1" / "model.xml"))


def fragile_repository() -> Path:
    return _cached("fragile", {}, _fragile_ir)


def static_repository() -> Path:
    return _cached("static", {}, _static_ir)


def tensor_config(tmp_dir: Path, with_llm: bool = False) -> Path:
    """A config.json serving the test models under several policies/shapes (and optionally the LLM)."""
    dense = str(dense_repository())
    entries = [
        {"name": "dense", "base_path": dense, "model_version_policy": {"latest": {"num_versions": 2}}, "nireq": 2},
        {"name": "dense_all", "base_path": dense, "model_version_policy": {"all": {}}},
        {"name": "dense_v1", "base_path": dense, "model_version_policy": {"specific": {"versions": [1]}}},
        {"name": "dense_static", "base_path": dense, "shape": "(2,4)"},
        {"name": "dense_b3", "base_path": dense, "batch_size": 3, "plugin_config": {"PERFORMANCE_HINT": "LATENCY"}},
        {"name": "types", "base_path": str(types_repository())},
        {"name": "auto", "base_path": str(static_repository()), "shape": "auto"},
        {"name": "fragile", "base_path": str(fragile_repository()), "nireq": 1},
        {"name": "slow", "base_path": str(slow_repository()), "nireq": 1, "max_queue_size": 2},
    ]
    if with_llm:
        from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf

        entries.append({"name": "smollm2", "base_path": str(packaged_gguf(DEFAULT_LLM_PACKAGE))})
    path = tmp_dir / "config.json"
    path.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    return path


def start_grpc_server(config: Path, log_name: str, *extra: str):
    """A started server on `config`, its gRPC port (a free one) kept as `server.grpc_port`."""
    from tests.server import ServerProcess, free_port

    grpc_port = free_port()
    server = ServerProcess("--config_path", str(config), "--port", str(grpc_port), *extra, log_name=log_name)
    server.grpc_port = grpc_port
    return server.start()


def start_tensor_server(tmp_dir: Path, log_name: str, *extra: str, with_llm: bool = False):
    return start_grpc_server(tensor_config(tmp_dir, with_llm), log_name, *extra)


def fp32_inputs(module, **arrays: np.ndarray) -> list:
    """The `InferInput`s of `module` (tritonclient.http or tritonclient.grpc): one FP32 tensor a keyword."""
    tensors = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors
