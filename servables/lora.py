"""LLM LoRA adapters: the `lora_adapters` option, the adapter weights, and `base:adapter` model ids.

openvino_genai 2026.4's ContinuousBatchingPipeline keeps ONE adapter setting for the whole pipeline:
it is set by `generate()` and silently kept by `add_request()`/`step()`, which ignore
`GenerationConfig.adapters`. So the LLM engine serves adapters in groups: it admits requests of the
active adapter only, drains them when a request for another adapter is first in line, switches with
a one-token `generate()` (`LoRASet.switch`), and goes on (README, "LoRA adapters").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai as ov_genai

from .config_file import ConfigError
from .errors import ModelLoadError
from .messages import reason_of

SEPARATOR = ":"  # the adapter's model id is "<base>:<adapter>"
WEIGHTS_FILE = "adapter_model.safetensors"  # PEFT's name, used when `path` is a folder


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    path: str
    alpha: float = 1.0


def parse_adapters(value: Any) -> list[AdapterSpec]:
    """`lora_adapters: [{"name", "path", "alpha"?}]` -> specs; ConfigError naming what is wrong."""
    specs: list[AdapterSpec] = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "path", "alpha"}:
            raise ConfigError(f"lora_adapters entries are {{\"name\", \"path\", \"alpha\"?}}, got {item!r}")
        name, path, alpha = item.get("name"), item.get("path"), item.get("alpha", 1.0)
        if not isinstance(name, str) or not name or SEPARATOR in name:
            raise ConfigError(f"lora_adapters: name must be a non-empty string without '{SEPARATOR}', got {name!r}")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"lora_adapters: adapter {name} needs a path (a .safetensors file or its folder)")
        if isinstance(alpha, bool) or not isinstance(alpha, int | float):
            raise ConfigError(f"lora_adapters: alpha of adapter {name} must be a number, got {alpha!r}")
        specs.append(AdapterSpec(name, path, float(alpha)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"lora_adapters: adapter names must be unique, got {names}")
    return specs


def parse_cli(items: list[str]) -> list[dict[str, Any]]:
    """`--lora_adapter name=path[:alpha]` (repeatable) -> the `lora_adapters` option."""
    adapters = []
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep:
            raise ConfigError(f"--lora_adapter takes name=path[:alpha], got {item!r}")
        path, _, alpha = rest.rpartition(":") if _looks_like_alpha(rest) else (rest, "", "")
        adapters.append({"name": name, "path": path, **({"alpha": float(alpha)} if alpha else {})})
    return adapters


def parse_source_loras(text: str) -> list[AdapterSpec]:
    """Image generation's `source_loras`: "alias=path[:alpha],alias2=path2" (OVMS's option, local paths)."""
    return parse_adapters(parse_cli([item.strip() for item in text.split(",") if item.strip()]))


def _looks_like_alpha(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    if not sep or not head:
        return False
    try:
        float(tail)
    except ValueError:
        return False
    return True


class LoRASet:
    """The adapters of one model, registered with its pipeline; switches the pipeline's active one."""

    def __init__(self, specs: list[AdapterSpec], model_dir: Path, model: str):
        self.specs = {s.name: s for s in specs}
        self.adapters: dict[str, ov_genai.Adapter] = {}
        for spec in specs:
            path = Path(spec.path).expanduser()
            path = path if path.is_absolute() else model_dir / path
            if path.is_dir():
                path = path / WEIGHTS_FILE
            if not path.is_file():
                raise ModelLoadError(f"{model}: LoRA adapter {spec.name}: {path} does not exist")
            try:
                self.adapters[spec.name] = ov_genai.Adapter(str(path))
            except RuntimeError as exc:
                raise ModelLoadError(f"{model}: LoRA adapter {spec.name}: {reason_of(exc)}") from exc

    def pipeline_property(self) -> ov_genai.AdapterConfig:
        """Every adapter registered at load (the `adapters` pipeline property)."""
        config = ov_genai.AdapterConfig()
        for name, adapter in self.adapters.items():
            config.add(adapter, self.specs[name].alpha)
        return config

    def blend(self, alphas: dict[str, float]) -> ov_genai.AdapterConfig:
        """The named adapters at the given alphas (empty = the base model)."""
        config = ov_genai.AdapterConfig()
        for name, alpha in alphas.items():
            config.add(self.adapters[name], alpha)
        return config

    def config(self, name: str | None) -> ov_genai.AdapterConfig:
        """Only `name` at its alpha; None = the base model."""
        if name is None:
            return ov_genai.AdapterConfig()
        return ov_genai.AdapterConfig(self.adapters[name], self.specs[name].alpha)

    def switch(self, pipeline: ov_genai.ContinuousBatchingPipeline, base: ov_genai.GenerationConfig,
               name: str | None) -> None:
        """Make `name` the pipeline's adapter: a one-token `generate()` with it (the only call that sets it).
        The pipeline must have no request in flight."""
        cfg = base
        cfg.max_new_tokens = 1
        cfg.apply_chat_template = False
        cfg.do_sample = False
        cfg.adapters = self.config(name)
        token = max(cfg.eos_token_id, 0)
        pipeline.generate([ov.Tensor(np.asarray([[token]], dtype=np.int64))], [cfg])


class AdapterView:
    """The model id `<base>:<adapter>` (LLM) or the adapter's alias (image generation): the base servable,
    preparing jobs that run with the adapter (`job.adapter`)."""

    def __init__(self, base: Any, adapter: str, name: str | None = None):
        self._base = base
        self.adapter = adapter
        self.name = name or f"{base.name}{SEPARATOR}{adapter}"

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._base, attribute)
        if attribute.startswith("prepare") and callable(value):  # every job it prepares runs with the adapter
            return lambda *args, **kwargs: self._tag(value(*args, **kwargs))
        return value

    def describe(self) -> dict[str, Any]:
        return {**self._base.describe(), "base_model": self._base.name, "lora_adapter": self.adapter}

    def _tag(self, job: Any) -> Any:
        job.adapter = self.adapter
        return job
