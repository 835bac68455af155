"""LLM servable: an `openvino_genai.ContinuousBatchingPipeline` plus the text handling around it.

`prepare_chat` / `prepare_completion` turn a request into an `LLMJob` (token ids + GenerationConfig)
that the scheduler's LLM engine runs. Everything that can be checked before generation is
checked here and raised as `InvalidRequest` (HTTP 400).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openvino as ov
import openvino_genai as ov_genai

from . import reasoning_parser, speculative, tool_parsers, vision
from .base import ModelSpec
from .detokenizer import TokenPieces, TokenStrings
from .errors import InvalidRequest, ModelLoadError
from .gguf_meta import read_gguf_context_length
from .llm_options import LLMOptions, eviction_config
from .lora import SEPARATOR, AdapterView, LoRASet, parse_adapters
from .media_tokens import MediaTokens
from .messages import reason_of
from .output_processor import OutputProcessor
from .sampling import SamplingParams, build_generation_config
from .structured_output import GrammarValidator
from .tools import ToolRequest, check_tools
from .video_io import SampledVideo

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
    parse_tools: bool = False  # run the tool-call parser on the output
    tool_names: frozenset[str] = frozenset()  # the functions offered to the model
    reasoning_open: bool = False  # the prompt ends inside a reasoning block
    speculative: bool = False  # generated with prompt lookup or a draft model (counted in /metrics)
    adapter: str | None = None  # the LoRA adapter to generate with (None = the base model)
    # vision-language models: the templated prompt goes to the pipeline as text with these images
    # (possibly none); None = a text model, the pipeline takes `input_ids`
    images: list[ov.Tensor] | None = None
    videos: list[ov.Tensor] = field(default_factory=list)  # [N, H, W, 3] frames, models that take video
    videos_metadata: list[Any] = field(default_factory=list)  # ov_genai.VideoMetadata, one per video
    pipeline_prompt_tokens: int | None = None  # text + image/video tokens: estimated, then the pipeline's count
    streamed: bool = False  # the client reads choices as they are generated (set by the route)

    @property
    def fan_out(self) -> bool:
        """Generate each of n > 1 sampled choices as its own pipeline request (scheduler/llm_engine.py):
        openvino_genai makes an n-sequence request readable only once all sequences are done."""
        return self.streamed and self.num_sequences > 1 and not self.beam_search

    @property
    def prompt_tokens(self) -> int:
        return self.pipeline_prompt_tokens or len(self.input_ids)

    def input_tensor(self) -> ov.Tensor:
        import numpy as np

        return ov.Tensor(np.asarray([self.input_ids], dtype=np.int64))


INT32_LIMIT = 2**31  # token ids past it fit no tokenizer (used when the vocabulary size is unknown)


def _vocab_size(tokenizer: ov_genai.Tokenizer) -> int:
    """One past the largest token id of the tokenizer; 0 when it cannot say.

    `get_vocab()`, not `get_vocab_vector()`: the latter fails to decode the byte tokens of GGUF vocabularies.
    """
    try:
        return max(tokenizer.get_vocab().values()) + 1
    except Exception as exc:  # noqa: BLE001 - a tokenizer without a vocabulary still serves
        log.warning("vocabulary size unknown (%s): prompt token ids are checked against int32 only", exc)
        return 0


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
        for section in (data, data.get("text_config") or {}):  # vision-language configs nest the text model
            for key in CONTEXT_KEYS:
                if isinstance(section.get(key), int) and section[key] > 0:
                    return section[key]
    return None


class LLMServable:

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = LLMOptions.from_dict(spec.options)
        self.pipeline: ov_genai.ContinuousBatchingPipeline | None = None
        self.tokenizer: ov_genai.Tokenizer | None = None
        self.token_strings: TokenStrings | None = None  # single-token texts for logprobs, cached
        self.token_pieces: TokenPieces | None = None  # the streaming detokenizer's fast path
        self.max_model_len: int | None = None
        self.vocab_size = 0  # the tokenizer's; prompt token ids must be below it
        self.chat_template: str = ""
        self.template_knows_developer = False  # read from the template at load (render_chat)
        self.has_generation_config = False
        self.tool_parser: str | None = None
        self.reasoning_parser: str | None = None
        self.validator: GrammarValidator | None = None
        self.speculative = speculative.Mode.NONE
        self.lora: LoRASet | None = None
        self.accepts_images = False  # a vision-language model (servables/vision.py)
        self.accepts_video = False  # ... whose architecture takes videos
        self.media_tokens = MediaTokens()  # prompt tokens per image / video (context-length check)

    @property
    def name(self) -> str:
        return self.spec.name

    def scheduler_config(self) -> ov_genai.SchedulerConfig:
        sc = ov_genai.SchedulerConfig()
        sc.cache_size = self.options.cache_size
        sc.max_num_batched_tokens = self.options.max_num_batched_tokens
        sc.max_num_seqs = self.options.max_num_seqs
        sc.dynamic_split_fuse = self.options.dynamic_split_fuse
        # KV blocks computed under one adapter are wrong under another: no prefix reuse with adapters
        sc.enable_prefix_caching = self.options.enable_prefix_caching and not self.options.lora_adapters
        if self.options.cache_eviction is not None:
            sc.use_cache_eviction = True
            sc.cache_eviction_config = eviction_config(self.options.cache_eviction)
        return sc

    def load(self) -> None:
        path = self.spec.base_path
        if not path.exists():
            raise ModelLoadError(f"{self.name}: model path does not exist: {path}")
        if path.suffix == ".gguf" and not os.access(path, os.W_OK):
            # OpenVINO GenAI opens a .gguf read-write: a read-only file or mount fails deep inside gguf_open
            raise ModelLoadError(f"{self.name}: the GGUF file {path.name} must be writable by the server "
                                 "(OpenVINO GenAI opens GGUF files read-write; mount the model folder writable)")
        model_dir = path.parent if path.is_file() else path
        properties = self._speculative_properties(model_dir)
        if self.options.kv_cache_precision:
            properties["KV_CACHE_PRECISION"] = self.options.kv_cache_precision
        if self.options.lora_adapters:
            self.lora = LoRASet(parse_adapters(self.options.lora_adapters), model_dir, self.name)
            properties["adapters"] = self.lora.pipeline_property()
        try:
            self.pipeline = ov_genai.ContinuousBatchingPipeline(
                str(path), self.scheduler_config(), self.options.device,
                {**self.options.pipeline_properties(), **properties}
            )
        except RuntimeError as exc:
            reason = reason_of(exc)
            if self.options.kv_cache_precision and "kvcache type" in reason:
                reason += (f" (kv_cache_precision {self.options.kv_cache_precision} does not go with "
                           f"inference_precision {self.options.effective_precision} on {self.options.device})")
            raise ModelLoadError(f"{self.name}: cannot load {path}: {reason}") from exc
        self.tokenizer = self.pipeline.get_tokenizer()
        self.token_strings = TokenStrings(self.tokenizer)
        self.token_pieces = TokenPieces(self.tokenizer)
        self.vocab_size = _vocab_size(self.tokenizer)
        self.accepts_images = vision.is_vision_language(model_dir)
        self.accepts_video = vision.accepts_video(model_dir)
        self.media_tokens = MediaTokens.of(model_dir) if self.accepts_images else MediaTokens()
        self.max_model_len = read_context_length(path)
        self.has_generation_config = (model_dir / "generation_config.json").is_file() and path.is_dir()
        template = self.options.chat_template
        template_file = Path(template) if template else model_dir / "chat_template.jinja"
        if not template_file.is_absolute():
            template_file = model_dir / template_file
        if template_file.is_file():
            self.chat_template = template_file.read_text()
        elif self.options.chat_template:
            raise ModelLoadError(f"{self.name}: chat template file not found: {template_file}")
        self._choose_parsers()
        try:
            self.validator = GrammarValidator(self.tokenizer, self.generation_config().eos_token_id)
        except Exception as exc:  # serve without structured output rather than not at all
            log.warning("%s: structured output disabled, grammar validator failed: %s", self.name, exc)
        log.info("loaded %s from %s (context %s)", self.name, path, self.max_model_len)

    def _speculative_properties(self, model_dir: Path) -> dict[str, Any]:
        """Pipeline properties for prompt lookup or a draft model (the draft runs on the same device and
        plugin_config as the main model)."""
        if self.options.prompt_lookup:
            self.speculative = speculative.Mode.PROMPT_LOOKUP
            return {"prompt_lookup": True}
        draft = speculative.draft_path(self.options, model_dir)
        if draft is None:
            return {}
        if not draft.is_dir():
            raise ModelLoadError(f"{self.name}: draft model folder does not exist: {draft}")
        self.speculative = speculative.Mode.DRAFT
        return {"draft_model": ov_genai.draft_model(str(draft), self.options.device,
                                                      **self.options.pipeline_properties())}

    def aliases(self) -> list[AdapterView]:
        """One model id per LoRA adapter (`<name>:<adapter>`), listed in /v3/models."""
        return [AdapterView(self, name) for name in (self.lora.specs if self.lora else {})]

    def alias(self, model_id: str) -> AdapterView | None:
        """The adapter view named `model_id`, or None."""
        base, sep, adapter = model_id.rpartition(SEPARATOR)
        if sep and base == self.name and self.lora is not None and adapter in self.lora.specs:
            return AdapterView(self, adapter)
        return None

    def switch_adapter(self, adapter: str | None) -> None:
        """Make `adapter` (None = base) the pipeline's weights; only with no request in flight (LLM engine)."""
        self.lora.switch(self.pipeline, self.generation_config(), adapter)

    def generation_config(self) -> ov_genai.GenerationConfig:
        """The model's GenerationConfig. A speculative pipeline reports none of the model's EOS settings
        (eos_token_id -1, no stop_token_ids) although it stops at EOS: take EOS from the tokenizer then."""
        cfg = self.pipeline.get_config()
        if cfg.eos_token_id < 0 and self.speculative is not speculative.Mode.NONE:
            eos = self.tokenizer.get_eos_token_id()
            if eos >= 0:
                cfg.eos_token_id = eos
                cfg.stop_token_ids = {*cfg.stop_token_ids, eos}
        return cfg

    def _choose_parsers(self) -> None:
        template = self.chat_template or self.tokenizer.chat_template or ""
        self.template_knows_developer = "developer" in template  # else developer messages go in as system
        tool_name = self.options.tool_parser or tool_parsers.detect(template)
        try:
            tool_parsers.parser_class(tool_name)
        except KeyError:
            raise ModelLoadError(f"{self.name}: unknown tool_parser {tool_name!r}; known: "
                                 f"{', '.join(sorted(tool_parsers.PARSERS))}, none") from None
        self.tool_parser = None if tool_name == "none" else tool_name
        reasoning_name = self.options.reasoning_parser or reasoning_parser.detect(template)
        if reasoning_name not in (None, "none") and reasoning_name not in reasoning_parser.PARSERS:
            raise ModelLoadError(f"{self.name}: unknown reasoning_parser {reasoning_name!r}; known: "
                                 f"{', '.join(sorted(reasoning_parser.PARSERS))}, none")
        self.reasoning_parser = None if reasoning_name in (None, "none") else reasoning_name
        log.info("%s: tool parser %s, reasoning parser %s", self.name, self.tool_parser, self.reasoning_parser)

    def close(self) -> None:
        self.pipeline = None
        self.tokenizer = None
        self.token_strings = None
        self.token_pieces = None
        self.validator = None

    def describe(self) -> dict[str, Any]:
        return {"max_model_len": self.max_model_len, "tool_parser": self.tool_parser,
                "reasoning_parser": self.reasoning_parser, "speculative_decoding": self.speculative.value,
                "lora_adapters": sorted(self.lora.specs) if self.lora else [],
                "kv_cache_precision": self.options.kv_cache_precision,
                "inference_precision": self.options.effective_precision,
                "input_modalities": ["text", "image", "video"] if self.accepts_video
                else ["text", "image"] if self.accepts_images else ["text"]}

    def tokenize_texts(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
        """Token ids of each text (the `/tokenize` endpoint)."""
        return [self.tokenize(text, add_special_tokens) for text in texts]

    def output_processor(self, job: LLMJob) -> OutputProcessor:
        """A fresh per-sequence parser chain for the output of `job`."""
        reasoning = None
        if self.reasoning_parser is not None:
            start, end = reasoning_parser.PARSERS[self.reasoning_parser]
            reasoning = reasoning_parser.ReasoningParser(start, end, implicit_start=job.reasoning_open)
        tools = None
        if job.parse_tools and self.tool_parser is not None:
            tools = tool_parsers.parser_class(self.tool_parser)(job.tool_names)
        return OutputProcessor(reasoning, tools)

    # --- request preparation -------------------------------------------------------------

    def render_chat(self, messages: Sequence[dict[str, Any]], extra_context: dict[str, Any] | None = None,
                    tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = True) -> str:
        if not self.template_knows_developer:
            # OpenAI's developer messages are system instructions; templates of open models mostly know only
            # `system` (SmolLM2's rendered `<|im_start|>developer`). The Responses API maps them the same way.
            messages = [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]
        try:
            prompt = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=add_generation_prompt,
                chat_template=self.chat_template, tools=tools, extra_context=extra_context,
            )
        except Exception as exc:  # minja raises plain RuntimeError with the template's message
            raise InvalidRequest(f"Cannot apply the chat template: {reason_of(exc)}", "messages") from exc
        if not prompt:
            raise InvalidRequest("Final prompt after applying chat template is empty", "messages")
        return prompt

    def tokenize(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens).input_ids.data[0].tolist()

    def prepare_chat(self, messages: Sequence[dict[str, Any]], params: SamplingParams,
                     chat_template_kwargs: dict[str, Any] | None = None, tools: ToolRequest | None = None,
                     constraint: ov_genai.StructuredOutputConfig | None = None,
                     images: Sequence[Any] = (), videos: Sequence[SampledVideo] = ()) -> LLMJob:
        """`constraint` comes from `response_format`; a forced tool call takes precedence over it.

        Messages may carry `{"type": "image"}` parts in list contents, one per array in `images`
        (RGB uint8 [H, W, 3], in order); only vision-language models take them. Likewise
        `{"type": "video"}` parts, one per sampled video in `videos`, for models that take video.
        """
        image_count = video_count = 0
        if vision.has_image_parts(messages):
            messages, image_count, video_count = vision.with_media_tags(messages)
        if (image_count or images) and not self.accepts_images:
            raise InvalidRequest(f"Model {self.name} does not accept images", "messages")
        if (video_count or videos) and not self.accepts_video:
            raise InvalidRequest(f"Model {self.name} does not accept video", "messages")
        if image_count != len(images) or video_count != len(videos):
            raise InvalidRequest(f"{image_count} image and {video_count} video parts but {len(images)} images and "
                                 f"{len(videos)} videos were given", "messages")
        offered = tools.offered() if tools else []
        if offered:
            check_tools(offered)
        kwargs = dict(chat_template_kwargs or {})
        add_generation_prompt = kwargs.pop("add_generation_prompt", True)
        if not isinstance(add_generation_prompt, bool):
            raise InvalidRequest("chat_template_kwargs.add_generation_prompt must be a boolean",
                                 "chat_template_kwargs")
        prompt = self.render_chat(messages, kwargs or None, offered or None, add_generation_prompt)
        param = "response_format"
        if tools is not None and tools.must_call and offered:
            if self.tool_parser is None:
                raise InvalidRequest("tool_choice needs a tool parser, and this model has none (tool_parser: none)",
                                     "tool_choice")
            parser = tool_parsers.parser_class(self.tool_parser)()
            constraint, param = parser.guide(offered, parallel=tools.parallel is True), "tools"
        text_ids = self.tokenize(vision.strip_image_tags(prompt, image_count, video_count), add_special_tokens=False)
        media = self.media_tokens.count([(i.shape[0], i.shape[1]) for i in images],
                                        [v.frames.shape[:3] for v in videos])
        job = self._job(prompt, text_ids, params, constraint, param, images, media)
        if videos:
            job.videos, job.videos_metadata = vision.video_inputs(videos, self.name)
        job.parse_tools = bool(offered)
        job.tool_names = frozenset(t["function"]["name"] for t in offered)
        job.reasoning_open = self.reasoning_parser is not None and prompt.rstrip().endswith(
            reasoning_parser.PARSERS[self.reasoning_parser][0])
        return job

    def prepare_completion(self, prompt: str, params: SamplingParams,
                           constraint: ov_genai.StructuredOutputConfig | None = None) -> LLMJob:
        return self._job(prompt, self.tokenize(prompt, add_special_tokens=True), params, constraint)

    def prepare_completion_ids(self, input_ids: list[int], params: SamplingParams,
                               constraint: ov_genai.StructuredOutputConfig | None = None) -> LLMJob:
        bad = [t for t in input_ids if not 0 <= t < (self.vocab_size or INT32_LIMIT)]
        if bad:  # the tokenizer's decode takes only int64, and the model only ids it has embeddings for
            raise InvalidRequest(f"prompt has token id {bad[0]} outside the vocabulary (size {self.vocab_size})",
                                 "prompt")
        if self.accepts_images:  # GenAI's VLM pipeline takes text prompts only
            raise InvalidRequest(f"Model {self.name} is a vision-language model and takes text prompts, "
                                 "not token ids", "prompt")
        return self._job(self.detokenize(input_ids), list(input_ids), params, constraint)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _job(self, prompt: str, input_ids: list[int], params: SamplingParams,
             constraint: ov_genai.StructuredOutputConfig | None = None, param: str = "response_format",
             images: Sequence[Any] = (), media_tokens: int = 0) -> LLMJob:
        """`media_tokens`: the prompt tokens its images and videos add (servables/media_tokens.py)."""
        if not input_ids:
            raise InvalidRequest("The prompt is empty after tokenization", "prompt")
        cfg = build_generation_config(
            self.generation_config(), params, prompt_tokens=len(input_ids) + media_tokens,
            max_model_len=self.max_model_len,
            max_tokens_limit=self.options.max_tokens_limit, best_of_limit=self.options.best_of_limit,
            model_sets_defaults=self.has_generation_config,
        )
        speculative.apply(cfg, self.speculative, params.speculative, self.name)
        if constraint is not None:
            speculative.check_constraint(self.speculative, param, self.name)
            if self.validator is None:
                raise InvalidRequest(f"Model {self.name} cannot constrain its output ({param})", param)
            self.validator.check(constraint, param)  # a grammar that fails in the pipeline would break it
            cfg.structured_output_config = constraint
        stop_ids = set(cfg.stop_token_ids)
        if cfg.eos_token_id >= 0:
            stop_ids.add(cfg.eos_token_id)
        job = LLMJob(
            input_ids=input_ids, config=cfg, prompt_text=prompt,
            num_sequences=cfg.num_return_sequences, beam_search=cfg.num_beams > 1,
            logprobs=params.logprobs, stop_token_ids=frozenset(stop_ids),
            speculative=self.speculative is not speculative.Mode.NONE,
            pipeline_prompt_tokens=len(input_ids) + media_tokens if media_tokens else None,
        )
        if self.accepts_images:  # the VLM pipeline takes the prompt as text, already templated here
            cfg.apply_chat_template = False
            job.images = vision.image_tensors(images, self.name)
        return job
