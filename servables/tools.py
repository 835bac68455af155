"""What a chat request asks of tools: which to show the template, and whether a call is forced."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest


@dataclass
class ToolRequest:
    """`tools` in the nested OpenAI form ({"type": "function", "function": {...}})."""

    tools: list[dict[str, Any]]
    choice: str | dict[str, Any] = "auto"  # "auto" | "none" | "required" | {"type": "function", ...}
    parallel: bool | None = None

    def offered(self) -> list[dict[str, Any]]:
        """The tools the template shows (OVMS: "none" shows none, a named function only itself)."""
        if self.choice == "none":
            return []
        name = self.forced_name()
        if name is not None:
            chosen = [t for t in self.tools if t["function"]["name"] == name]
            if not chosen:
                raise InvalidRequest(f"tool_choice names function '{name}', which is not in tools", "tool_choice")
            return chosen
        return self.tools

    def forced_name(self) -> str | None:
        if isinstance(self.choice, dict):
            function = self.choice.get("function") or {}
            return function.get("name") or self.choice.get("name")
        return None

    @property
    def must_call(self) -> bool:
        return self.choice == "required" or self.forced_name() is not None


def check_tools(tools: list[dict[str, Any]]) -> None:
    names = set()
    for tool in tools:
        name = tool["function"]["name"]
        if name in names:
            raise InvalidRequest(f"Duplicate tool name: {name}", "tools")
        names.add(name)
