"""Small typed events that cross from an engine thread to the asyncio side."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Chunk:
    """New text of one sequence. `token_ids`/`logprobs` are the tokens behind it (logprobs on request)."""

    index: int
    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None


@dataclass(slots=True)
class SequenceDone:
    index: int
    finish_reason: str  # "stop" | "length"
    completion_tokens: int


@dataclass(slots=True)
class RequestDone:
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class Failed:
    """The request ended with an error; `error` is a servables.errors.ServingError."""

    error: Exception


Event = Chunk | SequenceDone | RequestDone | Failed
