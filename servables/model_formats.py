"""The model formats OpenVINO reads directly, told apart by their files: IR, ONNX, TensorFlow,
TensorFlow Lite and PaddlePaddle, the classic formats OVMS serves.

In a version folder the first match wins, in this order. A TensorFlow SavedModel is its folder
(`saved_model.pb` + `variables/`); every other format is one file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelFormat:
    name: str
    pattern: str  # glob in a version folder
    whole_folder: bool = False  # OpenVINO reads the folder, not the file


FORMATS: tuple[ModelFormat, ...] = (
    ModelFormat("OpenVINO IR", "*.xml"),
    ModelFormat("ONNX", "*.onnx"),
    ModelFormat("TensorFlow SavedModel", "saved_model.pb", whole_folder=True),
    ModelFormat("TensorFlow frozen graph", "*.pb"),
    ModelFormat("TensorFlow Lite", "*.tflite"),
    ModelFormat("PaddlePaddle", "*.pdmodel"),
)
SUFFIXES: tuple[str, ...] = (".xml", ".onnx", ".pb", ".tflite", ".pdmodel")


def format_of(path: Path) -> tuple[ModelFormat, Path] | None:
    """The format of a model file, or of the model inside a version folder, and the path to read."""
    if path.is_file():
        for model_format in FORMATS:
            if path.match(model_format.pattern):
                return model_format, path.parent if model_format.whole_folder else path
        return None
    for model_format in FORMATS:
        files = sorted(p for p in path.glob(model_format.pattern) if p.is_file())
        if files:
            return model_format, path if model_format.whole_folder else files[0]
    return None
