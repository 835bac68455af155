"""Read an OVMS-style `config.json` into `ModelSpec`s, validated against a JSON schema.

Generative entries are `{"config": {"name", "base_path", "task"?, <node options>...}}`; the task is
inferred from the model files when absent. A file-level problem (not JSON, wrong top level) makes
the whole file invalid; a problem in one entry skips that entry only. Every message names the
file, the entry and the field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model_dir, object_storage
from .base import ModelSpec
from .errors import ServingError
from .kinds import NAMES, infer_task, validate_options

ENTRY_KEYS = {"name", "base_path", "task", "version", "priority", "weight"}

# Top level (OVMS docs/multiple_models_mode.md). Lists we do not serve are accepted and ignored.
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model_config_list"],
    "additionalProperties": False,
    "properties": {
        "model_config_list": {"type": "array"},
        "mediapipe_config_list": {"type": "array"},
        "pipeline_config_list": {"type": "array"},
        "custom_node_library_config_list": {"type": "array"},
        "custom_loader_config_list": {"type": "array"},
        "monitoring": {"type": "object"},
    },
}

_POSITIVE_INT = {"type": "integer", "minimum": 0}
_SHAPE = {"oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]}

# One `model_config_list` item. The OVMS fields are typed here; task node options (cache_size, pooling
# ...) pass through and are checked by the kind's option validator (servables/kinds.py).
ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["config"],
    "additionalProperties": False,
    "properties": {
        "config": {
            "type": "object",
            "required": ["name", "base_path"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "base_path": {"type": "string", "minLength": 1},
                "task": {"enum": list(NAMES)},
                "graph_path": {"type": "string"},
                "subconfig": {"type": "string"},
                "batch_size": {"oneOf": [_POSITIVE_INT, {"const": "auto"}]},
                "shape": _SHAPE,
                "layout": _SHAPE,
                "model_version_policy": {
                    "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                    "properties": {
                        "all": {"type": "object", "additionalProperties": False},
                        "latest": {"type": "object", "required": ["num_versions"], "additionalProperties": False,
                                   "properties": {"num_versions": {"type": "integer", "minimum": 1}}},
                        "specific": {"type": "object", "required": ["versions"], "additionalProperties": False,
                                     "properties": {"versions": {"type": "array", "minItems": 1,
                                                                 "items": {"type": "integer", "minimum": 1}}}},
                    },
                },
                "nireq": _POSITIVE_INT,
                "priority": {"type": "integer", "minimum": 0},
                "weight": {"type": "number", "exclusiveMinimum": 0},
                "target_device": {"type": "string"},
                "device": {"type": "string"},
                "allow_cache": {"type": "boolean"},
                "plugin_config": {"oneOf": [
                    {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                    {"type": "string"},
                ]},
            },
        },
    },
}

class ConfigError(ValueError):
    """The config file (or one entry of it) is invalid; the message names file, entry and field."""


@dataclass
class ConfigContents:
    """A parsed file: the valid entries, and the skipped ones as {name or entry label: reason}."""

    specs: list[ModelSpec] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)


def _schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    messages = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            messages.append(f"{'field ' + repr(where) + ': ' if where else ''}unknown field(s) {', '.join(extra)}")
        elif error.validator == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            messages.append(f"{'in ' + repr(where) + ': ' if where else ''}missing field(s) {', '.join(missing)}")
        else:
            messages.append(f"field {where!r}: {error.message}" if where else error.message)
    return messages


def spec_from_entry(config: dict[str, Any], base_dir: Path, where: str = "") -> ModelSpec:
    """Build one `ModelSpec` from the inner `config` object of an entry."""
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}field 'name' must be a non-empty string")
    base_path = config.get("base_path")
    if not isinstance(base_path, str) or not base_path:
        raise ConfigError(f"{where}field 'base_path' must be a non-empty string")
    source = None
    if object_storage.is_remote(base_path):  # s3:// gs:// azure://: served from a local mirror
        source = base_path
        try:
            path = object_storage.sync(base_path)
        except ServingError as exc:
            raise ConfigError(f"{where}field 'base_path': {exc}") from exc
    else:
        path = Path(base_path).expanduser()
        if not path.is_absolute():
            path = (base_dir / path).resolve()
    folder = model_dir.resolve(path)  # a pulled folder: its settings give task, file and defaults
    path = folder.load_path
    task = config.get("task") or folder.task
    if task is None:
        if not path.exists():
            raise ConfigError(f"{where}field 'base_path': {path} does not exist")
        task = infer_task(path)
        if task is None:
            raise ConfigError(
                f"{where}field 'task' is missing and cannot be inferred from the files in {path}"
            )
    elif task not in NAMES:
        raise ConfigError(f"{where}field 'task' must be one of {', '.join(NAMES)}, got {task!r}")
    options = {**folder.options, **{k: v for k, v in config.items() if k not in ENTRY_KEYS}}
    try:
        validate_options(task, options)
    except ValueError as exc:
        raise ConfigError(f"{where}{exc}") from exc
    return ModelSpec(name=name, base_path=path, task=task, options=options, priority=config.get("priority"),
                     weight=config.get("weight"), source=source)


def read_config(path: Path) -> ConfigContents:
    """Parse the file. Raises `ConfigError` when the file as a whole is invalid (then nothing
    should change); entries that are invalid on their own are returned in `invalid`."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    problems = _schema_errors(document, FILE_SCHEMA)
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    contents = ConfigContents()
    seen: set[str] = set()
    for index, entry in enumerate(document["model_config_list"]):
        inner = entry.get("config") if isinstance(entry, dict) else None
        name = inner.get("name") if isinstance(inner, dict) and isinstance(inner.get("name"), str) else None
        label = f"model_config_list[{index}]"
        where = f"{path}: {label}" + (f" ({name})" if name else "") + ": "
        problems = _schema_errors(entry, ENTRY_SCHEMA)
        try:
            if problems:
                raise ConfigError(where + "; ".join(problems))
            if name in seen:
                raise ConfigError(where + "duplicate model name")
            spec = spec_from_entry(inner, path.parent, where)
        except ConfigError as exc:
            contents.invalid[name if name and name not in seen else label] = str(exc)
            continue
        seen.add(spec.name)
        contents.specs.append(spec)
    for index, entry in enumerate(document.get("pipeline_config_list") or []):
        _read_pipeline(entry, f"pipeline_config_list[{index}]", path, seen, contents)
    return contents


