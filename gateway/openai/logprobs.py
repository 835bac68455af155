"""OpenAI logprobs objects built from token ids and their log-probabilities (chosen token only)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

TokenTexts = Callable[[Sequence[int]], list[str]]  # servables.detokenizer.TokenStrings: ids -> each token's text


def _safe(value: float) -> float | None:
    return value if value <= 0 else None  # OVMS: positive values (numerical noise) serialize as null


def chat_logprobs(token_texts: TokenTexts, token_ids: list[int], logprobs: list[float]) -> dict[str, Any]:
    content = []
    for token, logprob in zip(token_texts(token_ids), logprobs, strict=False):
        content.append({"token": token, "logprob": _safe(logprob), "bytes": list(token.encode("utf-8")),
                        "top_logprobs": []})
    return {"content": content}


def completion_logprobs(token_texts: TokenTexts, token_ids: list[int], logprobs: list[float],
                        offset: int = 0) -> dict[str, Any]:
    tokens, offsets = token_texts(token_ids), []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": [_safe(v) for v in logprobs[: len(tokens)]],
            "top_logprobs": None, "text_offset": offsets}
