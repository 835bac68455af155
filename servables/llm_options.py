"""The LLM node options (OVMS docs/llm/reference.md) accepted in a config entry or on the CLI."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config_file import ConfigError
from .lora import parse_adapters
from .options import option_values

KV_CACHE_PRECISIONS = ("f32", "f16", "bf16", "u8", "u4")


@dataclass(frozen=True)
class LLMOptions:
    max_num_batched_tokens: int = 256
    cache_size: int = 0  # GB of KV cache; 0 = grow dynamically
    max_num_seqs: int = 256
    dynamic_split_fuse: bool = True
    enable_prefix_caching: bool = True
    device: str = "CPU"
    plugin_config: dict[str, Any] = field(default_factory=dict)
    max_tokens_limit: int | None = None  # exclusive upper bound for max_tokens, and its default
    best_of_limit: int = 20  # exclusive upper bound for best_of
    max_queue_size: int = 512  # requests waiting for a slot before 503
    admission_window_ms: int = 5  # gather requests arriving this close together into one admission; 0 = off
    chat_template: str | None = None  # path to a Jinja file overriding the model's template
    tool_parser: str | None = None  # hermes, llama3, mistral, generic, none; detected from the template if unset
    reasoning_parser: str | None = None  # qwen3 (<think>...</think>), none; detected from the template if unset
    prompt_lookup: bool = False  # speculative decoding with n-grams of the prompt (servables/speculative.py)
    draft_model: str | None = None  # folder of a draft model (same tokenizer) for speculative decoding
    draft_source_model: str | None = None  # HuggingFace id of a pulled draft model (in the model repository)
    kv_cache_precision: str | None = None  # KV_CACHE_PRECISION of the CPU plugin: f32, f16, bf16, u8, u4
    lora_adapters: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "path", "alpha"?}], servables/lora.py

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> LLMOptions:
        values = option_values(cls, options, "text_generation")
        drafts = [name for name in ("draft_model", "draft_source_model") if values.get(name)]
        if len(drafts) > 1:
            raise ConfigError("options draft_model and draft_source_model are mutually exclusive")
        if drafts and values.get("prompt_lookup"):
            raise ConfigError(f"options prompt_lookup and {drafts[0]} are mutually exclusive: "
                              f"openvino_genai speculates with one of them")
        precision = values.get("kv_cache_precision")
        if precision is not None and precision not in KV_CACHE_PRECISIONS:
            raise ConfigError(f"option 'kv_cache_precision' must be one of {', '.join(KV_CACHE_PRECISIONS)}, "
                              f"got {precision!r}")
        if values.get("lora_adapters"):
            parse_adapters(values["lora_adapters"])
            if drafts or values.get("prompt_lookup"):
                raise ConfigError("lora_adapters cannot be combined with speculative decoding (prompt_lookup, "
                                  "draft_model): untested in openvino_genai")
        return cls(**values)