def _read_pipeline(entry: Any, label: str, path: Path, seen: set[str], contents: ConfigContents) -> None:
    """One `pipeline_config_list` entry (OVMS docs/dag_scheduler.md) -> a spec of kind `pipeline`,
    after the models it may use; its structure is checked here, its models when it loads."""
    name = entry.get("name") if isinstance(entry, dict) and isinstance(entry.get("name"), str) else None
    where = f"{path}: {label}" + (f" ({name})" if name else "") + ": "
    try:
        if name is None:
            raise ConfigError(where + "a pipeline needs a string 'name'")
        if name in seen:
            raise ConfigError(where + "duplicate model or pipeline name")
        options = {"pipeline": entry}
        try:
            validate_options("pipeline", options)
        except ValueError as exc:
            raise ConfigError(f"{where}{exc}") from exc
    except ConfigError as exc:
        contents.invalid[name if name and name not in seen else label] = str(exc)
        return
    seen.add(name)
    contents.specs.append(ModelSpec(name=name, base_path=path.parent.resolve(), task="pipeline", options=options))


def load_config_file(path: Path) -> list[ModelSpec]:
    """Parse the whole file; raise `ConfigError` on the first problem (strict)."""
    contents = read_config(path)
    if contents.invalid:
        raise ConfigError(next(iter(contents.invalid.values())))
    return contents.specs
