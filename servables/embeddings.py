"""Embeddings servable: an `openvino_genai.TextEmbeddingPipeline` plus input checks.

`prepare` turns request inputs into an `EmbedJob` (texts and their token counts), raising
`InvalidRequest` for anything wrong before inference. The scheduler's batcher calls `infer` with
texts from many requests at once. The same model also answers rerank (cosine similarity of the
query and document embeddings): `prepare_rerank` / `rerank_scores`.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino_genai as ov_genai

from .base import ModelSpec
from .chunking import RerankJob, chunk_documents
from .embedding_options import EmbeddingsOptions, parse_options
from .errors import InvalidRequest, ModelLoadError
from .messages import reason_of
from .model_files import context_length, sentence_transformers_pooling

log = logging.getLogger(__name__)

SPECIAL_TOKENS_BOUND = 16  # more special tokens than any tokenizer adds to one text

_POOLING = {
    "CLS": ov_genai.TextEmbeddingPipeline.PoolingType.CLS,
    "MEAN": ov_genai.TextEmbeddingPipeline.PoolingType.MEAN,
    "LAST": ov_genai.TextEmbeddingPipeline.PoolingType.LAST_TOKEN,
}


@dataclass
class EmbedJob:
    texts: list[str]
    token_counts: list[int]  # filled in by `finish`, from the batched inference
    dimensions: int | None

    @property
    def prompt_tokens(self) -> int:
        return sum(self.token_counts)


class EmbeddingsServable:

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options: EmbeddingsOptions = parse_options(EmbeddingsOptions, spec.options, "embeddings")
        self.pipeline: ov_genai.TextEmbeddingPipeline | None = None
        self.tokenizer: ov_genai.Tokenizer | None = None
        self.pooling = "CLS"
        self.max_model_len = 0
        self.dimensions = 0
        self.vocab_size = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_batch_size(self) -> int:
        return self.options.max_batch_size

    def load(self) -> None:
        path = self.spec.base_path
        if not path.is_dir():
            raise ModelLoadError(f"{self.name}: embeddings need an OpenVINO IR folder, got {path}")
        self.pooling = self.options.pooling or sentence_transformers_pooling(path) or "CLS"
        self.max_model_len = context_length(path, self.options.max_position_embeddings, True)
        config = ov_genai.TextEmbeddingPipeline.Config()
        config.pooling_type = _POOLING[self.pooling]
        config.normalize = self.options.normalize
        config.max_length = self.max_model_len
        try:
            self.pipeline = ov_genai.TextEmbeddingPipeline(
                str(path), self.options.device, config, **self.options.plugin_config)
            self.tokenizer = ov_genai.Tokenizer(str(path))
            self.dimensions = len(self.pipeline.embed_documents(["warm up"])[0])
        except RuntimeError as exc:
            raise ModelLoadError(f"{self.name}: cannot load {path}: {reason_of(exc)}") from exc
        self.vocab_size = len(self.tokenizer.get_vocab_vector())
        log.info("loaded %s from %s (pooling %s, %d dimensions, context %d)", self.name, path, self.pooling,
                 self.dimensions, self.max_model_len)

    def close(self) -> None:
        self.pipeline = None
        self.tokenizer = None

    def describe(self) -> dict[str, Any]:
        return {"rerank_scoring": "cosine_similarity",
                "dimensions": self.dimensions, "max_model_len": self.max_model_len, "pooling": self.pooling,
                "normalize": self.options.normalize}

    # --- tokens ---------------------------------------------------------------------------

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text is fed to the model with (special tokens included, no truncation)."""
        mask = self.tokenizer.encode(list(texts), add_special_tokens=True).attention_mask.data
        return [int(n) for n in mask.sum(axis=1)]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens), from one batched tokenizer call."""
        encoded = self.tokenizer.encode(texts, add_special_tokens=False)
        ids, mask = encoded.input_ids.data, encoded.attention_mask.data.astype(bool)
        return [row[keep].tolist() for row, keep in zip(ids, mask, strict=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # --- embeddings -----------------------------------------------------------------------

    def prepare(self, inputs: Sequence[str] | Sequence[Sequence[int]], dimensions: int | None = None) -> EmbedJob:
        """Check inputs (strings, or token-id lists that are decoded to text) and their lengths."""
        if not inputs:
            raise InvalidRequest("input array should not be empty", "input")
        texts: list[str] = []
        for index, item in enumerate(inputs):
            if isinstance(item, str):
                if not item:
                    raise InvalidRequest(f"input[{index}] is an empty string", "input")
                texts.append(item)
            else:
                if not item:
                    raise InvalidRequest("inner arrays in input should not be empty", "input")
                bad = [t for t in item if not 0 <= t < self.vocab_size]
                if bad:
                    raise InvalidRequest(
                        f"input[{index}] has token id {bad[0]} outside the vocabulary (size {self.vocab_size})",
                        "input")
                texts.append(self.decode(list(item)))
        self.check_dimensions(dimensions)
        if not self.options.truncate:
            self.check_lengths(texts)
        return EmbedJob(texts, [], dimensions)

    def check_lengths(self, texts: list[str]) -> None:
        """400 for an input longer than the context. Only texts that could be too long are tokenized
        here (a token covers at least one byte); exact counts for usage come from the batched `infer`."""
        suspects = [i for i, t in enumerate(texts) if len(t.encode()) + SPECIAL_TOKENS_BOUND > self.max_model_len]
        if not suspects:
            return
        for index, count in zip(suspects, self.count_tokens([texts[i] for i in suspects]), strict=False):
            if count > self.max_model_len:
                raise InvalidRequest(
                    f"input[{index}] has {count} tokens, longer than allowed {self.max_model_len} "
                    f"(the model context); shorten it or serve the model with truncate: true", "input")

    def check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is None or dimensions == self.dimensions:
            return
        allowed = self.options.matryoshka_dimensions
        if not allowed:
            raise InvalidRequest(
                f"dimensions is not supported by {self.name}: its embeddings have {self.dimensions} dimensions "
                "and the model does not allow truncating them (no matryoshka_dimensions option)", "dimensions")
        if dimensions not in allowed:
            raise InvalidRequest(
                f"dimensions must be one of {sorted(set(allowed) | {self.dimensions})}, got {dimensions}",
                "dimensions")

    def infer(self, texts: list[str]) -> list[tuple[np.ndarray, int]]:
        """One batched inference; called by the engine's worker thread. Returns (vector, tokens) per text."""
        counts = [min(c, self.max_model_len) for c in self.count_tokens(texts)]
        vectors = np.asarray(self.pipeline.embed_documents(texts), dtype=np.float32)
        return list(zip(vectors, counts, strict=False))

    def finish(self, job: EmbedJob, outputs: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """Stack the job's vectors (and record its token counts); cut to `dimensions` when asked."""
        job.token_counts = [count for _, count in outputs]
        matrix = np.stack([vector for vector, _ in outputs]).astype(np.float32, copy=False)
        if job.dimensions is not None and job.dimensions < matrix.shape[1]:
            matrix = matrix[:, : job.dimensions]
            if self.options.normalize:
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                matrix = matrix / np.maximum(norms, 1e-12)
        return matrix

    # --- rerank with an embedding model ---------------------------------------------------

    def prepare_rerank(self, query: str, documents: Sequence[str], max_chunks_per_doc: int | None = None,
                       max_tokens_per_doc: int | None = None) -> RerankJob:
        """Items are the query then every document chunk (each fits the context: 2 special tokens)."""
        if not query:
            raise InvalidRequest("query must not be empty", "query")
        chunks, owners, doc_tokens = chunk_documents(
            documents, self.encode_many, self.decode, self.max_model_len - 2, self.options.max_allowed_chunks,
            max_chunks_per_doc, max_tokens_per_doc)
        query_tokens = min(self.count_tokens([query])[0], self.max_model_len)
        return RerankJob([query, *chunks], owners, len(documents), query_tokens + doc_tokens)

    def rerank_scores(self, job: RerankJob, outputs: Sequence[tuple[np.ndarray, int]]) -> list[float]:
        matrix = np.stack([vector for vector, _ in outputs]).astype(np.float32, copy=False)
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        cosines = matrix[1:] @ matrix[0]
        return job.max_per_document(cosines.tolist())
