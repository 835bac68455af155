"""Sampling parameters of a generation request and their mapping onto `GenerationConfig`.

Mirrors OVMS's chat/completions parameters (OVMS docs/model_server_rest_api_chat.md), with one
deliberate difference: without a `temperature` in the request and without a
`generation_config.json` beside the model, we sample at temperature 1.0 as OpenAI and vLLM do
(OVMS would decode greedily).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import openvino_genai as ov_genai

from .errors import InvalidRequest
from .speculative import SpeculativeParams

MAX_STOP_STRINGS = 16
MAX_STOP_TOKEN_IDS = 64
DEFAULT_MAX_NEW_TOKENS = 4096  # only when neither the request nor the model bounds generation
UINT32_MAX = 2**32 - 1
INT32_MAX = 2**31 - 1


@dataclass
class SamplingParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    n: int = 1
    best_of: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    length_penalty: float | None = None
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    logprobs: bool = False
    stream: bool = False
    max_tokens_param: str = "max_tokens"  # the request field that set max_tokens (errors name it)
    # max_tokens as a cap (the Messages API): past the context window it is lowered, not a 400
    fit_to_context: bool = False
    speculative: SpeculativeParams = field(default_factory=SpeculativeParams)
    min_tokens: int | None = None
    stop_token_ids: list[int] = field(default_factory=list)


def _check_range(name: str, value: float | None, low: float, high: float, low_open: bool = False,
                 high_open: bool = False) -> None:
    if value is None:
        return
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise InvalidRequest(f"{name} out of range{lo}{low}, {high}{hi}: {value}", name)


def validate(params: SamplingParams, best_of_limit: int) -> None:
    """Request-level checks that need no model information."""
    if params.min_tokens is not None:
        if params.min_tokens < 0:
            raise InvalidRequest("min_tokens must be a non-negative integer", "min_tokens")
        if params.max_tokens is not None and params.min_tokens > params.max_tokens:
            raise InvalidRequest("min_tokens must not be greater than max_tokens", "min_tokens")
    if len(params.stop_token_ids) > MAX_STOP_TOKEN_IDS:
        raise InvalidRequest(f"stop_token_ids must have no more than {MAX_STOP_TOKEN_IDS} ids", "stop_token_ids")
    if any(not 0 <= token < 2**31 for token in params.stop_token_ids):
        raise InvalidRequest("stop_token_ids must be non-negative token ids", "stop_token_ids")
    _check_range("temperature", params.temperature, 0.0, 2.0)
    _check_range("top_p", params.top_p, 0.0, 1.0, low_open=True)
    _check_range("min_p", params.min_p, 0.0, 1.0, high_open=True)
    _check_range("presence_penalty", params.presence_penalty, -2.0, 2.0)
    _check_range("frequency_penalty", params.frequency_penalty, -2.0, 2.0)
    if params.repetition_penalty is not None and params.repetition_penalty <= 0:
        raise InvalidRequest("repetition_penalty must be greater than 0", "repetition_penalty")
    if params.top_k is not None and not -1 <= params.top_k <= INT32_MAX:  # GenerationConfig.top_k is size_t
        raise InvalidRequest(f"top_k must be -1 (all tokens), 0 (all tokens) or a positive integer up to {INT32_MAX}",
                             "top_k")
    if params.seed is not None and not 0 <= params.seed < 2**64:
        raise InvalidRequest("seed must be a non-negative integer below 2**64", "seed")
    if params.max_tokens is not None and params.max_tokens <= 0:
        raise InvalidRequest(f"{params.max_tokens_param} value should be greater than 0", params.max_tokens_param)
    if params.max_tokens is not None and params.max_tokens > UINT32_MAX:
        raise InvalidRequest(f"{params.max_tokens_param} value can't be greater than {UINT32_MAX}",
                             params.max_tokens_param)
    if len(params.stop) > MAX_STOP_STRINGS:
        raise InvalidRequest(f"stop array must have no more than {MAX_STOP_STRINGS} strings", "stop")
    if any(s == "" for s in params.stop):
        raise InvalidRequest("stop strings must not be empty", "stop")
    if params.n < 1:
        raise InvalidRequest("n must be at least 1", "n")
    if params.best_of is not None:
        if params.best_of < 1:
            raise InvalidRequest("best_of must be at least 1", "best_of")
        if params.best_of >= best_of_limit:
            raise InvalidRequest(f"best_of exceeds limit provided in graph config: {best_of_limit}", "best_of")
        if params.n > params.best_of:
            raise InvalidRequest("n value cannot be greater than best_of", "n")
        if params.stream and params.best_of > 1:
            raise InvalidRequest("best_of cannot be used in streaming mode", "best_of")
    if params.n >= best_of_limit:
        raise InvalidRequest(f"n exceeds limit provided in graph config: {best_of_limit}", "n")


def build_generation_config(base: ov_genai.GenerationConfig, params: SamplingParams, *, prompt_tokens: int,
                            max_model_len: int | None, max_tokens_limit: int | None, best_of_limit: int,
                            model_sets_defaults: bool) -> ov_genai.GenerationConfig:
    """Start from the model's config (`base`) and apply the request on top of it."""
    validate(params, best_of_limit)
    cfg = base
    cfg.apply_chat_template = False

    if max_tokens_limit is not None and params.max_tokens is not None and params.max_tokens > max_tokens_limit:
        raise InvalidRequest(f"{params.max_tokens_param} exceeds limit provided in graph config: {max_tokens_limit}",
                             params.max_tokens_param)
    if max_model_len is not None:
        if prompt_tokens >= max_model_len:
            raise InvalidRequest(
                f"Number of prompt tokens: {prompt_tokens} exceeds model max length: {max_model_len}", "messages"
            )
        if (params.max_tokens is not None and prompt_tokens + params.max_tokens > max_model_len
                and not params.fit_to_context):
            raise InvalidRequest(
                f"Number of prompt tokens: {prompt_tokens} + max tokens value: {params.max_tokens} "
                f"exceeds model max length: {max_model_len}", params.max_tokens_param,
            )
    room = (max_model_len - prompt_tokens) if max_model_len is not None else DEFAULT_MAX_NEW_TOKENS
    cfg.max_new_tokens = min(room, params.max_tokens or max_tokens_limit or room)

    if params.best_of is not None and params.best_of > 1:
        cfg.num_beams = params.best_of
        cfg.num_beam_groups = 1
        cfg.do_sample = False
        if params.length_penalty is not None:
            cfg.length_penalty = params.length_penalty
    else:
        temperature = params.temperature
        if temperature is None and not model_sets_defaults:
            temperature = 1.0  # OpenAI's default
        if temperature is not None:
            cfg.do_sample = temperature > 0
            if temperature > 0:
                cfg.temperature = temperature
    if params.n > 1 and not cfg.do_sample and cfg.num_beams < params.n:
        raise InvalidRequest("n > 1 needs sampling (temperature > 0) or best_of >= n", "n")
    cfg.num_return_sequences = params.n
    if params.top_p is not None:
        cfg.top_p = params.top_p
    if params.top_k not in (None, -1, 0):
        cfg.top_k = params.top_k
    if params.min_p is not None:
        cfg.min_p = params.min_p
    if params.presence_penalty is not None:
        cfg.presence_penalty = params.presence_penalty
    if params.frequency_penalty is not None:
        cfg.frequency_penalty = params.frequency_penalty
    if params.repetition_penalty is not None:
        cfg.repetition_penalty = params.repetition_penalty
    if cfg.do_sample:
        cfg.rng_seed = params.seed if params.seed is not None else random.randrange(1, 2**31)
    cfg.ignore_eos = params.ignore_eos
    if params.min_tokens:
        cfg.min_new_tokens = min(params.min_tokens, cfg.max_new_tokens)
    if params.stop_token_ids:
        cfg.stop_token_ids = {*cfg.stop_token_ids, *params.stop_token_ids}
    if params.stop:
        cfg.stop_strings = set(params.stop)
    cfg.include_stop_str_in_output = params.include_stop_str_in_output
    if params.logprobs:
        cfg.logprobs = 1
    try:
        cfg.validate()
    except Exception as exc:  # GenAI raises RuntimeError/ValueError with a readable first line
        raise InvalidRequest(f"Invalid generation parameters: {str(exc).splitlines()[0]}") from exc
    return cfg
