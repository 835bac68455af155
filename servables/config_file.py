"""Read an OVMS-style `config.json` into `ModelSpec`s.

Generative entries are `{"config": {"name", "base_path", "task"?, <node options>...}}`; the task is
inferred from the model files when absent. Errors say which file, entry and field are wrong.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import ModelSpec
from .tasks import TASKS, infer_task

ENTRY_KEYS = {"name", "base_path", "task", "version"}


class ConfigError(ValueError):
    """The config file (or one entry of it) is invalid; the message names file, entry and field."""


def _entry_error(path: Path, index: int, name: str | None, message: str) -> ConfigError:
    where = f"{path}: model_config_list[{index}]" + (f" ({name})" if name else "")
    return ConfigError(f"{where}: {message}")


def spec_from_entry(config: dict[str, Any], base_dir: Path, where: str = "") -> ModelSpec:
    """Build one `ModelSpec` from the inner `config` object of an entry."""
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}field 'name' must be a non-empty string")
    base_path = config.get("base_path")
    if not isinstance(base_path, str) or not base_path:
        raise ConfigError(f"{where}field 'base_path' must be a non-empty string")
    path = Path(base_path).expanduser()
    if not path.is_absolute():
        path = (base_dir / path).resolve()
    task = config.get("task")
    if task is None:
        task = infer_task(path)
        if task is None:
            raise ConfigError(
                f"{where}field 'task' is missing and cannot be inferred from the files in {path}"
            )
    elif task not in TASKS:
        raise ConfigError(f"{where}field 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    options = {k: v for k, v in config.items() if k not in ENTRY_KEYS}
    return ModelSpec(name=name, base_path=path, task=task, options=options)


def load_config_file(path: Path) -> list[ModelSpec]:
    """Parse the whole file; raise `ConfigError` on the first problem."""
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("model_config_list"), list):
        raise ConfigError(f"{path}: top level must be an object with a 'model_config_list' array")
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["model_config_list"]):
        if not isinstance(entry, dict) or set(entry) != {"config"} or not isinstance(entry["config"], dict):
            raise _entry_error(path, index, None, 'each entry must be {"config": {...}}')
        name = entry["config"].get("name")
        where = f"{path}: model_config_list[{index}]" + (f" ({name})" if isinstance(name, str) else "") + ": "
        spec = spec_from_entry(entry["config"], Path(path).parent, where)
        if spec.name in seen:
            raise _entry_error(path, index, spec.name, "duplicate model name")
        seen.add(spec.name)
        specs.append(spec)
    return specs
