"""Which stop sequence ended a turn: the Messages API reports it (`stop_reason: "stop_sequence"`).

The engine keeps the matched stop string in the output (`include_stop_str_in_output`); this cuts it
off and remembers it. While streaming, text that could still be the start of a stop sequence is held
back until the next delta decides.
"""
from __future__ import annotations


class StopSequenceCutter:
    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.matched: str | None = None
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of `text` (after what was held back) that is certainly not a stop sequence."""
        if not self.stops:
            return text
        if self.matched is not None:
            return ""
        buffer = self._held + text
        hits = [(buffer.find(stop), stop) for stop in self.stops if stop in buffer]
        if hits:
            at, self.matched = min(hits)
            self._held = ""
            return buffer[:at]
        keep = max((_prefix_overlap(buffer, stop) for stop in self.stops), default=0)
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep]

    def finish(self) -> str:
        """What was held back, once no more text comes."""
        rest, self._held = self._held, ""
        return rest

    def cut(self, text: str) -> str:
        """The whole output at once (unary responses)."""
        return self.feed(text) + self.finish()


def _prefix_overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that is a proper start of `stop`."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0
