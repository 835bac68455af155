"""Incremental detokenization that is correct for multi-byte characters.

Decoding token by token loses emoji and CJK (a token can hold part of a UTF-8 character and then
decodes to ''). Each sequence keeps a prefix window; per step we decode the window with and without
the new tokens and emit the difference once it is complete text. All sequences of a step are decoded
in one batched tokenizer call.

Fast path (`TokenPieces`): for tokenizers whose decode is the concatenation of the single tokens'
texts (byte-level BPE: GPT-2, Llama 3, Qwen, SmolLM), checked on the tokenizer at load, a step whose
new tokens are each complete text is the join of cached texts, without a tokenizer call. Tokens that
hold part of a character, and tokenizers that are not concatenative (SentencePiece's leading space,
clean-up of spaces before punctuation), take the window path.
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


    def joined(self, pieces: TokenPieces) -> str | None:
        """The new text as the join of the new tokens' cached texts (offsets moved), or None when a new
        token is not complete text by itself or the tokenizer is not concatenative."""
        if not pieces.exact:
            return None
        texts = pieces.whole_texts(self.ids[self.read_offset:])
        if texts is None:
            return None
        self.prefix_offset = self.read_offset = len(self.ids)
        return "".join(texts)


def decode_steps(tokenizer: ov_genai.Tokenizer, seqs: Sequence[SequenceText], final: Sequence[bool],
                 pieces: TokenPieces | None = None) -> list[str]:
    """New text for each sequence (whose `ids` were already extended): from `pieces` where it applies,
    the others in one tokenizer call."""
    out: list[str | None] = [seq.joined(pieces) for seq in seqs] if pieces is not None else [None] * len(seqs)
    slow = [i for i, text in enumerate(out) if text is None]
    if slow:
        windows: list[list[int]] = []
        for i in slow:
            windows.extend(seqs[i].windows())
        texts = tokenizer.decode(windows, skip_special_tokens=True)
        for k, i in enumerate(slow):
            out[i] = seqs[i].advance(texts[2 * k], texts[2 * k + 1], final[i])
    return [text or "" for text in out]


def decode_all(tokenizer: ov_genai.Tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


class TokenStrings:
    """The text of single tokens (special tokens included unless `skip_special_tokens`), as logprobs
    objects show them.

    A token's text depends on its id alone, so each is decoded once and kept: streaming with logprobs
    then costs a dict lookup per token instead of a tokenizer call (at most one entry per vocabulary
    entry). Missing ids of one call are decoded in one batched tokenizer call.
    """

    def __init__(self, tokenizer: ov_genai.Tokenizer, skip_special_tokens: bool = False):
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._known: dict[int, str] = {}

    def __call__(self, ids: Sequence[int]) -> list[str]:
        known = self._known
        missing = [i for i in dict.fromkeys(ids) if i not in known]
        if missing:
            texts = self._tokenizer.decode([[i] for i in missing], skip_special_tokens=self._skip)
            known.update(zip(missing, texts, strict=True))
        return [known[i] for i in ids]


# Text where HF-style clean-up of tokenization spaces would change a concatenation (" ." -> "."): a
# tokenizer that cleans up fails the check and keeps the window path
PROBE = "Hello , world . It 's isn 't I 'm we 've they 're you 'll he 'd ! ? x  y\n\tz 1,234.5 naïve café"


class TokenPieces:
    """Single-token texts as they appear in running text, for the tokens that are whole characters, and
    whether joining them is the tokenizer's decode (`exact`, found once by decoding probe sequences both ways).

    A token is whole when its vocabulary bytes are valid UTF-8 that decodes to its single-token text: a
    token holding part of a character decodes to '', to U+FFFD or to its other bytes only (depending on
    the tokenizer), so its text alone cannot tell."""

    def __init__(self, tokenizer: ov_genai.Tokenizer, samples: int = 512):
        self._strings = TokenStrings(tokenizer, skip_special_tokens=True)
        try:
            vocab = tokenizer.get_vocab()
        except Exception:  # noqa: BLE001 - no vocabulary: the window path only
            vocab = {}
        self._bytes = {i: t.encode() if isinstance(t, str) else bytes(t) for t, i in vocab.items()}
        self._whole: dict[int, bool] = {}
        self.exact = bool(vocab) and self._concatenative(tokenizer, samples)

    def whole_texts(self, ids: Sequence[int]) -> list[str] | None:
        """The texts of `ids` if every one is whole characters, else None."""
        texts = self._strings(ids)
        whole = self._whole
        for i, text in zip(ids, texts, strict=True):
            known = whole.get(i)
            if known is None:
                known = whole[i] = self._is_whole(i, text)
            if not known:
                return None
        return texts

    def _is_whole(self, token: int, text: str) -> bool:
        raw = self._bytes.get(token)
        if not text or raw is None:
            return False
        try:
            return raw.decode("utf-8") == text
        except UnicodeDecodeError:
            return False

    def _concatenative(self, tokenizer: ov_genai.Tokenizer, samples: int) -> bool:
        ids = sorted(self._bytes)
        spread = ids[:: max(1, len(ids) // samples)]
        probe = tokenizer.encode(PROBE, add_special_tokens=False).input_ids.data[0].tolist()
        sequences = [[int(t) for t in probe]] + [
            [spread[i], spread[(i * 7 + 3) % len(spread)], spread[(i * 31 + 1) % len(spread)]]
            for i in range(len(spread))]
        try:
            decoded = tokenizer.decode(sequences, skip_special_tokens=True)
        except Exception:  # noqa: BLE001 - a tokenizer that cannot decode these ids keeps the window path
            return False
        checked = 0
        for seq, text in zip(sequences, decoded, strict=True):
            parts = self.whole_texts(seq)
            if parts is None:
                continue  # such tokens never take the fast path
            if "".join(parts) != text:
                return False
            checked += 1
        return checked > len(sequences) // 4  # enough evidence, not a vacuous pass
