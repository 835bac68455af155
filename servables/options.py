"""Turn a config entry's node options into the typed fields of a kind's options dataclass."""
from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from .config_file import ConfigError

ALIASES = {"target_device": "device"}  # OVMS spells some options two ways
_TYPES: dict[str, Any] = {
    "int": int, "bool": bool, "str": str, "dict[str, Any]": dict, "int | None": (int, type(None)),
    "str | None": (str, type(None)), "float | None": (int, float, type(None)),
    "list[int] | None": (list, type(None)), "list[dict[str, Any]]": list,
    "dict[str, Any] | None": (dict, type(None)),
}


def option_values(cls: type, options: dict[str, Any], task: str,
                  aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """The options as keyword arguments of `cls`; unknown names, wrong types, negative integers and
    malformed `plugin_config` JSON are `ConfigError`s naming the option."""
    known = {f.name: f for f in fields(cls)}
    renames = {**ALIASES, **(aliases or {})}
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = renames.get(key, key)
        if name in renames.values() and key != name and name in options:
            continue  # both spellings given: the canonical one wins
        values[name] = value
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown {task} option(s): {', '.join(unknown)}")
    if isinstance(values.get("plugin_config"), str):
        try:
            values["plugin_config"] = json.loads(values["plugin_config"] or "{}")
        except ValueError as exc:
            raise ConfigError(f"option 'plugin_config' is not valid JSON: {exc}") from exc
    for name, value in values.items():
        annotation = known[name].type
        if isinstance(value, bool) and annotation != "bool":
            raise ConfigError(f"option '{name}' has the wrong type: {value!r}")
        if not isinstance(value, _TYPES[annotation]):
            raise ConfigError(f"option '{name}' has the wrong type: {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"option '{name}' must not be negative, got {value}")
    return values
