"""OpenAI logprobs objects built from token ids and their log-probabilities (chosen token only)."""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

# token id -> its text, per tokenizer: a logprobs stream asks for each token once per chunk, and one
# `Tokenizer.decode` call costs about a millisecond of the event loop (holding the GIL)
_TOKEN_TEXT: weakref.WeakKeyDictionary[Any, dict[int, str]] = weakref.WeakKeyDictionary()
MAX_CACHED_TOKENS = 1 << 18  # per tokenizer; larger than most vocabularies


def token_texts(tokenizer, token_ids: Sequence[int]) -> list[str]:
    """Each token's own text (special tokens included), the unknown ones decoded in one batched call."""
    try:
        cache = _TOKEN_TEXT.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that takes no weak reference: no cache
        cache = {}
    missing = list(dict.fromkeys(t for t in token_ids if t not in cache))
    if missing:
        if len(cache) + len(missing) > MAX_CACHED_TOKENS:
            cache.clear()
        cache.update(zip(missing, tokenizer.decode([[t] for t in missing], skip_special_tokens=False), strict=True))
    return [cache[t] for t in token_ids]


def _safe(value: float) -> float | None:
    return value if value <= 0 else None  # OVMS: positive values (numerical noise) serialize as null


def chat_logprobs(tokenizer, token_ids: list[int], logprobs: list[float]) -> dict[str, Any]:
    content = []
    for token, logprob in zip(token_texts(tokenizer, token_ids), logprobs, strict=False):
        content.append({"token": token, "logprob": _safe(logprob), "bytes": list(token.encode("utf-8")),
                        "top_logprobs": []})
    return {"content": content}


def completion_logprobs(tokenizer, token_ids: list[int], logprobs: list[float], offset: int = 0) -> dict[str, Any]:
    tokens, offsets = token_texts(tokenizer, token_ids), []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": [_safe(v) for v in logprobs[: len(tokens)]],
            "top_logprobs": None, "text_offset": offsets}
