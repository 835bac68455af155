"""Tool-call parsers, one module per model family; chosen by name or detected from the chat template."""
from __future__ import annotations

from .base import ParsedDelta, ToolArgsDelta, ToolCall, ToolCallStart, ToolDelta, ToolParser
from .generic import GenericJsonToolParser
from .hermes import HermesToolParser
from .llama3 import Llama3ToolParser
from .mistral import MistralToolParser

PARSERS: dict[str, type[ToolParser]] = {
    "hermes": HermesToolParser, "hermes3": HermesToolParser, "qwen3": HermesToolParser,
    "llama3": Llama3ToolParser, "mistral": MistralToolParser, "generic": GenericJsonToolParser,
}


def parser_class(name: str) -> type[ToolParser] | None:
    """The parser named `name` ("none" disables parsing); KeyError for unknown names."""
    if name == "none":
        return None
    return PARSERS[name]


def detect(chat_template: str) -> str:
    """The parser whose format the chat template teaches the model."""
    if "<tool_call>" in chat_template:
        return "hermes"
    if "[TOOL_CALLS]" in chat_template:
        return "mistral"
    if "<|python_tag|>" in chat_template or "ipython" in chat_template:
        return "llama3"
    return "generic"


__all__ = ["PARSERS", "ParsedDelta", "ToolArgsDelta", "ToolCall", "ToolCallStart", "ToolDelta", "ToolParser",
           "detect", "parser_class"]
