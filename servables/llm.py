"""LLM servable: an `openvino_genai.ContinuousBatchingPipeline` plus the text handling around it.

`prepare_chat` / `prepare_completion` turn a request into an `LLMJob` (token ids + GenerationConfig)
that the scheduler's LLM engine runs. Everything that can be checked before generation is
checked here and raised as `InvalidRequest` (HTTP 400).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import openvino as ov
import openvino_genai as ov_genai

from .base import ModelSpec
from .errors import InvalidRequest, ModelLoadError
from .gguf_meta import read_gguf_context_length
from .llm_options import LLMOptions
from .sampling import SamplingParams, build_generation_config

log = logging.getLogger(__name__)

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_len", "seq_length", "n_ctx", "sliding_window")


@dataclass
class LLMJob:
    """One prepared generation request, ready for the engine."""

    input_ids: list[int]
    config: ov_genai.GenerationConfig
    prompt_text: str
    num_sequences: int
    beam_search: bool
    logprobs: bool
    stop_token_ids: frozenset[int]

    @property
    def prompt_tokens(self) -> int:
        return len(self.input_ids)

    def input_tensor(self) -> ov.Tensor:
        import numpy as np

        return ov.Tensor(np.asarray([self.input_ids], dtype=np.int64))


def read_context_length(path: Path) -> int | None:
    """The model's max context: GGUF header, or the first present key of `config.json`."""
    if path.is_file() and path.suffix == ".gguf":
        return read_gguf_context_length(path)
    config = path / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except ValueError:
            return None
        for key in CONTEXT_KEYS:
            if isinstance(data.get(key), int) and data[key] > 0:
                return data[key]
    return None


class LLMServable:
    kind: ClassVar[str] = "llm"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = LLMOptions.from_dict(spec.options)
        self.pipeline: ov_genai.ContinuousBatchingPipeline | None = None
        self.tokenizer: ov_genai.Tokenizer | None = None
        self.max_model_len: int | None = None
        self.chat_template: str = ""
        self.has_generation_config = False

    @property
    def name(self) -> str:
        return self.spec.name

    def scheduler_config(self) -> ov_genai.SchedulerConfig:
        sc = ov_genai.SchedulerConfig()
        sc.cache_size = self.options.cache_size
        sc.max_num_batched_tokens = self.options.max_num_batched_tokens
        sc.max_num_seqs = self.options.max_num_seqs
        sc.dynamic_split_fuse = self.options.dynamic_split_fuse
        sc.enable_prefix_caching = self.options.enable_prefix_caching
        return sc

    def load(self) -> None:
        path = self.spec.base_path
        if not path.exists():
            raise ModelLoadError(f"{self.name}: model path does not exist: {path}")
        model_dir = path.parent if path.is_file() else path
        try:
            self.pipeline = ov_genai.ContinuousBatchingPipeline(
                str(path), self.scheduler_config(), self.options.device, self.options.plugin_config
            )
        except RuntimeError as exc:
            raise ModelLoadError(f"{self.name}: cannot load {path}: {str(exc).splitlines()[0]}") from exc
        self.tokenizer = self.pipeline.get_tokenizer()
        self.max_model_len = read_context_length(path)
        self.has_generation_config = (model_dir / "generation_config.json").is_file() and path.is_dir()
        template_file = Path(self.options.chat_template) if self.options.chat_template else model_dir / "chat_template.jinja"
        if not template_file.is_absolute():
            template_file = model_dir / template_file
        if template_file.is_file():
            self.chat_template = template_file.read_text()
        elif self.options.chat_template:
            raise ModelLoadError(f"{self.name}: chat template file not found: {template_file}")
        log.info("loaded %s from %s (context %s)", self.name, path, self.max_model_len)

    def close(self) -> None:
        self.pipeline = None
        self.tokenizer = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_model_len": self.max_model_len}

    # --- request preparation -------------------------------------------------------------

    def render_chat(self, messages: Sequence[dict[str, Any]], extra_context: dict[str, Any] | None = None,
                    tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = True) -> str:
        try:
            prompt = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=add_generation_prompt,
                chat_template=self.chat_template, tools=tools, extra_context=extra_context,
            )
        except Exception as exc:  # minja raises plain RuntimeError with the template's message
            raise InvalidRequest(f"Cannot apply the chat template: {str(exc).splitlines()[0]}", "messages") from exc
        if not prompt:
            raise InvalidRequest("Final prompt after applying chat template is empty", "messages")
        return prompt

    def tokenize(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens).input_ids.data[0].tolist()

    def prepare_chat(self, messages: Sequence[dict[str, Any]], params: SamplingParams,
                     chat_template_kwargs: dict[str, Any] | None = None) -> LLMJob:
        prompt = self.render_chat(messages, chat_template_kwargs)
        return self._job(prompt, self.tokenize(prompt, add_special_tokens=False), params)

    def prepare_completion(self, prompt: str, params: SamplingParams) -> LLMJob:
        return self._job(prompt, self.tokenize(prompt, add_special_tokens=True), params)

    def prepare_completion_ids(self, input_ids: list[int], params: SamplingParams) -> LLMJob:
        return self._job(self.detokenize(input_ids), list(input_ids), params)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _job(self, prompt: str, input_ids: list[int], params: SamplingParams) -> LLMJob:
        if not input_ids:
            raise InvalidRequest("The prompt is empty after tokenization", "prompt")
        cfg = build_generation_config(
            self.pipeline.get_config(), params, prompt_tokens=len(input_ids), max_model_len=self.max_model_len,
            max_tokens_limit=self.options.max_tokens_limit, best_of_limit=self.options.best_of_limit,
            model_sets_defaults=self.has_generation_config,
        )
        stop_ids = set(cfg.stop_token_ids)
        if cfg.eos_token_id >= 0:
            stop_ids.add(cfg.eos_token_id)
        return LLMJob(
            input_ids=input_ids, config=cfg, prompt_text=prompt,
            num_sequences=cfg.num_return_sequences, beam_search=cfg.num_beams > 1,
            logprobs=params.logprobs, stop_token_ids=frozenset(stop_ids),
        )
