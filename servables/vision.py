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
any message, so the image lands inside its turn.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from .errors import InvalidRequest

VISION_MODEL_FILE = "openvino_vision_embeddings_model.xml"
IMAGE_TAG = "<ov_genai_image_{}>"


def is_vision_language(path: Path) -> bool:
    """True when the model folder holds an exported vision encoder (a VLM layout)."""
    return path.is_dir() and (path / VISION_MODEL_FILE).is_file()


def has_image_parts(messages: Sequence[dict[str, Any]]) -> bool:
    return any(isinstance(m.get("content"), list) for m in messages)


def with_image_tags(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Messages whose content is a list of `{"type": "text"}` / `{"type": "image"}` parts become
    plain strings with `<ov_genai_image_N>` where each image was; returns them and the image count."""
    out: list[dict[str, Any]] = []
    count = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            pieces = []
            for part in content:
                if part.get("type") == "image":
                    pieces.append(IMAGE_TAG.format(count))
                    count += 1
                else:
                    pieces.append(part.get("text", ""))
            message = {**message, "content": "".join(pieces)}
        out.append(message)
    return out, count


def strip_image_tags(prompt: str, count: int) -> str:
    """The prompt's text alone (for counting its text tokens)."""
    for index in range(count):
        prompt = prompt.replace(IMAGE_TAG.format(index), "")
    return prompt


def image_tensors(images: Sequence[np.ndarray], model: str) -> list[ov.Tensor]:
    """RGB uint8 [H, W, 3] arrays -> the [1, H, W, 3] uint8 tensors GenAI takes (NHWC; it resizes itself)."""
    tensors = []
    for image in images:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidRequest(f"Model {model}: images must be RGB uint8 [H, W, 3]", "messages")
        tensors.append(ov.Tensor(np.ascontiguousarray(image[None])))
    return tensors
