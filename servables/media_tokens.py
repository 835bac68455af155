"""How many prompt tokens an image or a video adds, before the pipeline sees it (the context-length check).

GenAI reports a request's full prompt count (text + image tokens) only after generation has
finished, so the count here is computed from the model's own processor settings:

- LLaVA (`model_type: llava`): `image_seq_length` tokens per image (the vision tower's patch grid)
  plus the newline GenAI puts after each image; LLaVA takes no video.
- Qwen2-VL / Qwen2.5-VL: the image is resized as the processor's `smart_resize` does (sides
  rounded to multiples of patch_size x merge_size, the area kept within min/max pixels), then one
  token per merged patch, plus `<|vision_start|>` and `<|vision_end|>`. A video is frames grouped
  by `temporal_patch_size`, each group the tokens of one frame, plus the same two markers.
- Other architectures: 0 (only the text is counted; the pipeline's own count still goes to `usage`).

Checked against `GenerationHandle.get_perf_metrics().get_num_input_tokens()` on the test models.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QWEN_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl"})


@dataclass(frozen=True)
class MediaTokens:
    """Prompt tokens per image and per video of one model (0 where unknown)."""

    model_type: str = ""
    llava_tokens: int = 0  # per image, LLaVA
    patch: int = 14  # Qwen2-VL processor settings
    merge: int = 2
    temporal: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    @classmethod
    def of(cls, model_dir: Path) -> MediaTokens:
        config = _read_json(model_dir / "config.json")
        model_type = str(config.get("model_type", ""))
        if model_type == "llava":
            return cls(model_type, llava_tokens=int(config.get("image_seq_length", 576)) + 1)
        if model_type in QWEN_TYPES:
            pre = _read_json(model_dir / "preprocessor_config.json")
            size = pre.get("size") or {}
            return cls(model_type, patch=int(pre.get("patch_size", 14)), merge=int(pre.get("merge_size", 2)),
                       temporal=int(pre.get("temporal_patch_size", 2)),
                       min_pixels=int(pre.get("min_pixels") or size.get("shortest_edge") or cls.min_pixels),
                       max_pixels=int(pre.get("max_pixels") or size.get("longest_edge") or cls.max_pixels))
        return cls(model_type)

    def image(self, height: int, width: int) -> int:
        if self.model_type == "llava":
            return self.llava_tokens
        if self.model_type in QWEN_TYPES:
            return self._grid(height, width) + 2
        return 0

    def video(self, frames: int, height: int, width: int) -> int:
        if self.model_type in QWEN_TYPES:
            return math.ceil(frames / self.temporal) * self._grid(height, width) + 2
        return 0

    def count(self, images: list[tuple[int, int]], videos: list[tuple[int, int, int]]) -> int:
        """Tokens of `images` ((height, width) each) and `videos` ((frames, height, width) each)."""
        return sum(self.image(h, w) for h, w in images) + sum(self.video(n, h, w) for n, h, w in videos)

    def _grid(self, height: int, width: int) -> int:
        """Merged patches of one frame after Qwen2-VL's smart_resize."""
        factor = self.patch * self.merge
        h = max(factor, round(height / factor) * factor)
        w = max(factor, round(width / factor) * factor)
        if h * w > self.max_pixels:
            beta = math.sqrt(height * width / self.max_pixels)
            h = max(factor, math.floor(height / beta / factor) * factor)
            w = max(factor, math.floor(width / beta / factor) * factor)
        elif h * w < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (height * width))
            h = math.ceil(height * beta / factor) * factor
            w = math.ceil(width * beta / factor) * factor
        return (h // factor) * (w // factor)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
