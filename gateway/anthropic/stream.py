"""Anthropic's SSE event sequence for a streamed message (Anthropic's "Streaming Messages" documentation).

`message_start`, `ping`, then per content block `content_block_start`, `content_block_delta`s
(`thinking_delta`, `text_delta`, `input_json_delta`) and `content_block_stop`; at the end
`message_delta` (stop_reason, stop_sequence, output usage) and `message_stop`. Blocks are sent one
after the other: a block is closed when output of another kind begins. Each event is sent as
`event: <type>` + `data: <json>`.
"""
from __future__ import annotations

import json
from typing import Any

from servables.output_processor import OutputDelta
from servables.tool_parsers import ToolArgsDelta, ToolCallStart

Event = dict[str, str]


def sse(kind: str, **fields: Any) -> Event:
    return {"event": kind, "data": json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":"))}


def message_object(message_id: str, model: str, content: list[dict[str, Any]], stop_reason: str | None,
                   stop_sequence: str | None, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}


class MessageStreamWriter:
    """Turns parsed output deltas into the event sequence, one open block at a time."""

    def __init__(self, message_id: str, model: str, input_tokens: int, omit_thinking: bool = False):
        self.message_id, self.model, self.input_tokens = message_id, model, input_tokens
        self.omit_thinking = omit_thinking  # `display: "omitted"`: the block is sent without its text
        self.index = -1  # of the open (or last) block
        self.open: str | None = None  # "thinking" | "text" | "tool:<i>"
        self.tool_calls = 0

    def start(self) -> list[Event]:
        message = message_object(self.message_id, self.model, [], None, None, self.input_tokens, 0)
        return [sse("message_start", message=message), sse("ping")]

    def _begin(self, key: str, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self.index += 1
        self.open = key
        return events + [sse("content_block_start", index=self.index, content_block=block)]

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        self.open = None
        return [sse("content_block_stop", index=self.index)]

    def _delta(self, key: str, block: dict[str, Any], delta: dict[str, Any]) -> list[Event]:
        events = self._begin(key, block) if self.open != key else []
        return events + [sse("content_block_delta", index=self.index, delta=delta)]

    def deltas(self, delta: OutputDelta) -> list[Event]:
        events: list[Event] = []
        if delta.reasoning and self.omit_thinking:
            if self.open != "thinking":
                events += self._begin("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        elif delta.reasoning:
            events += self._delta("thinking", {"type": "thinking", "thinking": "", "signature": ""},
                                  {"type": "thinking_delta", "thinking": delta.reasoning})
        if delta.content:
            events += self._delta("text", {"type": "text", "text": ""}, {"type": "text_delta", "text": delta.content})
        for item in delta.tool_calls:
            if isinstance(item, ToolCallStart):
                self.tool_calls += 1
                events += self._begin(f"tool:{item.index}", {"type": "tool_use", "id": item.id, "name": item.name,
                                                             "input": {}})
            elif isinstance(item, ToolArgsDelta) and item.text and self.open == f"tool:{item.index}":
                events.append(sse("content_block_delta", index=self.index,
                                  delta={"type": "input_json_delta", "partial_json": item.text}))
        return events

    def finish(self, stop_reason: str, stop_sequence: str | None, output_tokens: int) -> list[Event]:
        events = [] if self.index >= 0 else self._begin("text", {"type": "text", "text": ""})
        events += self._close()
        events.append(sse("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                          usage={"output_tokens": output_tokens}))
        events.append(sse("message_stop"))
        return events

    @staticmethod
    def error(error_type: str, message: str) -> Event:
        return sse("error", error={"type": error_type, "message": message})
