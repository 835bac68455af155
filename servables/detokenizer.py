"""Incremental detokenization that is correct for multi-byte characters.

Decoding token by token loses emoji and CJK (a token can hold part of a UTF-8 character and then
decodes to ''). Each sequence keeps a prefix window; per step we decode the window with and without
the new tokens and emit the difference once it is complete text. All sequences of a step are decoded
in one batched tokenizer call.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import openvino_genai as ov_genai

REPLACEMENT = "\ufffd"


@dataclass
class SequenceText:
    ids: list[int] = field(default_factory=list)
    prefix_offset: int = 0
    read_offset: int = 0

    def windows(self) -> tuple[list[int], list[int]]:
        return self.ids[self.prefix_offset:self.read_offset], self.ids[self.prefix_offset:]

    def advance(self, prefix_text: str, full_text: str, final: bool) -> str:
        """Given the decoded windows, return the new text (may be '') and move the offsets."""
        if len(full_text) <= len(prefix_text) or (full_text.endswith(REPLACEMENT) and not final):
            return ""
        self.prefix_offset = self.read_offset
        self.read_offset = len(self.ids)
        return full_text[len(prefix_text):]


def decode_steps(tokenizer: ov_genai.Tokenizer, seqs: Sequence[SequenceText], final: Sequence[bool]) -> list[str]:
    """New text for each sequence (whose `ids` were already extended), in one tokenizer call."""
    if not seqs:
        return []
    windows: list[list[int]] = []
    for seq in seqs:
        windows.extend(seq.windows())
    texts = tokenizer.decode(windows, skip_special_tokens=True)
    return [seq.advance(texts[2 * i], texts[2 * i + 1], final[i]) for i, seq in enumerate(seqs)]


def decode_all(tokenizer: ov_genai.Tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


class TokenStrings:
    """The text of single tokens (special tokens included), as logprobs objects show them.

    A token's text depends on its id alone, so each is decoded once and kept: streaming with logprobs
    then costs a dict lookup per token instead of a tokenizer call (at most one entry per vocabulary
    entry). Missing ids of one call are decoded in one batched tokenizer call.
    """

    def __init__(self, tokenizer: ov_genai.Tokenizer):
        self._tokenizer = tokenizer
        self._known: dict[int, str] = {}

    def __call__(self, ids: Sequence[int]) -> list[str]:
        known = self._known
        missing = [i for i in dict.fromkeys(ids) if i not in known]
        if missing:
            texts = self._tokenizer.decode([[i] for i in missing], skip_special_tokens=False)
            known.update(zip(missing, texts, strict=True))
        return [known[i] for i in ids]
