"""A model folder's own settings file, written by `genai-gateway pull` next to the model files.

`genai_gateway.json` plays the part of OVMS's generated `graph.pbtxt`: the task, the file to load
(a `.gguf` inside the folder) and the task's node options, so that a pulled folder can be served
by path or by name without repeating them. Options in a config entry or on the CLI win.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETTINGS_FILE = "genai_gateway.json"


@dataclass
class ModelFolder:
    load_path: Path  # what the servable loads: the folder, or the .gguf file inside it
    task: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def read_settings(folder: Path) -> dict[str, Any]:
    file = Path(folder) / SETTINGS_FILE
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_settings(folder: Path, settings: dict[str, Any]) -> None:
    tmp = Path(folder) / (SETTINGS_FILE + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n")
    tmp.replace(Path(folder) / SETTINGS_FILE)


def resolve(path: Path) -> ModelFolder:
    """What to load from `path` and the defaults its settings file gives."""
    path = Path(path)
    if not path.is_dir():
        return ModelFolder(path)
    settings = read_settings(path)
    load_path = path
    gguf = settings.get("gguf_filename")
    if isinstance(gguf, str) and (path / gguf).is_file():
        load_path = path / gguf
    elif not (path / "openvino_model.xml").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            load_path = ggufs[0]
    options = settings.get("options") if isinstance(settings.get("options"), dict) else {}
    task = settings.get("task") if isinstance(settings.get("task"), str) else None
    return ModelFolder(load_path, task, dict(options), settings)
