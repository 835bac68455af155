"""Tiny TensorFlow models written without TensorFlow: the protobuf wire format by hand.

`y = x * [1, 2, 3, 4]` for x [N, 4] float32, as a frozen GraphDef (`model.pb`, tensors `x:0`/`y:0`)
and as a SavedModel (`saved_model.pb` + `variables/`, signature `serving_default` with `x`/`y`).
Field numbers are those of TensorFlow's graph.proto, node_def.proto, attr_value.proto, tensor.proto,
meta_graph.proto and saved_model.proto.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.model_cache import cached

FACTORS = np.array([1, 2, 3, 4], dtype=np.float32)
DT_FLOAT = 1


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _bytes(field: int, data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(raw)) + raw


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _shape(dims) -> bytes:
    return b"".join(_bytes(2, _int(1, d)) for d in dims)


def _attr(name: str, value: bytes) -> bytes:
    return _bytes(5, _bytes(1, name) + _bytes(2, value))


def _node(name: str, op: str, inputs: tuple[str, ...], attrs: bytes) -> bytes:
    return _bytes(1, _bytes(1, name) + _bytes(2, op) + b"".join(_bytes(3, i) for i in inputs) + attrs)


def graph_def() -> bytes:
    tensor = _int(1, DT_FLOAT) + _bytes(2, _shape(FACTORS.shape)) + _bytes(4, FACTORS.tobytes())
    placeholder = _attr("dtype", _int(6, DT_FLOAT)) + _attr("shape", _bytes(7, _shape([-1, 4])))
    return (_node("x", "Placeholder", (), placeholder)
            + _node("c", "Const", (), _attr("dtype", _int(6, DT_FLOAT)) + _attr("value", _bytes(8, tensor)))
            + _node("y", "Mul", ("x", "c"), _attr("T", _int(6, DT_FLOAT)))
            + _bytes(4, _int(1, 1000)))


def _saved_model() -> bytes:
    def info(name: str) -> bytes:
        return _bytes(1, name) + _int(2, DT_FLOAT) + _bytes(3, _shape([-1, 4]))

    signature = (_bytes(1, _bytes(1, "x") + _bytes(2, info("x:0"))) + _bytes(2, _bytes(1, "y") + _bytes(2, info("y:0")))
                 + _bytes(3, "tensorflow/serving/predict"))
    meta_graph = _bytes(1, _bytes(4, "serve")) + _bytes(2, graph_def()) + _bytes(5, _bytes(1, "serving_default")
                                                                              + _bytes(2, signature))
    return _int(1, 1) + _bytes(2, meta_graph)


def _frozen(root: Path) -> None:
    (root / "1").mkdir(parents=True)
    (root / "1" / "model.pb").write_bytes(graph_def())
    # a frozen graph's tensors are named "x:0"/"y:0": mapping_config.json gives them plain names
    (root / "1" / "mapping_config.json").write_text(json.dumps({"inputs": {"x:0": "x"}, "outputs": {"y:0": "y"}}))


def _saved(root: Path) -> None:
    (root / "1" / "variables").mkdir(parents=True)
    (root / "1" / "saved_model.pb").write_bytes(_saved_model())


def tf_frozen_repository() -> Path:
    return cached("tf-frozen", {"v": 1}, _frozen)


def tf_saved_model_repository() -> Path:
    return cached("tf-saved-model", {"v": 1}, _saved)


def _tflite(root: Path) -> None:
    """The same model as a TensorFlow Lite flatbuffer, written with the `tflite` package's schema
    builders (no TensorFlow): one MUL of x [-1,4] by a constant."""
    import flatbuffers
    import tflite as T

    b = flatbuffers.Builder(1024)

    def ints(values):
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependInt32(value)
        return b.EndVector()

    def tables(start, items):
        start(b, len(items))
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    data = b.CreateByteVector(FACTORS.tobytes())
    T.BufferStart(b)
    empty = T.BufferEnd(b)
    T.BufferStart(b)
    T.BufferAddData(b, data)
    constant = T.BufferEnd(b)

    def tensor(name, shape, buffer, signature=None):
        name_offset, shape_offset = b.CreateString(name), ints(shape)
        signature_offset = ints(signature) if signature else None
        T.TensorStart(b)
        T.TensorAddShape(b, shape_offset)
        T.TensorAddType(b, T.TensorType.FLOAT32)
        T.TensorAddBuffer(b, buffer)
        T.TensorAddName(b, name_offset)
        if signature_offset is not None:
            T.TensorAddShapeSignature(b, signature_offset)  # -1: dynamic batch
        return T.TensorEnd(b)

    x, c, y = tensor("x", [1, 4], 0, [-1, 4]), tensor("c", [4], 1), tensor("y", [1, 4], 0, [-1, 4])
    T.MulOptionsStart(b)
    options = T.MulOptionsEnd(b)
    op_inputs, op_outputs = ints([0, 1]), ints([2])
    T.OperatorStart(b)
    T.OperatorAddOpcodeIndex(b, 0)
    T.OperatorAddInputs(b, op_inputs)
    T.OperatorAddOutputs(b, op_outputs)
    T.OperatorAddBuiltinOptionsType(b, T.BuiltinOptions.MulOptions)
    T.OperatorAddBuiltinOptions(b, options)
    operator = T.OperatorEnd(b)
    tensors, graph_inputs, graph_outputs = tables(T.SubGraphStartTensorsVector, [x, c, y]), ints([0]), ints([2])
    operators, graph_name = tables(T.SubGraphStartOperatorsVector, [operator]), b.CreateString("main")
    T.SubGraphStart(b)
    T.SubGraphAddTensors(b, tensors)
    T.SubGraphAddInputs(b, graph_inputs)
    T.SubGraphAddOutputs(b, graph_outputs)
    T.SubGraphAddOperators(b, operators)
    T.SubGraphAddName(b, graph_name)
    subgraph = T.SubGraphEnd(b)
    T.OperatorCodeStart(b)
    T.OperatorCodeAddBuiltinCode(b, T.BuiltinOperator.MUL)
    T.OperatorCodeAddDeprecatedBuiltinCode(b, T.BuiltinOperator.MUL)
    T.OperatorCodeAddVersion(b, 1)
    code = T.OperatorCodeEnd(b)
    codes, subgraphs = tables(T.ModelStartOperatorCodesVector, [code]), tables(T.ModelStartSubgraphsVector, [subgraph])
    buffers, description = tables(T.ModelStartBuffersVector, [empty, constant]), b.CreateString("y = x * c")
    T.ModelStart(b)
    T.ModelAddVersion(b, 3)
    T.ModelAddOperatorCodes(b, codes)
    T.ModelAddSubgraphs(b, subgraphs)
    T.ModelAddBuffers(b, buffers)
    T.ModelAddDescription(b, description)
    b.Finish(T.ModelEnd(b), file_identifier=b"TFL3")
    (root / "1").mkdir(parents=True)
    (root / "1" / "model.tflite").write_bytes(bytes(b.Output()))


def tflite_repository() -> Path:
    return cached("tflite-mul", {"v": 1}, _tflite)


PADDLE_SCALE = 2.0


def _paddle_program() -> bytes:
    """A PaddlePaddle ProgramDesc (framework.proto): feed x [-1,4] -> scale(2.0) -> y -> fetch; no
    parameters, so no .pdiparams file."""
    import struct

    fp32, lod_tensor, feed_list, fetch_list = 5, 7, 9, 10
    attr_int, attr_float, attr_bool = 0, 1, 6

    def variable(name: str, var_type: int, dims: list[int] | None) -> bytes:
        if dims is None:  # feed/fetch holders
            return _bytes(3, _bytes(1, name) + _bytes(2, _int(1, var_type)) + _int(3, 1))
        tensor = _int(1, fp32) + b"".join(_int(2, d) for d in dims)
        return _bytes(3, _bytes(1, name) + _bytes(2, _int(1, var_type) + _bytes(3, _bytes(1, tensor) + _int(2, 0)))
                      + _int(3, 0))

    def slots(field: int, slots_: dict[str, str]) -> bytes:
        return b"".join(_bytes(field, _bytes(1, parameter) + _bytes(2, argument))
                        for parameter, argument in slots_.items())

    def attribute(name: str, kind: int, value: float | int) -> bytes:
        if kind == attr_float:
            payload = _varint(4 << 3 | 5) + struct.pack("<f", value)
        else:
            payload = _int(3 if kind == attr_int else 10, int(value))
        return _bytes(4, _bytes(1, name) + _int(2, kind) + payload)

    def op(op_type: str, inputs: dict[str, str], outputs: dict[str, str], attrs: bytes) -> bytes:
        return _bytes(4, slots(1, inputs) + slots(2, outputs) + _bytes(3, op_type) + attrs)

    block = (_int(1, 0) + _int(2, -1) + variable("feed", feed_list, None) + variable("fetch", fetch_list, None)
             + variable("x", lod_tensor, [-1, 4]) + variable("y", lod_tensor, [-1, 4])
             + op("feed", {"X": "feed"}, {"Out": "x"}, attribute("col", attr_int, 0))
             + op("scale", {"X": "x"}, {"Out": "y"}, attribute("scale", attr_float, PADDLE_SCALE)
                  + attribute("bias", attr_float, 0.0) + attribute("bias_after_scale", attr_bool, 1))
             + op("fetch", {"X": "y"}, {"Out": "fetch"}, attribute("col", attr_int, 0)))
    return _bytes(1, block) + _bytes(4, _int(1, 0))


def _paddle(root: Path) -> None:
    (root / "1").mkdir(parents=True)
    (root / "1" / "model.pdmodel").write_bytes(_paddle_program())


def paddle_repository() -> Path:
    return cached("paddle-scale", {"v": 1}, _paddle)
