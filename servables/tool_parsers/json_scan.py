"""Tolerant scanning of JSON text that is still being generated.

Tool-call parsers see model output token by token, so objects are usually incomplete. These helpers
find top-level objects and their keys without needing the text to parse as JSON yet.
"""
from __future__ import annotations

import json
from dataclasses import dataclass


def value_end(text: str, start: int) -> int | None:
    """Index just past the JSON value that begins at `start`, or None if it is not complete yet."""
    if start >= len(text):
        return None
    opener = text[start]
    if opener == '"':
        i = start + 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                return i + 1
            i += 1
        return None
    if opener in "{[":
        depth, i, in_string = 0, start, False
        while i < len(text):
            ch = text[i]
            if in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return None
    i = start  # number, true, false, null: ends at a delimiter
    while i < len(text) and text[i] not in ",}] \n\r\t":
        i += 1
    return i if i < len(text) else None


def skip_space(text: str, i: int, extra: str = "") -> int:
    while i < len(text) and (text[i].isspace() or text[i] in extra):
        i += 1
    return i


def split_objects(text: str, start: int = 0, separators: str = ",;") -> list[str]:
    """Consecutive `{...}` objects from `start`; the last one may be incomplete. Stops at anything else."""
    objects: list[str] = []
    i = skip_space(text, start, separators)
    while i < len(text) and text[i] == "{":
        end = value_end(text, i)
        if end is None:
            objects.append(text[i:])
            break
        objects.append(text[i:end])
        i = skip_space(text, end, separators)
    return objects


@dataclass
class ObjectKeys:
    """Top-level keys of a (possibly incomplete) object: key -> (value start, value end or None)."""

    values: dict[str, tuple[int, int | None]]
    first_key: str | None


def object_keys(obj: str) -> ObjectKeys:
    values: dict[str, tuple[int, int | None]] = {}
    first: str | None = None
    i = skip_space(obj, 1)
    while i < len(obj) and obj[i] == '"':
        key_end = value_end(obj, i)
        if key_end is None:
            break
        key = json.loads(obj[i:key_end])
        first = first if first is not None else key
        i = skip_space(obj, key_end)
        if i >= len(obj) or obj[i] != ":":
            break
        i = skip_space(obj, i + 1)
        if i >= len(obj):
            values[key] = (i, None)
            break
        end = value_end(obj, i)
        values[key] = (i, end)
        if end is None:
            break
        i = skip_space(obj, end, ",")
    return ObjectKeys(values, first)


@dataclass
class CallScan:
    name: str | None
    arguments: str | None  # text of the arguments so far (a prefix while incomplete)
    complete: bool


ARGUMENT_KEYS = ("arguments", "parameters")


def scan_call(obj: str) -> CallScan:
    """Name and argument text of one `{"name": ..., "arguments"|"parameters": ...}` object."""
    keys = object_keys(obj).values
    name = None
    if "name" in keys and keys["name"][1] is not None:
        start, end = keys["name"]
        try:
            value = json.loads(obj[start:end])
            name = value if isinstance(value, str) else None
        except ValueError:
            name = None
    arguments = None
    for key in ARGUMENT_KEYS:
        if key in keys:
            start, end = keys[key]
            if start < len(obj) and obj[start] == '"':  # arguments sent as a JSON string: only whole
                arguments = json.loads(obj[start:end]) if end is not None else None
            else:
                arguments = obj[start:end] if end is not None else obj[start:].rstrip()
            break
    complete = value_end(obj, 0) is not None
    if complete and arguments is None and name is not None:
        arguments = "{}"
    return CallScan(name, arguments, complete)
