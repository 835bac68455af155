"""Facts read from a model folder's JSON files: context length, pooling, model type."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_CONTEXT = 512


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sentence_transformers_pooling(model_dir: Path) -> str | None:
    """CLS / MEAN / LAST from the sentence-transformers pooling module, or None when there is none."""
    pooling_dirs = [model_dir / "1_Pooling"]
    for module in read_json_list(model_dir / "modules.json"):
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling") and module.get("path"):
            pooling_dirs.insert(0, model_dir / str(module["path"]))
    for folder in pooling_dirs:
        config = read_json(folder / "config.json")
        if config.get("pooling_mode_mean_tokens"):
            return "MEAN"
        if config.get("pooling_mode_cls_token"):
            return "CLS"
        if config.get("pooling_mode_lasttoken"):
            return "LAST"
    return None


def read_json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def context_length(model_dir: Path, override: int | None, prefer_sentence_transformers: bool) -> int:
    """The longest input in tokens: the option, the sentence-transformers `max_seq_length` (what the
    embedding model was trained with), `config.json` `max_position_embeddings`, else 512."""
    if override:
        return override
    if prefer_sentence_transformers:
        value = read_json(model_dir / "sentence_bert_config.json").get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    config = read_json(model_dir / "config.json")
    for key in ("max_position_embeddings", "max_trained_positions"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return config[key]
    return DEFAULT_CONTEXT


def hidden_size(model_dir: Path) -> int | None:
    value = read_json(model_dir / "config.json").get("hidden_size")
    return value if isinstance(value, int) else None
