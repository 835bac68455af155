"""Split rerank documents into chunks that fit the model context (OVMS docs/model_server_rest_api_rerank.md), and
fold chunk scores back into one score per document (the max over its chunks)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest

# [CLS] query [SEP] chunk [SEP] needs 3 special tokens; OVMS reserves 4.
PAIR_SPECIAL_TOKENS = 4


@dataclass
class RerankJob:
    """One prepared rerank request: the items the engine runs and which document each chunk is from.

    `items` are whatever the servable's `infer` takes (query-chunk pairs for a cross-encoder,
    texts for an embedding model); `chunk_doc[i]` is the document index of chunk i.
    """

    items: list[Any]
    chunk_doc: list[int]
    num_documents: int
    input_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)

    def max_per_document(self, chunk_scores: Sequence[float]) -> list[float]:
        scores = [float("-inf")] * self.num_documents
        for doc, score in zip(self.chunk_doc, chunk_scores, strict=False):
            scores[doc] = max(scores[doc], float(score))
        return scores


def split_ids(ids: list[int], size: int) -> list[list[int]]:
    if not ids:
        return [[]]
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def chunk_documents(documents: Sequence[str], encode_many: Callable[[list[str]], list[list[int]]],
                    decode: Callable[[list[int]], str], chunk_tokens: int, max_allowed_chunks: int,
                    max_chunks_per_doc: int | None = None,
                    max_tokens_per_doc: int | None = None) -> tuple[list[str], list[int], int]:
    """Chunk every document to at most `chunk_tokens` tokens (no special tokens).

    Returns (chunk texts, document index per chunk, total document tokens). A document that fits
    stays as it is, so its text reaches the model unchanged. `max_tokens_per_doc` cuts each
    document first (Cohere v2); `max_chunks_per_doc` keeps only the first chunks.
    """
    if len(documents) > max_allowed_chunks:
        raise InvalidRequest(
            f"Number of documents exceeds max_allowed_chunks: {len(documents)} > {max_allowed_chunks}", "documents")
    if chunk_tokens < 1:
        raise InvalidRequest("The query leaves no room for documents in the model context", "query")
    texts: list[str] = []
    owners: list[int] = []
    total = 0
    for index, (document, ids) in enumerate(zip(documents, encode_many(list(documents)), strict=False)):
        if max_tokens_per_doc is not None and len(ids) > max_tokens_per_doc:
            ids = ids[:max_tokens_per_doc]
            document = decode(ids)
        total += len(ids)
        pieces = [document] if len(ids) <= chunk_tokens else [decode(p) for p in split_ids(ids, chunk_tokens)]
        if max_chunks_per_doc is not None:
            pieces = pieces[:max_chunks_per_doc]
        texts.extend(pieces)
        owners.extend([index] * len(pieces))
        if len(texts) > max_allowed_chunks:
            raise InvalidRequest(
                f"Chunking failed: exceeding max_allowed_chunks after chunking limit: {max_allowed_chunks}; "
                f"actual: {len(texts)}+", "documents")
    return texts, owners, total
