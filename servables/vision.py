"""Vision-language models on the text-generation kind: detection, image tags in the prompt, image tensors.

A vision-language model exported by `optimum-cli export openvino --task image-text-to-text` is a
folder with `openvino_language_model.xml`, `openvino_text_embeddings_model.xml` and
`openvino_vision_embeddings_model.xml` beside the tokenizer IR; `ContinuousBatchingPipeline`
loads it as it loads a text model and then takes images per request
(`add_request(id, prompt, images, config)`, OpenVINO GenAI's VLM continuous-batching API).

Images are placed in the prompt with GenAI's model-independent tag `<ov_genai_image_N>` (N counts
the request's images from 0), which GenAI replaces with the model's own image tokens (LLaVA's
`<image>`, Qwen2-VL's `<|vision_start|><|image_pad|><|vision_end|>`, ...). Each tag stands where
its image part stood in the message, and the chat template then puts the message where it puts
any message, so the image lands inside its turn. Videos go the same way with `<ov_genai_video_N>`
and `add_request(id, prompt, images, videos, config)`; only the architectures in `VIDEO_MODEL_TYPES`
take them (GenAI answers "Video preprocessing isn't implemented for this model" for the others).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from .errors import InvalidRequest
from .video_io import SampledVideo

VISION_MODEL_FILE = "openvino_vision_embeddings_model.xml"
IMAGE_TAG = "<ov_genai_image_{}>"
VIDEO_TAG = "<ov_genai_video_{}>"
# `config.json` model types whose GenAI 2026.4 inputs embedder takes `videos` (the others raise)
VIDEO_MODEL_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_next_video", "videochat_flash_qwen"})


def is_vision_language(path: Path) -> bool:
    """True when the model folder holds an exported vision encoder (a VLM layout)."""
    return path.is_dir() and (path / VISION_MODEL_FILE).is_file()


def accepts_video(path: Path) -> bool:
    """True for a vision-language folder whose architecture GenAI takes videos for."""
    if not is_vision_language(path):
        return False
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return False
    return model_type in VIDEO_MODEL_TYPES


def has_image_parts(messages: Sequence[dict[str, Any]]) -> bool:
    return any(isinstance(m.get("content"), list) for m in messages)


def with_media_tags(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """Messages whose content is a list of `{"type": "text" | "image" | "video"}` parts become plain
    strings with `<ov_genai_image_N>` / `<ov_genai_video_N>` where each image / video was; returns
    them, the image count and the video count."""
    out: list[dict[str, Any]] = []
    counts = {"image": 0, "video": 0}
    tags = {"image": IMAGE_TAG, "video": VIDEO_TAG}
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            pieces = []
            for part in content:
                kind = part.get("type")
                if kind in tags:
                    pieces.append(tags[kind].format(counts[kind]))
                    counts[kind] += 1
                else:
                    pieces.append(part.get("text", ""))
            message = {**message, "content": "".join(pieces)}
        out.append(message)
    return out, counts["image"], counts["video"]


def with_image_tags(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """`with_media_tags` for image-only messages: the messages and the image count."""
    out, images, _videos = with_media_tags(messages)
    return out, images


def strip_image_tags(prompt: str, count: int, videos: int = 0) -> str:
    """The prompt's text alone (for counting its text tokens)."""
    for index in range(count):
        prompt = prompt.replace(IMAGE_TAG.format(index), "")
    for index in range(videos):
        prompt = prompt.replace(VIDEO_TAG.format(index), "")
    return prompt


def image_tensors(images: Sequence[np.ndarray], model: str) -> list[ov.Tensor]:
    """RGB uint8 [H, W, 3] arrays -> the [1, H, W, 3] uint8 tensors GenAI takes (NHWC; it resizes itself)."""
    tensors = []
    for image in images:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidRequest(f"Model {model}: images must be RGB uint8 [H, W, 3]", "messages")
        tensors.append(ov.Tensor(np.ascontiguousarray(image[None])))
    return tensors


def video_inputs(videos: Sequence[SampledVideo], model: str) -> tuple[list[ov.Tensor], list[Any]]:
    """Sampled videos -> GenAI's `videos` ([N, H, W, 3] uint8 frames each) and `videos_metadata`
    (the sampling rate, and every frame marked as already sampled so GenAI samples none again)."""
    import openvino_genai as ov_genai

    tensors: list[ov.Tensor] = []
    metadata: list[Any] = []
    for video in videos:
        frames = video.frames
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise InvalidRequest(f"Model {model}: video frames must be RGB uint8 [N, H, W, 3]", "messages")
        tensors.append(ov.Tensor(np.ascontiguousarray(frames)))
        meta = ov_genai.VideoMetadata()
        meta.fps = video.fps
        meta.frames_indices = list(range(frames.shape[0]))
        metadata.append(meta)
    return tensors, metadata
