"""Infer a model's task from its files, as OVMS does when `task` is not given (OVMS_REFERENCE 3.8)."""
from __future__ import annotations

import json
from pathlib import Path

TEXT_GENERATION = "text_generation"
EMBEDDINGS = "embeddings"
RERANK = "rerank"
IMAGE_GENERATION = "image_generation"
TENSOR = "tensor"  # classic IR/ONNX model with numeric version folders
TASKS = (TEXT_GENERATION, EMBEDDINGS, RERANK, IMAGE_GENERATION, TENSOR)


def _architectures(model_dir: Path) -> list[str]:
    config = model_dir / "config.json"
    if not config.is_file():
        return []
    try:
        return list(json.loads(config.read_text()).get("architectures") or [])
    except (OSError, ValueError):
        return []


def infer_task(path: Path) -> str | None:
    """Return the task of the model at `path`, or None when the files say nothing.

    Priority as in OVMS: rerank -> image_generation -> embeddings -> text_generation.
    """
    if path.is_file():
        return TEXT_GENERATION if path.suffix == ".gguf" else TENSOR if path.suffix in (".xml", ".onnx") else None
    if not path.is_dir():
        return None
    if any(p.is_dir() and p.name.isdigit() for p in path.iterdir()):
        return TENSOR
    if any(path.glob("*.gguf")):
        return TEXT_GENERATION
    archs = _architectures(path)
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return RERANK
    if (path / "model_index.json").is_file():
        return IMAGE_GENERATION
    if (path / "modules.json").is_file() or (path / "sentence_bert_config.json").is_file():
        return EMBEDDINGS
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return TEXT_GENERATION
    if any(a.endswith("Model") for a in archs):
        return EMBEDDINGS
    return None
