"""The KServe/TFS tensor codec on synthetic arrays: raw bytes, BYTES framing, JSON data, errors."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from gateway import tensor_codec as codec
from servables.errors import InvalidRequest


def test_bool_tensor_round_trips_through_raw_bytes():
    flags = np.array([[True, False], [False, True]])
    raw = codec.array_to_raw(flags)
    assert raw == b"\x01\x00\x00\x01"
    back = codec.array_from_raw("flag", "BOOL", [2, 2], raw)
    assert back.dtype == np.bool_ and np.array_equal(back, flags)


@pytest.mark.parametrize("datatype,values", [
    pytest.param("FP16", [0.5, -2.0, 65504.0], id="FP16"),
    pytest.param("FP32", [1.5, -0.0, 3.4e38], id="FP32"),
    pytest.param("INT8", [-128, 0, 127], id="INT8"),
    pytest.param("UINT64", [0, 1, 2**64 - 1], id="UINT64"),
    pytest.param("INT64", [-(2**63), 7, 2**63 - 1], id="INT64"),
])
def test_numeric_tensors_round_trip_through_little_endian_raw_bytes(datatype, values):
    array = np.array(values, dtype=codec.numpy_dtype("x", datatype))
    raw = codec.array_to_raw(array)
    assert len(raw) == array.nbytes
    back = codec.array_from_raw("x", datatype, [3], raw)
    assert back.dtype == array.dtype and np.array_equal(back, array)
    assert back.flags.writeable  # a copy, not a view of the request body


def test_bytes_elements_are_framed_by_a_little_endian_length():
    raw = codec.array_to_raw(np.array([b"ab", b"", "ü".encode()], dtype=object))
    assert raw == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0) + struct.pack("<I", 2) + "ü".encode()
    assert codec.split_bytes_elements("t", raw) == [b"ab", b"", "ü".encode()]


def test_bytes_tensor_keeps_nul_and_non_utf8_bytes():
    values = [b"\x00\xff", b"plain"]
    raw = b"".join(struct.pack("<I", len(v)) + v for v in values)
    back = codec.array_from_raw("t", "BYTES", [2], raw)
    assert back.shape == (2,) and list(back) == values


@pytest.mark.parametrize("raw,fragment", [
    pytest.param(b"\x01\x00", "truncated BYTES element length", id="short-length"),
    pytest.param(struct.pack("<I", 9) + b"abc", "longer than the data", id="element-past-the-end"),
])
def test_malformed_bytes_framing_is_refused_naming_the_tensor(raw, fragment):
    with pytest.raises(InvalidRequest, match=fragment) as info:
        codec.split_bytes_elements("text", raw)
    assert info.value.param == "text" and "'text'" in info.value.message


def test_raw_data_must_have_exactly_the_bytes_the_shape_needs():
    with pytest.raises(InvalidRequest, match=r"needs 8 bytes, got 4"):
        codec.array_from_raw("x", "FP32", [2], b"\x00" * 4)
    with pytest.raises(InvalidRequest, match="needs 3 elements, data has 2"):
        codec.array_from_raw("t", "BYTES", [3], struct.pack("<I", 0) * 2)


def test_json_data_with_a_shape_only_needs_the_element_count():
    array = codec.array_from_list("x", "FP32", [2, 2], [1, 2, 3, 4])  # KServe: flat data, explicit shape
    assert array.dtype == np.float32 and array.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(InvalidRequest, match="needs 4 elements, data has 3"):
        codec.array_from_list("x", "FP32", [2, 2], [1, 2, 3])


def test_json_data_without_a_shape_takes_the_nesting_as_shape():
    assert codec.array_from_list("x", "INT32", None, [[1, 2, 3], [4, 5, 6]]).shape == (2, 3)  # TFS
    assert codec.array_from_list("t", "BYTES", None, [["a", "b"]]).shape == (1, 2)


def test_ragged_json_data_is_refused():
    with pytest.raises(InvalidRequest, match="ragged"):
        codec.array_from_list("x", "FP32", None, [[1, 2], [3]])


@pytest.mark.parametrize("datatype,data,fragment", [
    pytest.param("BOOL", [1, 0], "true/false", id="bool-from-numbers"),
    pytest.param("FP32", ["1.0"], "must be numbers", id="float-from-strings"),
    pytest.param("INT8", [1.5], "must be integers", id="int-from-fraction"),
    pytest.param("INT8", [300], "does not fit INT8", id="int8-overflow"),
    pytest.param("UINT8", [-1], "does not fit UINT8", id="uint8-negative"),
    pytest.param("BYTES", ["ok", 5], "must be strings", id="bytes-from-number"),
])
def test_json_values_of_the_wrong_kind_are_refused(datatype, data, fragment):
    with pytest.raises(InvalidRequest, match=fragment) as info:
        codec.array_from_list("x", datatype, [len(data)], data)
    assert info.value.param == "x"


def test_integral_floats_are_accepted_for_integer_tensors():
    array = codec.array_from_list("x", "INT32", [2], [1.0, -2.0])
    assert array.dtype == np.int32 and array.tolist() == [1, -2]


def test_unknown_datatype_lists_the_supported_ones():
    with pytest.raises(InvalidRequest, match="unsupported datatype 'FP33'") as info:
        codec.numpy_dtype("x", "FP33")
    assert "FP32" in info.value.message and "BYTES" in info.value.message


@pytest.mark.parametrize("shape", [
    pytest.param([2, -1], id="negative"), pytest.param([True, 2], id="bool"), pytest.param([2.0], id="float"),
    pytest.param("2,2", id="string"),
])
def test_shape_must_be_a_list_of_non_negative_integers(shape):
    with pytest.raises(InvalidRequest, match="non-negative integers"):
        codec.check_shape("x", shape)


def test_valid_shapes_come_back_as_int_lists():
    assert codec.check_shape("x", (2, 0, 3)) == [2, 0, 3]
    assert codec.check_shape("x", []) == []


def test_json_output_is_flat_and_bytes_come_back_as_text():
    assert codec.array_to_list(np.arange(6, dtype=np.int16).reshape(2, 3)) == [0, 1, 2, 3, 4, 5]
    assert codec.array_to_list(np.array([[b"a", "é".encode()]], dtype=object)) == ["a", "é"]
    assert codec.array_to_list(np.array([b"\xff"], dtype=object)) == ["\ufffd"]  # not UTF-8: replaced


def test_an_empty_bytes_tensor_is_valid():
    empty = codec.array_from_raw("t", "BYTES", [0], b"")
    assert empty.shape == (0,)
    assert codec.array_from_list("t", "BYTES", [0, 2], []).shape == (0, 2)


@pytest.mark.parametrize("shape", [[2**32, 2**32], [2**63], [2**64, 0], [3, 2**62]])
def test_shapes_whose_element_count_overflows_int64_are_invalid(shape):
    with pytest.raises(InvalidRequest, match="int64"):
        codec.check_shape("x", shape)


def test_element_count_is_exact_where_numpy_would_wrap():
    assert codec.element_count([2**31, 2**31]) == 2**62
    assert codec.element_count([]) == 1
