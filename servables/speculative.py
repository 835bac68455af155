"""Speculative decoding: the model's mode (prompt lookup or a draft model) and the per-request fields.

openvino_genai's ContinuousBatchingPipeline takes `prompt_lookup=True` or `draft_model=...` as a
pipeline property; each request then sets `num_assistant_tokens` (and `max_ngram_size` for prompt
lookup) or `assistant_confidence_threshold` (draft model only) in its GenerationConfig. It cannot
speculate for beam search or more than one sequence per request (GenerationConfig.validate), so
those are 400s here rather than pipeline errors (README, "Speculative decoding").
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import openvino_genai as ov_genai

from .errors import InvalidRequest

DEFAULT_NUM_ASSISTANT_TOKENS = 5
DEFAULT_MAX_NGRAM_SIZE = 3
MAX_NUM_ASSISTANT_TOKENS = 64
MAX_NGRAM_SIZE = 32


class Mode(Enum):
    NONE = "none"
    PROMPT_LOOKUP = "prompt_lookup"
    DRAFT = "draft_model"


@dataclass(frozen=True)
class SpeculativeParams:
    """The request's speculative fields (all optional)."""

    num_assistant_tokens: int | None = None
    assistant_confidence_threshold: float | None = None
    max_ngram_size: int | None = None

    def given(self) -> list[str]:
        return [name for name in ("num_assistant_tokens", "assistant_confidence_threshold", "max_ngram_size")
                if getattr(self, name) is not None]


def _check(params: SpeculativeParams) -> None:
    if params.num_assistant_tokens is not None and not 1 <= params.num_assistant_tokens <= MAX_NUM_ASSISTANT_TOKENS:
        raise InvalidRequest(f"num_assistant_tokens must be in [1, {MAX_NUM_ASSISTANT_TOKENS}]",
                             "num_assistant_tokens")
    threshold = params.assistant_confidence_threshold
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise InvalidRequest("assistant_confidence_threshold must be in (0, 1]", "assistant_confidence_threshold")
    if params.max_ngram_size is not None and not 1 <= params.max_ngram_size <= MAX_NGRAM_SIZE:
        raise InvalidRequest(f"max_ngram_size must be in [1, {MAX_NGRAM_SIZE}]", "max_ngram_size")
    if params.num_assistant_tokens is not None and threshold is not None:
        raise InvalidRequest("num_assistant_tokens and assistant_confidence_threshold are mutually exclusive",
                             "assistant_confidence_threshold")


def apply(cfg: ov_genai.GenerationConfig, mode: Mode, params: SpeculativeParams, model: str) -> None:
    """Set the speculative fields of `cfg` for a model served in `mode`; 400 naming the field otherwise."""
    _check(params)
    given = params.given()
    if mode is Mode.NONE:
        if given:
            raise InvalidRequest(f"{given[0]} needs speculative decoding, and model {model} is served without it "
                                 f"(model options prompt_lookup or draft_model)", given[0])
        return
    if cfg.num_beams > 1:
        raise InvalidRequest(f"best_of > 1 (beam search) cannot be combined with speculative decoding "
                             f"({mode.value} on model {model})", "best_of")
    if cfg.num_return_sequences > 1:
        raise InvalidRequest(f"n > 1 cannot be combined with speculative decoding ({mode.value} on model {model})",
                             "n")
    if mode is Mode.PROMPT_LOOKUP:
        if params.assistant_confidence_threshold is not None:
            raise InvalidRequest("assistant_confidence_threshold needs a draft model; model "
                                 f"{model} uses prompt lookup", "assistant_confidence_threshold")
        cfg.num_assistant_tokens = params.num_assistant_tokens or DEFAULT_NUM_ASSISTANT_TOKENS
        cfg.max_ngram_size = params.max_ngram_size or DEFAULT_MAX_NGRAM_SIZE
        return
    if params.max_ngram_size is not None:
        raise InvalidRequest(f"max_ngram_size applies to prompt lookup; model {model} uses a draft model",
                             "max_ngram_size")
    if params.assistant_confidence_threshold is not None:
        cfg.assistant_confidence_threshold = params.assistant_confidence_threshold
    else:
        cfg.num_assistant_tokens = params.num_assistant_tokens or DEFAULT_NUM_ASSISTANT_TOKENS


def check_constraint(mode: Mode, param: str, model: str) -> None:
    """Structured output works with prompt lookup, but with a draft model openvino_genai 2026.4 corrupts
    memory and kills the process (seen on a tiny Llama through this server): refuse it."""
    if mode is Mode.DRAFT:
        raise InvalidRequest(f"Constrained output ({param}) cannot be combined with a draft model "
                             f"(model {model}): openvino_genai cannot do it reliably", param)


def draft_path(options: Any, model_dir: Path) -> Path | None:
    """The draft model's folder: `draft_model` (relative paths from the main model's folder), or
    `draft_source_model` in the model repository ($OVMS_MODEL_REPOSITORY_PATH, else the repository the
    main model was pulled into: the folder two levels above it)."""
    if options.draft_model:
        path = Path(options.draft_model).expanduser()
        return path if path.is_absolute() else model_dir / path
    if options.draft_source_model:
        repository = os.environ.get("OVMS_MODEL_REPOSITORY_PATH")
        root = Path(repository) if repository else model_dir.parent.parent
        return root / options.draft_source_model
    return None
