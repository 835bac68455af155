"""Read scalar metadata (architecture, context length) from a `.gguf` file header.

Only the key/value section is parsed, and only until the wanted keys are found, so the large
tokenizer arrays that follow are never read.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    return struct.unpack(fmt, f.read(size))[0]


def _read_string(f: BinaryIO) -> str:
    return f.read(_read(f, "<Q")).decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, vtype: int):
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == _STRING:
        return _read_string(f)
    if vtype == _ARRAY:
        item_type, count = _read(f, "<I"), _read(f, "<Q")
        if item_type in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        else:
            for _ in range(count):
                _read_value(f, item_type)
        return None  # arrays are skipped: we only need scalars
    raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf_context_length(path: Path) -> int | None:
    """`<architecture>.context_length` from the header, or None when absent or unreadable."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                return None
            _read(f, "<I")  # version
            _read(f, "<Q")  # tensor count
            kv_count = _read(f, "<Q")
            arch = None
            for _ in range(kv_count):
                key = _read_string(f)
                value = _read_value(f, _read(f, "<I"))
                if key == "general.architecture":
                    arch = value
                elif arch and key == f"{arch}.context_length":
                    return int(value)
    except (OSError, ValueError, struct.error):
        return None
    return None
