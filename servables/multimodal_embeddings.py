"""Image and text embeddings in one vector space: `openvino_genai.EmbeddingPipeline` on a vision-language model.

A variant of the `embeddings` kind: a model served as `task: embeddings` whose folder holds a vision
encoder (servables/vision.py) is loaded with `EmbeddingPipeline` (OpenVINO GenAI's multimodal
embedding pipeline, which runs the language model over the text and the image tokens and pools
its output) instead of `TextEmbeddingPipeline`. Inputs are strings, or items with an image and
optional text; each item is one `embed` call. Everything else (batching engine, dimensions,
usage, rerank by cosine similarity) is the text embeddings servable's.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino_genai as ov_genai

from . import vision
from .base import ModelSpec
from .embeddings import _POOLING, EmbeddingsServable, EmbedJob
from .errors import InvalidRequest, ModelLoadError
from .image_io import ImageItem
from .messages import reason_of
from .model_files import context_length, read_json

log = logging.getLogger(__name__)


def embeddings_servable(spec: ModelSpec) -> EmbeddingsServable:
    """The `embeddings` kind's factory: multimodal for a folder with a vision encoder, else text."""
    if vision.is_vision_language(spec.base_path):
        return MultimodalEmbeddingsServable(spec)
    return EmbeddingsServable(spec)


class MultimodalEmbeddingsServable(EmbeddingsServable):
    accepts_images = True

    def load(self) -> None:
        path = self.spec.base_path
        self.pooling = self.options.pooling or "LAST"  # decoder models pool on the last token
        self.max_model_len = context_length(path, self.options.max_position_embeddings, True)
        config = ov_genai.TextEmbeddingPipeline.Config()
        config.pooling_type = _POOLING[self.pooling]
        config.normalize = self.options.normalize
        try:
            self.pipeline = ov_genai.EmbeddingPipeline(str(path), self.options.device, text_embedding_config=config,
                                                       **self.options.plugin_config)
            self.tokenizer = ov_genai.Tokenizer(str(path))
            self.dimensions = len(self._embed("warm up", []))
        except RuntimeError as exc:
            raise ModelLoadError(f"{self.name}: cannot load {path}: {reason_of(exc)}") from exc
        self.vocab_size = _vocab_size(path) or len(self.tokenizer.get_vocab_vector())
        log.info("loaded %s from %s (multimodal, pooling %s, %d dimensions)", self.name, path, self.pooling,
                 self.dimensions)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "input_modalities": ["text", "image"]}

    def _embed(self, text: str, images: list) -> np.ndarray:
        result = self.pipeline.embed(text=text, images=images)  # type: ignore[union-attr]
        return np.asarray(result.embeddings.data, dtype=np.float32).reshape(-1)

    def prepare(self, inputs: Sequence[Any], dimensions: int | None = None) -> EmbedJob:
        """Strings and token-id lists as for text models; `ImageItem`s pass through."""
        if not inputs:
            raise InvalidRequest("input array should not be empty", "input")
        if not any(isinstance(item, ImageItem) for item in inputs):
            return super().prepare(inputs, dimensions)
        items: list[Any] = []
        for index, item in enumerate(inputs):
            if isinstance(item, ImageItem):
                items.append(item)
            elif isinstance(item, str) and item:
                items.append(item)
            else:
                raise InvalidRequest(f"input[{index}]: mix images only with non-empty strings", f"input[{index}]")
        self.check_dimensions(dimensions)
        return EmbedJob(items, [], dimensions)

    def infer(self, items: list[Any]) -> list[tuple[np.ndarray, int]]:
        """One `embed` call per item (the pipeline's batch would share images across texts)."""
        out = []
        for item in items:
            text, images = (item.text, vision.image_tensors([item.image], self.name)) if isinstance(item, ImageItem) \
                else (item, [])
            tokens = min(self.count_tokens([text])[0], self.max_model_len) if text else 0
            out.append((self._embed(text, images), tokens))
        return out


def _vocab_size(path: Path) -> int | None:
    """From `config.json` (nested `text_config` in vision-language models). Byte-level vocabularies can
    hold entries that are not valid UTF-8, which `Tokenizer.get_vocab_vector()` cannot return."""
    config = read_json(path / "config.json")
    for section in (config.get("text_config") or {}, config):
        if isinstance(section, dict) and isinstance(section.get("vocab_size"), int):
            return section["vocab_size"]
    return None
