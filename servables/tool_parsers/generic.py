"""Generic JSON tool calls: `{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}` or one bare
`{"name": ..., "arguments": {...}}` object, at the start of the output.

This is the format openvino_genai's template polyfill shows a model whose chat template has no
tool support (its "Example tool call syntax"), so it is the default for such models.
"""
from __future__ import annotations

from typing import Any

import openvino_genai as ov_genai

from ..structured_output import json_constraint
from .base import ToolParser, call_schema
from .json_scan import object_keys, skip_space, split_objects

S = ov_genai.StructuredOutputConfig
CALL_KEYS = ("name", "arguments", "parameters")


class GenericJsonToolParser(ToolParser):
    name = "generic"
    json_openers = "{"

    def split_calls(self, section: str) -> list[str] | None:
        keys = object_keys(section.lstrip())
        if keys.first_key is None:
            return []
        if keys.first_key in CALL_KEYS:
            return split_objects(section)
        if keys.first_key != "tool_calls":
            return None
        if "tool_calls" not in keys.values:
            return []
        start, _ = keys.values["tool_calls"]
        body = section.lstrip()
        if start >= len(body):
            return []
        if body[start] != "[":
            return None
        return split_objects(body, skip_space(body, start + 1))

    def guide(self, tools: list[dict[str, Any]], parallel: bool) -> ov_genai.StructuredOutputConfig:
        array: dict[str, Any] = {"type": "array", "items": {"anyOf": [call_schema(t) for t in tools]},
                                 "minItems": 1}
        if not parallel:
            array["maxItems"] = 1
        schema = {"type": "object", "properties": {"tool_calls": array}, "required": ["tool_calls"],
                  "additionalProperties": False}
        return json_constraint(schema)
