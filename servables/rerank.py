"""Rerank servable for cross-encoders: an `openvino_genai.TextRerankPipeline`.

Long documents are chunked as OVMS does (OVMS docs/model_server_rest_api_rerank.md): the query is cut to half the
context, each document to chunks of `context - query - 4` tokens; a document scores the max over
its chunks. The engine's batcher calls `infer` with (query, chunk) pairs from one or more
requests; pairs that share a query go to the pipeline in one call.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import groupby
from typing import Any

import openvino_genai as ov_genai

from .base import ModelSpec
from .chunking import PAIR_SPECIAL_TOKENS, RerankJob, chunk_documents
from .embedding_options import RerankOptions, parse_options
from .errors import InvalidRequest, ModelLoadError
from .messages import reason_of
from .model_files import context_length, read_json

log = logging.getLogger(__name__)


def check_reranker_files(model_dir) -> str:
    """Refuse models TextRerankPipeline cannot run: on a plain decoder LLM it aborts the process."""
    config = read_json(model_dir / "config.json")
    archs = [str(a) for a in config.get("architectures") or []]
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "cross_encoder"
    if config.get("model_type") == "qwen3":
        return "qwen3_decoder"
    raise ModelLoadError(
        f"{model_dir} is not a reranker: config.json needs a *ForSequenceClassification architecture "
        f"(cross-encoder) or model_type 'qwen3' (got architectures={archs}, model_type={config.get('model_type')!r})")


class RerankServable:

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options: RerankOptions = parse_options(RerankOptions, spec.options, "rerank")
        self.pipeline: ov_genai.TextRerankPipeline | None = None
        self.tokenizer: ov_genai.Tokenizer | None = None
        self.max_model_len = 0
        self.model_type = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_batch_size(self) -> int:
        return self.options.max_batch_size

    def load(self) -> None:
        path = self.spec.base_path
        if not path.is_dir() or not (path / "openvino_model.xml").is_file():
            raise ModelLoadError(f"{self.name}: rerank needs an OpenVINO IR folder with openvino_model.xml: {path}")
        self.model_type = check_reranker_files(path)
        self.max_model_len = context_length(path, self.options.max_position_embeddings, False)
        config = ov_genai.TextRerankPipeline.Config()
        config.top_n = self.options.max_batch_size  # every call scores at most this many pairs
        config.max_length = self.max_model_len
        if self.model_type == "qwen3_decoder":
            config.padding_side = "left"
        try:
            self.pipeline = ov_genai.TextRerankPipeline(str(path), self.options.device, config,
                                                        **self.options.plugin_config)
            self.tokenizer = ov_genai.Tokenizer(str(path))
        except RuntimeError as exc:
            raise ModelLoadError(f"{self.name}: cannot load {path}: {reason_of(exc)}") from exc
        log.info("loaded %s from %s (%s, context %d)", self.name, path, self.model_type, self.max_model_len)

    def close(self) -> None:
        self.pipeline = None
        self.tokenizer = None

    def describe(self) -> dict[str, Any]:
        return {"rerank_scoring": self.model_type,
                "max_model_len": self.max_model_len, "max_allowed_chunks": self.options.max_allowed_chunks}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).input_ids.data[0].tolist()

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens), from one batched tokenizer call."""
        encoded = self.tokenizer.encode(texts, add_special_tokens=False)
        ids, mask = encoded.input_ids.data, encoded.attention_mask.data.astype(bool)
        return [row[keep].tolist() for row, keep in zip(ids, mask, strict=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def prepare_rerank(self, query: str, documents: Sequence[str], max_chunks_per_doc: int | None = None,
                       max_tokens_per_doc: int | None = None) -> RerankJob:
        if not query:
            raise InvalidRequest("query must not be empty", "query")
        query_ids = self.encode(query)
        if len(query_ids) > self.max_model_len // 2:
            query_ids = query_ids[: self.max_model_len // 2]
            query = self.decode(query_ids)
        chunk_tokens = self.max_model_len - len(query_ids) - PAIR_SPECIAL_TOKENS
        chunks, owners, doc_tokens = chunk_documents(
            documents, self.encode_many, self.decode, chunk_tokens, self.options.max_allowed_chunks, max_chunks_per_doc,
            max_tokens_per_doc)
        input_tokens = len(chunks) * (len(query_ids) + PAIR_SPECIAL_TOKENS) + doc_tokens
        return RerankJob([(query, chunk) for chunk in chunks], owners, len(documents), input_tokens)

    def infer(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Scores for (query, text) pairs, in order; one pipeline call per run of equal queries."""
        scores: list[float] = []
        for query, group in groupby(pairs, key=lambda pair: pair[0]):
            texts = [text for _, text in group]
            by_index = dict(self.pipeline.rerank(query, texts))
            scores.extend(float(by_index[i]) for i in range(len(texts)))
        return scores

    def rerank_scores(self, job: RerankJob, scores: Sequence[float]) -> list[float]:
        return job.max_per_document(scores)
