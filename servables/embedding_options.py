"""The embeddings and rerank node options (OVMS embeddings/rerank graph options) accepted in a config entry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config_file import ConfigError
from .options import option_values

POOLINGS = ("CLS", "MEAN", "LAST")


@dataclass(frozen=True)
class BatchingOptions:
    device: str = "CPU"
    plugin_config: dict[str, Any] = field(default_factory=dict)
    max_batch_size: int = 32  # texts (or query-document pairs) per inference; 1 turns dynamic batching off
    max_wait_ms: int = 5  # how long the first queued request waits for company
    max_queue_size: int = 1024  # queued texts before 503
    max_position_embeddings: int | None = None  # overrides the context length read from the model


@dataclass(frozen=True)
class EmbeddingsOptions(BatchingOptions):
    pooling: str | None = None  # CLS | MEAN | LAST; None = from the sentence-transformers files, else CLS
    normalize: bool = True
    truncate: bool = False  # False: an input longer than the context is a 400
    matryoshka_dimensions: list[int] | None = None  # output sizes the model was trained to truncate to
    max_allowed_chunks: int = 10000  # when the model answers rerank


@dataclass(frozen=True)
class RerankOptions(BatchingOptions):
    max_allowed_chunks: int = 10000


def parse_options(cls: type, options: dict[str, Any], task: str) -> Any:
    """Build `cls` from a config entry's options; unknown names and wrong types are ConfigErrors."""
    values = option_values(cls, options, task, {"normalize_embeddings": "normalize"})
    if values.get("max_batch_size", 1) < 1:
        raise ConfigError("option 'max_batch_size' must be at least 1")
    pooling = values.get("pooling")
    if pooling is not None:
        values["pooling"] = pooling.upper()
        if values["pooling"] not in POOLINGS:
            raise ConfigError(f"option 'pooling' must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    dims = values.get("matryoshka_dimensions")
    if dims is not None and not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ConfigError("option 'matryoshka_dimensions' must be a list of positive integers")
    return cls(**values)


def validate_embeddings(options: dict[str, Any]) -> EmbeddingsOptions:
    """Option validator of the `embeddings` kind (servables/kinds.py)."""
    return parse_options(EmbeddingsOptions, options, "embeddings")


def validate_rerank(options: dict[str, Any]) -> RerankOptions:
    """Option validator of the `rerank` kind (servables/kinds.py)."""
    return parse_options(RerankOptions, options, "rerank")
