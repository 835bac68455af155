"""Tensor wire encodings shared by the KServe and TFS front ends: JSON data, raw bytes, BYTES framing.

Every decoding error is an `InvalidRequest` that names the tensor.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

from servables.errors import InvalidRequest
from servables.tensor import DATATYPE_TO_NUMPY

from .limits import INT64_MAX

KSERVE_DATATYPES = tuple(DATATYPE_TO_NUMPY)
_SMALL_DIM = 2**15 - 1


def numpy_dtype(name: str, datatype: str) -> np.dtype:
    dtype = DATATYPE_TO_NUMPY.get(datatype)
    if dtype is None:
        raise InvalidRequest(f"Input {name!r}: unsupported datatype {datatype!r} "
                             f"(expected one of {', '.join(KSERVE_DATATYPES)})", name)
    return dtype


def check_shape(name: str, shape: Any) -> list[int]:
    """A list of non-negative integers whose element count fits int64 (numpy and OpenVINO count in it)."""
    if type(shape) is list and len(shape) <= 4:  # the common case, without math.prod: 4 dims < 2**15 fit int64
        for d in shape:
            if type(d) is not int or not 0 <= d <= _SMALL_DIM:
                break
        else:
            return shape
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                      for d in shape):
        raise InvalidRequest(f"Input {name!r}: shape must be a list of non-negative integers", name)
    if any(d > INT64_MAX for d in shape) or math.prod(shape) > INT64_MAX:
        raise InvalidRequest(f"Input {name!r}: shape {list(shape)} has more elements than int64 can count", name)
    return [int(d) for d in shape]


def element_count(shape: list[int]) -> int:
    """Elements of a checked shape (exact: numpy's prod would wrap around in int64)."""
    return math.prod(shape)


def _flatten(data: Any) -> Iterable[Any]:
    if isinstance(data, (list, tuple)):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _as_bytes(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidRequest(f"Input {name!r}: BYTES elements must be strings", name)


def bytes_array(values: list[bytes], shape: list[int]) -> np.ndarray:
    """A string tensor as OpenVINO takes it (numpy `S` dtype)."""
    array = np.array(values, dtype=np.bytes_) if values else np.zeros(0, dtype="S1")
    return array.reshape(shape)


def array_from_list(name: str, datatype: str, shape: list[int] | None, data: Any) -> np.ndarray:
    """JSON `data` (nested or flat) -> array of `datatype`. With `shape`, only the element count must
    match (KServe); without, the nesting is the shape (TFS). Checked with numpy, not per element."""
    dtype = numpy_dtype(name, datatype)
    if datatype == "BYTES":
        flat = list(_flatten(data))
        shape = shape if shape is not None else list(np.shape(np.array(data, dtype=object)))
        _check_count(name, shape, len(flat))
        return bytes_array([_as_bytes(name, v) for v in flat], shape)
    try:
        values = np.asarray(data)
    except ValueError as exc:
        raise InvalidRequest(f"Input {name!r}: ragged data: {exc}", name) from exc
    if shape is None:
        shape = list(values.shape)
    _check_count(name, shape, values.size)
    kind = values.dtype.kind
    if values.size and datatype == "BOOL" and kind != "b":
        raise InvalidRequest(f"Input {name!r}: BOOL data must be true/false", name)
    if values.size and datatype != "BOOL" and kind not in "iuf":
        raise InvalidRequest(f"Input {name!r}: {datatype} data must be numbers", name)
    if values.size and dtype.kind in "iu":
        if kind == "f" and not np.all(np.mod(values, 1) == 0):
            raise InvalidRequest(f"Input {name!r}: {datatype} data must be integers", name)
        limits = np.iinfo(dtype)
        if values.min() < limits.min or values.max() > limits.max:
            raise InvalidRequest(f"Input {name!r}: data does not fit {datatype}", name)
    return values.astype(dtype).reshape(shape)


def _check_count(name: str, shape: list[int], count: int) -> None:
    expected = element_count(shape)
    if count != expected:
        raise InvalidRequest(f"Input {name!r}: shape {shape} needs {expected} elements, data has {count}", name)


def split_bytes_elements(name: str, raw: bytes) -> list[bytes]:
    """KServe BYTES framing: each element is a 4-byte little-endian length, then the bytes."""
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidRequest(f"Input {name!r}: truncated BYTES element length", name)
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidRequest(f"Input {name!r}: BYTES element longer than the data", name)
        values.append(bytes(raw[offset:offset + length]))
        offset += length
    return values


def array_from_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    dtype = numpy_dtype(name, datatype)
    count = element_count(shape)
    if datatype == "BYTES":
        values = split_bytes_elements(name, raw)
        if len(values) != count:
            raise InvalidRequest(f"Input {name!r}: shape {shape} needs {count} elements, data has {len(values)}",
                                 name)
        return bytes_array(values, shape)
    if len(raw) != count * dtype.itemsize:
        raise InvalidRequest(f"Input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes, "
                             f"got {len(raw)}", name)
    return np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)  # writable memory of its own, copied once


def array_to_raw(array: np.ndarray) -> bytes:
    if array.dtype.kind in ("S", "U", "O"):
        return b"".join(struct.pack("<I", len(v)) + v for v in (_element_bytes(x) for x in array.reshape(-1)))
    return np.ascontiguousarray(array).tobytes()


def _element_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def array_to_list(array: np.ndarray) -> list[Any]:
    """Flat JSON list (KServe responses are row-major flat)."""
    if array.dtype.kind in ("S", "U", "O"):
        return [_element_bytes(v).decode("utf-8", errors="replace") for v in array.reshape(-1)]
    return array.reshape(-1).tolist()
