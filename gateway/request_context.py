"""What a route tells the observability middleware about its request (kept in the ASGI scope state)."""
from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


def _state(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    return scope.setdefault("state", {})


def note_model(scope: MutableMapping[str, Any], name: str) -> None:
    _state(scope)["model"] = name


def note_model_version(scope: MutableMapping[str, Any], version: str) -> None:
    """The version a tensor request was served by (metrics label it)."""
    _state(scope)["model_version"] = version


def note_operation(scope: MutableMapping[str, Any], operation: str, model: str, version: str | None) -> None:
    """A tensor API call whose operation and model the route's path parameters do not name (TFS)."""
    _state(scope)["operation"] = (operation, model, version or "")


def note_usage(scope: MutableMapping[str, Any], prompt_tokens: int, completion_tokens: int | None) -> None:
    state = _state(scope)
    state["prompt_tokens"] = prompt_tokens
    state["completion_tokens"] = completion_tokens


def noted(scope: MutableMapping[str, Any], key: str) -> Any:
    return scope.get("state", {}).get(key)
