"""`--list_models`, `--add_to_config`, `--remove_from_config`: inspect a model repository and edit
its `config.json` (written atomically, so a polling server never reads half a file)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import model_dir
from .config_file import ConfigError


def list_models(repository: Path) -> list[str]:
    """Models in the repository, by the name they were pulled as (`org/name`)."""
    repository = Path(repository)
    if not repository.is_dir():
        raise ConfigError(f"model repository {repository} does not exist")
    names = []
    for settings in sorted(repository.rglob(model_dir.SETTINGS_FILE)):
        relative = settings.parent.relative_to(repository)
        if relative.parts and relative.parts[0].startswith("."):
            continue  # unfinished pulls
        names.append(relative.as_posix())
    return names


def _read(config_path: Path) -> dict[str, Any]:
    if not config_path.exists():
        return {"model_config_list": []}
    try:
        document = json.loads(config_path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{config_path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("model_config_list", []), list):
        raise ConfigError(f"{config_path}: top level must be an object with a 'model_config_list' array")
    document.setdefault("model_config_list", [])
    return document


def _write(config_path: Path, document: dict[str, Any]) -> None:
    config_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_name(config_path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=4) + "\n")
    os.replace(tmp, config_path)


def _relative(base_path: Path, config_path: Path) -> str:
    """Relative to the config file's folder when inside it (the repository moves as one)."""
    try:
        return Path(base_path).resolve().relative_to(config_path.parent.resolve()).as_posix()
    except ValueError:
        return str(Path(base_path).resolve())


def add_to_config(config_path: Path, name: str, base_path: Path, extra: dict[str, Any] | None = None) -> bool:
    """Add (or update) the entry `name`; True when the file changed."""
    config_path = Path(config_path)
    if not Path(base_path).exists():
        raise ConfigError(f"model path {base_path} does not exist")
    document = _read(config_path)
    entry = {"name": name, "base_path": _relative(base_path, config_path), **(extra or {})}
    entries = document["model_config_list"]
    for item in entries:
        if isinstance(item, dict) and isinstance(item.get("config"), dict) and item["config"].get("name") == name:
            if item["config"] == entry:
                return False
            item["config"] = entry
            break
    else:
        entries.append({"config": entry})
    _write(config_path, document)
    return True


def remove_from_config(config_path: Path, name: str) -> None:
    config_path = Path(config_path)
    document = _read(config_path)
    entries = document["model_config_list"]
    kept = [e for e in entries if not (isinstance(e, dict) and isinstance(e.get("config"), dict)
                                       and e["config"].get("name") == name)]
    if len(kept) == len(entries):
        raise ConfigError(f"{config_path}: there is no model named {name!r}")
    document["model_config_list"] = kept
    _write(config_path, document)
