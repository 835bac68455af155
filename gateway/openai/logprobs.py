"""OpenAI logprobs objects built from token ids and their log-probabilities (chosen token only)."""
from __future__ import annotations

from typing import Any


def _safe(value: float) -> float | None:
    return value if value <= 0 else None  # OVMS: positive values (numerical noise) serialize as null


def chat_logprobs(tokenizer, token_ids: list[int], logprobs: list[float]) -> dict[str, Any]:
    content = []
    for token_id, logprob in zip(token_ids, logprobs, strict=False):
        token = tokenizer.decode([token_id], skip_special_tokens=False)
        content.append({"token": token, "logprob": _safe(logprob), "bytes": list(token.encode("utf-8")),
                        "top_logprobs": []})
    return {"content": content}


def completion_logprobs(tokenizer, token_ids: list[int], logprobs: list[float], offset: int = 0) -> dict[str, Any]:
    tokens, offsets = [], []
    for token_id in token_ids:
        tokens.append(tokenizer.decode([token_id], skip_special_tokens=False))
        offsets.append(offset)
        offset += len(tokens[-1])
    return {"tokens": tokens, "token_logprobs": [_safe(v) for v in logprobs[: len(tokens)]],
            "top_logprobs": None, "text_offset": offsets}
