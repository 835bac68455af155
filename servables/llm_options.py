"""The LLM node options (OVMS_REFERENCE 3.3) accepted in a config entry or on the CLI."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from .config_file import ConfigError


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
    chat_template: str | None = None  # path to a Jinja file overriding the model's template
    tool_parser: str | None = None  # hermes, llama3, mistral, generic, none; detected from the template if unset
    reasoning_parser: str | None = None  # qwen3 (<think>...</think>), none; detected from the template if unset

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> "LLMOptions":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(options) - set(known) - {"target_device"})
        if unknown:
            raise ConfigError(f"unknown text_generation option(s): {', '.join(unknown)}")
        values = dict(options)
        if "target_device" in values:  # OVMS spells it both ways
            values.setdefault("device", values.pop("target_device"))
        if isinstance(values.get("plugin_config"), str):
            try:
                values["plugin_config"] = json.loads(values["plugin_config"] or "{}")
            except ValueError as exc:
                raise ConfigError(f"option 'plugin_config' is not valid JSON: {exc}") from exc
        for name, value in values.items():
            _check_type(name, value, known[name].type)
        return cls(**values)


def _check_type(name: str, value: Any, annotation: str) -> None:
    expected = {
        "int": int, "bool": bool, "str": str, "dict[str, Any]": dict,
        "int | None": (int, type(None)), "str | None": (str, type(None)),
    }[annotation]
    if isinstance(value, bool) and annotation.startswith("int"):
        raise ConfigError(f"option '{name}' must be an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"option '{name}' has the wrong type: {value!r}")
    if annotation.startswith("int") and value is not None and value < 0:
        raise ConfigError(f"option '{name}' must not be negative, got {value}")
