"""Error messages fit for clients: the reason of an OpenVINO exception, and no paths of the server's disk.

OpenVINO's exceptions start with the C++ source location (`Exception from <file>.cpp:<line>:`) and
the reason follows on the next line; `reason_of` returns that reason. Load errors reach clients
(`GET /v1/config`, which is public, `POST /v1/config/reload`, a model load answered to a request);
`without_paths` shortens every absolute path in them to `.../<last component>`, which still tells
the operator which file or folder is meant while the server log keeps the full message.
"""
from __future__ import annotations

import re

_SOURCE_LOCATION = re.compile(r"^\s*(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:?)\s*$")
# an absolute POSIX path: a "/" not preceded by a word character, ":", "/", "." or "~" (so URLs and
# relative paths stay), then everything up to whitespace, a quote or a closing bracket
_ABSOLUTE_PATH = re.compile(r"""(?<![\w:/.~-])/[^\s'"`)\]>]*""")


def reason_of(exc: BaseException) -> str:
    """The first line of an exception's message that is not a C++ source location."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [line for line in lines if not _SOURCE_LOCATION.match(line)]
    return (reasons or lines or [type(exc).__name__])[0]


def _shorten(match: re.Match[str]) -> str:
    text = match.group(0)
    trailing = ""
    while text and text[-1] in ".,;:":  # sentence punctuation after the path
        text, trailing = text[:-1], text[-1] + trailing
    parts = [part for part in text.split("/") if part]
    return (f".../{parts[-1]}" if parts else text) + trailing


def without_paths(message: str) -> str:
    """`message` with each absolute path shortened to `.../<last component>`."""
    return _ABSOLUTE_PATH.sub(_shorten, message)
