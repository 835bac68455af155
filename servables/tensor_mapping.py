"""`mapping_config.json` in a model version folder: the names clients use for its tensors
(as OVMS reads it from the version folder: `{"inputs": {"<tensor>": "<alias>"}, "outputs": {...}}`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelLoadError

MAPPING_FILE = "mapping_config.json"


@dataclass(frozen=True)
class TensorMapping:
    inputs: dict[str, str] = field(default_factory=dict)  # model tensor name -> exposed name
    outputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> TensorMapping:
        file = folder / MAPPING_FILE
        if not folder.is_dir() or not file.is_file():
            return cls()
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{file}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or set(data) - {"inputs", "outputs"}:
            raise ModelLoadError(f"{file}: must be {{\"inputs\": {{...}}, \"outputs\": {{...}}}}")
        parts = {}
        for side in ("inputs", "outputs"):
            names = data.get(side) or {}
            if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                      for k, v in names.items()):
                raise ModelLoadError(f"{file}: {side!r} must map tensor names to non-empty alias strings")
            if len(set(names.values())) != len(names):
                raise ModelLoadError(f"{file}: {side!r} gives two tensors the same alias")
            parts[side] = dict(names)
        return cls(parts["inputs"], parts["outputs"])

    def aliases(self) -> dict[str, str]:
        """Exposed name -> model tensor name, both sides."""
        return {alias: name for names in (self.inputs, self.outputs) for name, alias in names.items()}
