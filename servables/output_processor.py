"""Per-sequence post-processing of generated text: reasoning split, then tool-call parsing.

Both the streaming path (deltas) and the unary path (whole text) go through here, so they agree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .reasoning_parser import ReasoningParser
from .tool_parsers import ToolArgsDelta, ToolCall, ToolCallStart, ToolDelta, ToolParser


@dataclass
class OutputDelta:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolDelta] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_calls)


@dataclass
class ParsedOutput:
    content: str
    reasoning: str
    tool_calls: list[ToolCall]


class OutputProcessor:
    def __init__(self, reasoning: ReasoningParser | None = None, tools: ToolParser | None = None):
        self.reasoning = reasoning
        self.tools = tools
        self.tool_calls_seen = 0
        self.plain = reasoning is None and tools is None  # text passes through unchanged

    def feed(self, text: str) -> OutputDelta:
        return self._step(text, final=False)

    def finish(self) -> OutputDelta:
        return self._step("", final=True)

    def _step(self, text: str, final: bool) -> OutputDelta:
        out = OutputDelta()
        content = text
        if self.reasoning is not None:
            part = self.reasoning.finish() if final else self.reasoning.feed(text)
            out.reasoning, content = part.reasoning, part.content
        if self.tools is None:
            out.content = content
            return out
        parsed = self.tools.feed(content) if content else None
        if parsed is not None:
            out.content, out.tool_calls = parsed.content, parsed.calls
        if final:
            out.content += self.tools.finish().content
        self.tool_calls_seen += sum(1 for d in out.tool_calls if isinstance(d, ToolCallStart))
        return out

    def parse(self, text: str) -> ParsedOutput:
        """The whole output at once (unary responses)."""
        reasoning = ""
        content = text
        if self.reasoning is not None:
            head, tail = self.reasoning.feed(text), self.reasoning.finish()
            reasoning, content = head.reasoning + tail.reasoning, head.content + tail.content
        if self.tools is None:
            return ParsedOutput(content, reasoning, [])
        content, calls = self.tools.parse(content)
        self.tool_calls_seen = len(calls)
        return ParsedOutput(content, reasoning, calls)


def collect_calls(deltas: list[ToolDelta]) -> list[ToolCall]:
    """Rebuild calls from streamed deltas (used by tests and the Responses stream)."""
    calls: dict[int, ToolCall] = {}
    for delta in deltas:
        if isinstance(delta, ToolCallStart):
            calls[delta.index] = ToolCall(delta.id, delta.name, "")
        elif isinstance(delta, ToolArgsDelta):
            calls[delta.index].arguments += delta.text
    return list(calls.values())


def normalize_arguments(text: str) -> str:
    try:
        return json.dumps(json.loads(text or "{}"), ensure_ascii=False)
    except ValueError:
        return text
