"""Mistral: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.

`[TOOL_CALLS]` is a special token that detokenization with skip_special_tokens drops, so a JSON
array of calls at the start of the output is recognised too."""
from __future__ import annotations

from typing import Any

import openvino_genai as ov_genai

from ..structured_output import json_constraint
from .base import ToolParser, call_schema
from .json_scan import object_keys, skip_space, split_objects

S = ov_genai.StructuredOutputConfig
MARKER = "[TOOL_CALLS]"


class MistralToolParser(ToolParser):
    name = "mistral"
    markers = (MARKER,)
    json_openers = "["

    def split_calls(self, section: str) -> list[str] | None:
        if MARKER.startswith(section):
            return []
        body = section[len(MARKER):] if section.startswith(MARKER) else section
        i = skip_space(body, 0)
        if i >= len(body):
            return []
        if body[i] != "[":
            return None
        j = skip_space(body, i + 1)
        if j < len(body) and body[j] != "{":
            return None
        objects = split_objects(body, i + 1)
        if objects and object_keys(objects[0]).first_key not in (None, "name", "arguments"):
            return None
        return objects

    def guide(self, tools: list[dict[str, Any]], parallel: bool) -> ov_genai.StructuredOutputConfig:
        schema: dict[str, Any] = {"type": "array", "items": {"anyOf": [call_schema(t) for t in tools]},
                                  "minItems": 1}
        if not parallel:
            schema["maxItems"] = 1
        return json_constraint(schema)
