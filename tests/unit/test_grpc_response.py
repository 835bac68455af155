"""KServe gRPC responses built from cached templates: each response carries its own request's id,
output shapes and bytes, whatever was answered before."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from gateway.grpc import kserve_v2_pb2 as pb
from gateway.grpc.kserve_service import _response


def _deployment(name: str, version: int) -> SimpleNamespace:
    return SimpleNamespace(servable=SimpleNamespace(name=name, version=version))


def test_each_response_has_its_own_id_shapes_and_data():
    model = _deployment("dense", 3)
    first = _response(pb.ModelInferRequest(id="a"), model, {"y": np.ones((1, 3), np.float32)}, [])
    second = _response(pb.ModelInferRequest(id="b"), model, {"y": np.full((2, 3), 2, np.float32)}, [])
    third = _response(pb.ModelInferRequest(), model, {"y": np.zeros((1, 3), np.float32)}, [])
    assert (first.id, second.id, third.id) == ("a", "b", "")
    assert [list(r.outputs[0].shape) for r in (first, second, third)] == [[1, 3], [2, 3], [1, 3]]
    assert np.frombuffer(second.raw_output_contents[0], np.float32).tolist() == [2.0] * 6
    assert np.frombuffer(third.raw_output_contents[0], np.float32).tolist() == [0.0] * 3
    assert len(first.raw_output_contents) == len(third.raw_output_contents) == 1


def test_requested_outputs_model_and_version_are_those_of_the_request():
    outputs = {"y": np.ones((1, 3), np.float32), "z": np.array([[1, 2]], np.int64)}
    both = _response(pb.ModelInferRequest(), _deployment("m", 1), outputs, [])
    only_z = _response(pb.ModelInferRequest(), _deployment("m", 2), outputs, ["z"])
    assert [(o.name, o.datatype) for o in both.outputs] == [("y", "FP32"), ("z", "INT64")]
    assert [(o.name, o.datatype) for o in only_z.outputs] == [("z", "INT64")]
    assert (both.model_version, only_z.model_version) == ("1", "2")
    assert np.frombuffer(only_z.raw_output_contents[0], np.int64).tolist() == [1, 2]
