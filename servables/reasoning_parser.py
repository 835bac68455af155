"""Splits `<think>...</think>` style reasoning out of model output, incrementally.

Output that starts with the start tag (after whitespace) is reasoning until the end tag; the rest
is content. With `implicit_start` (the chat template already opened the block in the prompt) the
output starts inside the reasoning. Reasoning that never closes stays reasoning.
"""
from __future__ import annotations

from dataclasses import dataclass

PARSERS = {"qwen3": ("<think>", "</think>"), "deepseek_r1": ("<think>", "</think>")}


def detect(chat_template: str) -> str | None:
    return "qwen3" if "<think>" in chat_template and "</think>" in chat_template else None


@dataclass
class ReasoningDelta:
    reasoning: str = ""
    content: str = ""


def _partial_suffix(text: str, marker: str) -> int:
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


class ReasoningParser:
    def __init__(self, start: str = "<think>", end: str = "</think>", implicit_start: bool = False):
        self.start, self.end = start, end
        self._state = "reasoning" if implicit_start else "head"
        self._buffer = ""
        self._strip = False

    def feed(self, text: str) -> ReasoningDelta:
        self._buffer += text
        out = ReasoningDelta()
        if self._state == "head":
            stripped = self._buffer.lstrip()
            if stripped.startswith(self.start):
                self._state, self._buffer = "reasoning", stripped[len(self.start):]
            elif self.start.startswith(stripped):
                return out  # still could be the start tag
            else:
                self._state = "content"
        if self._state == "reasoning":
            at = self._buffer.find(self.end)
            if at < 0:
                keep = _partial_suffix(self._buffer, self.end)
                out.reasoning = self._buffer[: len(self._buffer) - keep]
                self._buffer = self._buffer[len(self._buffer) - keep:]
                return out
            out.reasoning = self._buffer[:at]
            self._buffer = self._buffer[at + len(self.end):]
            self._state, self._strip = "content", True
        if self._state == "content":
            if self._strip:  # the newlines right after the end tag belong to neither part
                self._buffer = self._buffer.lstrip("\n")
                self._strip = not self._buffer
            out.content, self._buffer = self._buffer, ""
        return out

    def finish(self) -> ReasoningDelta:
        out = ReasoningDelta()
        if self._state == "reasoning":
            out.reasoning = self._buffer
        else:
            out.content = self._buffer
        self._buffer = ""
        return out
