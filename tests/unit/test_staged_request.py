"""`StagedRequest` on a real compiled OpenVINO model: every call answers for its own inputs, whether
they are copied into the bound buffers (small), bound over their own memory (large) or change shape."""
from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from servables.staged_request import STAGE_MAX_BYTES, StagedRequest


@pytest.fixture(scope="module")
def compiled() -> ov.CompiledModel:
    """y = 3x + bias over a dynamic [N, M] float input and a dynamic [M] int input (as float)."""
    x = ops.parameter([-1, -1], ov.Type.f32, name="x")
    bias = ops.parameter([-1], ov.Type.i32, name="bias")
    y = ops.add(ops.multiply(x, ops.constant(np.float32(3))), ops.convert(bias, ov.Type.f32))
    y.output(0).get_tensor().set_names({"y"})
    model = ov.Model([ops.result(y)], [x, bias], "affine")
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def _run(staged: StagedRequest, x: np.ndarray, bias: np.ndarray) -> np.ndarray:
    staged.infer({"x": x, "bias": bias})
    return staged.request.get_output_tensor(0).data.copy()


def test_each_call_answers_for_its_own_inputs_across_buffer_reuse_shape_changes_and_large_inputs(compiled):
    staged = StagedRequest(compiled.create_infer_request())
    rng = np.random.default_rng(0)
    rows_over_stage = STAGE_MAX_BYTES // (4 * 4) + 1  # [rows, 4] float32 just over the staging limit
    for rows, cols in [(1, 4), (1, 4), (2, 4), (1, 4), (rows_over_stage, 4), (1, 4), (1, 4), (3, 2)]:
        x = rng.standard_normal((rows, cols)).astype(np.float32)
        bias = rng.integers(-5, 5, cols).astype(np.int32)
        expected = 3 * x + bias
        got = _run(staged, x, bias)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        x[...] = 0  # the caller's array may change after the call: the next call must not see it
    assert np.array_equal(_run(staged, np.ones((1, 4), np.float32), np.zeros(4, np.int32)), np.full((1, 4), 3.0))


def test_the_callers_arrays_are_left_as_they_were(compiled):
    staged = StagedRequest(compiled.create_infer_request())
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    bias = np.array([1, 2, 3, 4], np.int32)
    _run(staged, x, bias)
    _run(staged, x + 1, bias)
    assert np.array_equal(x, np.arange(8, dtype=np.float32).reshape(2, 4))
    assert np.array_equal(bias, [1, 2, 3, 4])
