"""JSON in and out of the hot request paths with orjson (byte-identical meaning, a fraction of the CPU).

`FastJSONResponse` renders like Starlette's `JSONResponse` (compact, UTF-8, not ASCII-escaped) and
also takes numpy arrays; `loads` parses with orjson and falls back to the standard library for the
few inputs orjson refuses or reads differently (NaN/Infinity literals, integers beyond 64 bits, lone
surrogates), so accepted inputs and error messages stay those of `json.loads`.
"""
from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.responses import JSONResponse

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_LONG_DIGITS = re.compile(rb"[0-9]{20}")  # orjson reads integers beyond 64 bits as floats: leave those to json


def dumps(content: Any, allow_nan: bool = False) -> bytes:
    """Compact JSON bytes. orjson writes NaN/Infinity as null: with `allow_nan`, content that may hold
    them goes through the standard library (its `NaN` literals), as do integers beyond 64 bits."""
    if allow_nan:
        return json.dumps(content, separators=(",", ":")).encode()
    try:
        return orjson.dumps(content, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
        return json.dumps(content, separators=(",", ":")).encode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """`json.loads`, faster: orjson first, the standard library for what orjson rejects or reads
    differently (same values, same errors)."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw):
        return json.loads(data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(data)


class FastJSONResponse(JSONResponse):
    """A JSONResponse rendered by orjson."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits echoed from the request
            return super().render(content)
