"""Upper bounds of the integer request fields, shared by the protocol models.

The OpenVINO GenAI bindings take `size_t` / `int64` / `int32` arguments and raise `TypeError`
on a Python integer that does not fit (a 500 if it got that far). The protocol models bound every
integer field with these, so a huge value is a 400 naming the field, and the OpenAPI schema says so.
"""
from __future__ import annotations

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
