"""The tool-call parser interface: text deltas in, structured deltas out.

A parser splits model output into plain content and tool calls. It is fed the output as it is
generated (`feed`), and returns what can be said for sure so far: content, the start of a call
(id and name) and fragments of its arguments. `finish` flushes what was held back. The unary
path feeds the whole text once, so streaming and unary share one implementation.

Each format only says where its tool section starts (`markers`, or JSON at the very start of the
output) and how the section splits into call objects (`split_calls`); `guide` builds the
constraint that makes the model emit a valid call in that format (tool-guided generation).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import openvino_genai as ov_genai

from .json_scan import CallScan, scan_call


@dataclass
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass
class ToolArgsDelta:
    index: int
    text: str


ToolDelta = ToolCallStart | ToolArgsDelta


@dataclass
class ParsedDelta:
    content: str = ""
    calls: list[ToolDelta] = field(default_factory=list)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass
class _CallState:
    id: str = ""
    name: str | None = None
    args_sent: int = 0
    arguments: str = ""
    complete: bool = False


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def call_schema(tool: dict[str, Any], args_key: str = "arguments") -> dict[str, Any]:
    function = tool["function"]
    parameters = function.get("parameters") or {"type": "object"}
    return {"type": "object", "properties": {"name": {"const": function["name"]}, args_key: parameters},
            "required": ["name", args_key], "additionalProperties": False}


class ToolParser:
    name: ClassVar[str]
    markers: ClassVar[tuple[str, ...]] = ()
    json_openers: ClassVar[str] = ""  # the tool section may also start with one of these at output start

    def __init__(self, tool_names: frozenset[str] | None = None) -> None:
        self.tool_names = tool_names  # when given, an object naming another function is not a call
        self._text = ""
        self._emitted = 0  # content emitted up to here
        self._section: int | None = None
        self._abandoned = False
        self._calls: list[_CallState] = []

    # --- per format ------------------------------------------------------------------------

    def split_calls(self, section: str) -> list[str] | None:
        """Call objects in the tool section (the last may be incomplete); None: not tool calls after all."""
        raise NotImplementedError

    def guide(self, tools: list[dict[str, Any]], parallel: bool) -> ov_genai.StructuredOutputConfig:
        """A constraint under which the model must call one of `tools` in this format."""
        raise NotImplementedError

    # --- shared machinery ------------------------------------------------------------------

    @property
    def calls_started(self) -> int:
        return sum(1 for c in self._calls if c.name is not None)

    def feed(self, text: str) -> ParsedDelta:
        self._text += text
        out = ParsedDelta()
        if self._section is None:
            start = None if self._abandoned else self._find_start()
            if start is None:
                safe = len(self._text) - self._holdback()
                out.content, self._emitted = self._text[self._emitted:safe], max(self._emitted, safe)
                return out
            out.content, self._emitted, self._section = self._text[self._emitted:start], start, start
        self._update(out)
        return out

    def finish(self) -> ParsedDelta:
        out = ParsedDelta()
        if self._section is not None and not self.calls_started:
            self._section = None  # looked like a call but never became one: it is content
        if self._section is None:
            out.content = self._text[self._emitted:]
            self._emitted = len(self._text)
        return out

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        """Unary: content and complete calls; output with a broken call is returned as content."""
        content = self.feed(text).content + self.finish().content
        calls = []
        for state in self._calls:
            if state.name is None:
                continue
            try:
                arguments = json.dumps(json.loads(state.arguments or "{}"), ensure_ascii=False)
            except ValueError:
                return text, []
            if not state.complete:
                return text, []
            calls.append(ToolCall(state.id, state.name, arguments))
        return content, calls

    def _find_start(self) -> int | None:
        found = [i for i in (self._text.find(m) for m in self.markers) if i >= 0]
        if found:
            return min(found)
        if self.json_openers and self._emitted == 0:
            stripped = self._text.lstrip()
            if stripped and stripped[0] in self.json_openers:
                return len(self._text) - len(stripped)
        return None

    def _holdback(self) -> int:
        """Trailing characters that might still become a marker (or the JSON start of the output)."""
        if self.json_openers and self._emitted == 0 and not self._text.strip() and not self._abandoned:
            return len(self._text)
        hold = 0
        for marker in self.markers:
            for size in range(min(len(marker) - 1, len(self._text)), 0, -1):
                if self._text.endswith(marker[:size]):
                    hold = max(hold, size)
                    break
        return hold

    def _update(self, out: ParsedDelta) -> None:
        objects = self.split_calls(self._text[self._section:])
        if objects is None:  # not a tool call: everything so far and from now on is content
            self._section, self._abandoned = None, True
            out.content += self._text[self._emitted:]
            self._emitted = len(self._text)
            return
        for index, obj in enumerate(objects):
            if index >= len(self._calls):
                self._calls.append(_CallState())
            state = self._calls[index]
            scan: CallScan = scan_call(obj)
            if state.name is None:
                if scan.name is None:
                    break
                if self.tool_names is not None and scan.name not in self.tool_names and not self.calls_started:
                    self._section, self._abandoned = None, True  # e.g. {"name": "Bob"} is an answer, not a call
                    out.content += self._text[self._emitted:]
                    self._emitted = len(self._text)
                    return
                state.id, state.name = new_call_id(), scan.name
                out.calls.append(ToolCallStart(index, state.id, scan.name))
            if scan.arguments is not None and len(scan.arguments) > state.args_sent:
                out.calls.append(ToolArgsDelta(index, scan.arguments[state.args_sent:]))
                state.args_sent = len(scan.arguments)
            if scan.arguments is not None:
                state.arguments = scan.arguments
            state.complete = scan.complete
