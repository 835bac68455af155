"""Hermes / Qwen: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, one block per call."""
from __future__ import annotations

from typing import Any

import openvino_genai as ov_genai

from ..structured_output import json_element
from .base import ToolParser, call_schema
from .json_scan import split_objects

S = ov_genai.StructuredOutputConfig
OPEN, CLOSE = "<tool_call>", "</tool_call>"


class HermesToolParser(ToolParser):
    name = "hermes"
    markers = (OPEN,)

    def split_calls(self, section: str) -> list[str] | None:
        objects = []
        for block in section.split(OPEN)[1:]:
            block = block.split(CLOSE, 1)[0]
            found = split_objects(block)
            if not found:
                if block.strip():
                    break
                continue
            objects.append(found[0])
        return objects

    def guide(self, tools: list[dict[str, Any]], parallel: bool) -> ov_genai.StructuredOutputConfig:
        tags = [S.Tag(OPEN + "\n", json_element(call_schema(t)), "\n" + CLOSE) for t in tools]
        return S(structural_tags_config=S.TriggeredTags(
            triggers=[OPEN], tags=tags, at_least_one=True, stop_after_first=not parallel))
