"""The image generation node options (OVMS docs/image_generation/reference.md) accepted in a config entry."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .config_file import ConfigError
from .options import option_values

SIZE_RE = re.compile(r"^(\d+)x(\d+)$")


def parse_size(text: str) -> tuple[int, int] | None:
    """`"WxH"` -> (width, height); None when the text is not in that format."""
    match = SIZE_RE.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class ImageOptions:
    device: str = "CPU"  # one device, or three space-separated: text encoder, denoiser, VAE
    plugin_config: dict[str, Any] = field(default_factory=dict)
    max_resolution: str = "4096x4096"
    default_resolution: str | None = None  # "WxH"; the model's own default when absent
    max_num_images_per_prompt: int = 10
    default_num_inference_steps: int = 50
    max_num_inference_steps: int = 100
    # static shapes (OVMS: required for NPU): reshape the models to one resolution at load
    resolution: str | None = None  # "WxH"
    num_images_per_prompt: int | None = None  # with `resolution`; default 1
    guidance_scale: float | None = None  # with `resolution`; default the model's
    max_queue_size: int = 32  # requests waiting behind the running one before 503
    max_upload_bytes: int = 50 * 1024 * 1024  # per uploaded file (image or mask) on images/edits
    source_loras: str | None = None  # "alias=path[:alpha],...": LoRA adapters, each served as model `alias`

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> ImageOptions:
        result = cls(**option_values(cls, options, "image_generation"))
        result._check()
        return result

    def _check(self) -> None:
        for name in ("max_resolution", "default_resolution", "resolution"):
            value = getattr(self, name)
            if value is not None and not _positive_size(value):
                raise ConfigError(f"option '{name}' must be WxH with positive integers, got {value!r}")
        for name in ("max_num_images_per_prompt", "default_num_inference_steps", "max_num_inference_steps",
                     "max_upload_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"option '{name}' must be at least 1")
        if self.default_num_inference_steps > self.max_num_inference_steps:
            raise ConfigError("option 'default_num_inference_steps' exceeds 'max_num_inference_steps'")
        if self.resolution is None and (self.num_images_per_prompt is not None or self.guidance_scale is not None):
            raise ConfigError("options 'num_images_per_prompt' and 'guidance_scale' need 'resolution' (static shapes)")
        if self.num_images_per_prompt is not None and self.num_images_per_prompt < 1:
            raise ConfigError("option 'num_images_per_prompt' must be at least 1")
        if self.source_loras is not None:
            from .lora import parse_source_loras

            parse_source_loras(self.source_loras)
        if len(self.devices) not in (1, 3):
            raise ConfigError(f"option 'device' must name one device or three, got {self.device!r}")

    @property
    def devices(self) -> list[str]:
        return self.device.split()

    @property
    def max_size(self) -> tuple[int, int]:
        return parse_size(self.max_resolution)  # type: ignore[return-value]

    @property
    def static_size(self) -> tuple[int, int] | None:
        return parse_size(self.resolution) if self.resolution else None

    @property
    def default_size(self) -> tuple[int, int] | None:
        return parse_size(self.default_resolution) if self.default_resolution else None


def _positive_size(text: str) -> bool:
    size = parse_size(text)
    return size is not None and size[0] > 0 and size[1] > 0
