"""The LLM node options (OVMS docs/llm/reference.md) accepted in a config entry or on the CLI."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .options import option_values


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

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> LLMOptions:
        return cls(**option_values(cls, options, "text_generation"))
