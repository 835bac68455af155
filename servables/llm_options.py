"""The LLM node options (OVMS docs/llm/reference.md) accepted in a config entry or on the CLI."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import shape_caches
from .config_file import ConfigError
from .lora import parse_adapters
from .options import option_values

KV_CACHE_PRECISIONS = ("f32", "f16", "bf16", "u8", "u4")
# `inference_precision`: INFERENCE_PRECISION_HINT of the OpenVINO plugin, or `plugin` for the plugin's own
# choice (bf16 on CPUs with bf16 instructions, f32 elsewhere). README "Inference precision" has the measurements.
INFERENCE_PRECISIONS = ("f32", "bf16", "f16", "plugin")
DEFAULT_INFERENCE_PRECISION = "f32"
PRECISION_HINT = "INFERENCE_PRECISION_HINT"


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
    inference_precision: str | None = None  # f32, bf16, f16 or plugin; unset: plugin_config's hint, else the default
    # {"start_size", "recent_size", "max_cache_size", "aggregation_mode"?: sum | norm_sum, "apply_rotation"?}
    cache_eviction: dict[str, Any] | None = None
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
        check_inference_precision(values.get("inference_precision"), values.get("plugin_config") or {})
        if values.get("cache_eviction") is not None:
            eviction_config(values["cache_eviction"])
        if values.get("lora_adapters"):
            parse_adapters(values["lora_adapters"])
            if drafts or values.get("prompt_lookup"):
                raise ConfigError("lora_adapters cannot be combined with speculative decoding (prompt_lookup, "
                                  "draft_model): untested in openvino_genai")
        return cls(**values)

    @property
    def effective_precision(self) -> str:
        """The inference precision the model runs with: the option, plugin_config's hint, or the default."""
        hint = self.plugin_config.get(PRECISION_HINT)
        return self.inference_precision or (str(hint) if hint is not None else DEFAULT_INFERENCE_PRECISION)

    def pipeline_properties(self) -> dict[str, Any]:
        """`plugin_config` with the inference precision and the runtime cache default applied (for the model
        and its draft; servables/shape_caches.py)."""
        properties = shape_caches.with_runtime_cache_default(self.device, self.plugin_config)
        precision = self.effective_precision
        if precision == "plugin":
            properties.pop(PRECISION_HINT, None)
        else:
            properties[PRECISION_HINT] = precision
        return properties


def check_inference_precision(precision: Any, plugin_config: dict[str, Any]) -> None:
    """ConfigError for an unknown precision, or one that contradicts plugin_config's INFERENCE_PRECISION_HINT."""
    if precision is None:
        return
    if precision not in INFERENCE_PRECISIONS:
        raise ConfigError(f"option 'inference_precision' must be one of {', '.join(INFERENCE_PRECISIONS)}, "
                          f"got {precision!r}")
    hint = plugin_config.get(PRECISION_HINT)
    if hint is not None and str(hint) != precision:
        raise ConfigError(f"option 'inference_precision' is {precision!r} but plugin_config sets "
                          f"{PRECISION_HINT}={hint!r}: set one of them")


EVICTION_KEYS = {"start_size", "recent_size", "max_cache_size", "aggregation_mode", "apply_rotation"}


def eviction_config(value: dict[str, Any]) -> Any:
    """The `cache_eviction` option as openvino_genai's CacheEvictionConfig (ConfigError when malformed):
    the first `start_size` and last `recent_size` tokens stay, the middle is evicted by attention score
    once a sequence holds `max_cache_size` tokens of KV."""
    import openvino_genai as ov_genai

    unknown = set(value) - EVICTION_KEYS
    if unknown:
        raise ConfigError(f"cache_eviction: unknown key(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted(EVICTION_KEYS))}")
    sizes = {}
    for key in ("start_size", "recent_size", "max_cache_size"):
        size = value.get(key)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError(f"cache_eviction.{key} must be a positive integer, got {size!r}")
        sizes[key] = size
    modes = {"sum": ov_genai.AggregationMode.SUM, "norm_sum": ov_genai.AggregationMode.NORM_SUM}
    mode = value.get("aggregation_mode", "sum")
    if mode not in modes:
        raise ConfigError(f"cache_eviction.aggregation_mode must be sum or norm_sum, got {mode!r}")
    rotation = value.get("apply_rotation", False)
    if not isinstance(rotation, bool):
        raise ConfigError(f"cache_eviction.apply_rotation must be a boolean, got {rotation!r}")
    try:
        return ov_genai.CacheEvictionConfig(aggregation_mode=modes[mode], apply_rotation=rotation, **sizes)
    except Exception as exc:  # GenAI checks the sizes against each other: "Check '<condition>' failed at ..."
        check = re.search(r"Check '(.+?)' failed", str(exc))
        reason = f"needs {check.group(1)}" if check else str(exc).splitlines()[0]
        raise ConfigError(f"cache_eviction: {reason}") from exc
