"""gateway/fast_json.py answers exactly as the standard library did on the request paths it replaced."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gateway import fast_json


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, "x", null, true]}', '{"v": NaN, "w": -Infinity}',
                                  '{"big": 123456789012345678901234567890}', '{"s": "\\ud800"}'])
def test_loads_accepts_what_json_accepts(text):
    assert json.dumps(fast_json.loads(text.encode())) == json.dumps(json.loads(text))


def test_loads_error_message_is_the_standard_librarys():
    with pytest.raises(ValueError) as ours:
        fast_json.loads(b'{"inputs": [}')
    with pytest.raises(ValueError) as theirs:
        json.loads(b'{"inputs": [}')
    assert str(ours.value) == str(theirs.value)


def test_dumps_matches_compact_json_and_takes_numpy():
    content = {"data": [0.1, 1e-05, 3.0, -2], "name": "é", "id": 2**70}
    assert json.loads(fast_json.dumps(content)) == content
    assert fast_json.dumps({"x": np.arange(3, dtype=np.float32)}) == b'{"x":[0.0,1.0,2.0]}'
    assert fast_json.dumps({"v": float("nan")}, allow_nan=True) == b'{"v":NaN}'


def test_response_renders_big_integers_like_starlette():
    from starlette.responses import JSONResponse

    content = {"document": {"text": "é", "id": 2**70}, "score": 0.5}
    assert fast_json.FastJSONResponse(content).body == JSONResponse(content).body
