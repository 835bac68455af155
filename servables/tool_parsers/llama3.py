"""Llama 3.x JSON tool calls: `{"name": ..., "parameters": {...}}` (after an optional `<|python_tag|>`),
several separated by `;`. The output must start with the call."""
from __future__ import annotations

from typing import Any

import openvino_genai as ov_genai

from ..structured_output import json_constraint
from .base import ToolParser, call_schema
from .json_scan import object_keys, split_objects

S = ov_genai.StructuredOutputConfig
PYTHON_TAG = "<|python_tag|>"


class Llama3ToolParser(ToolParser):
    name = "llama3"
    markers = (PYTHON_TAG,)
    json_openers = "{"

    def split_calls(self, section: str) -> list[str] | None:
        body = section[len(PYTHON_TAG):] if section.startswith(PYTHON_TAG) else section
        objects = split_objects(body)
        if objects:
            first = object_keys(objects[0]).first_key
            if first is not None and first not in ("name", "parameters", "arguments"):
                return None
        return objects

    def guide(self, tools: list[dict[str, Any]], parallel: bool) -> ov_genai.StructuredOutputConfig:
        schema = {"anyOf": [call_schema(t, "parameters") for t in tools]}
        return json_constraint(schema)
