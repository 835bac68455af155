"""The OpenAI Responses API request (POST /responses), and its mapping onto chat messages and tools."""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from servables.errors import InvalidRequest
from servables.sampling import SamplingParams
from servables.tools import ToolRequest

from ..limits import UINT32_MAX, UINT64_MAX
from .protocol import Number


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FunctionTool(_Strict):
    type: Literal["function"]
    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None

    def as_chat_tool(self) -> dict[str, Any]:
        function = {"name": self.name, "parameters": self.parameters or {"type": "object", "properties": {}}}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


class NamedFunctionChoice(_Strict):
    type: Literal["function"]
    name: StrictStr


class TextConfig(_Strict):
    format: dict[str, Any] | None = None
    verbosity: StrictStr | None = None


class ReasoningConfig(_Strict):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: StrictStr | None = None


class ResponsesRequest(_Strict):
    model: StrictStr = Field(min_length=1)
    input: StrictStr | list[dict[str, Any]]
    instructions: StrictStr | None = None
    stream: StrictBool = False
    max_output_tokens: StrictInt | None = Field(default=None, ge=1, le=UINT32_MAX)
    temperature: Number | None = None
    top_p: Number | None = None
    seed: StrictInt | None = Field(default=None, ge=0, le=UINT64_MAX)
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunctionChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    # accepted and ignored, as by OVMS: nothing is stored between requests
    store: StrictBool | None = None
    metadata: dict[str, Any] | None = None
    user: StrictStr | None = None
    truncation: StrictStr | None = None

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(max_tokens=self.max_output_tokens, temperature=self.temperature, top_p=self.top_p,
                              seed=self.seed, include_stop_str_in_output=False, stream=self.stream,
                              max_tokens_param="max_output_tokens")

    def response_format(self) -> dict[str, Any] | None:
        return self.text.format if self.text else None

    def template_kwargs(self) -> dict[str, Any] | None:
        kwargs = dict(self.chat_template_kwargs or {})
        if self.reasoning is not None and self.reasoning.effort not in (None, "minimal"):
            kwargs.setdefault("enable_thinking", True)
        return kwargs or None

    def tool_request(self) -> ToolRequest | None:
        if not self.tools:
            if self.tool_choice not in (None, "none"):
                raise InvalidRequest("tool_choice is only allowed when tools are specified", "tool_choice")
            return None
        choice: Any = self.tool_choice or "auto"
        if isinstance(choice, NamedFunctionChoice):
            choice = {"type": "function", "function": {"name": choice.name}}
        return ToolRequest([t.as_chat_tool() for t in self.tools], choice, self.parallel_tool_calls)

    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            if not self.input:
                raise InvalidRequest("input cannot be empty", "input")
            messages.append({"role": "user", "content": self.input})
            return messages
        if not self.input:
            raise InvalidRequest("input array must not be empty", "input")
        for position, item in enumerate(self.input):
            _append_item(messages, item, f"input[{position}]")
        return messages


def _image_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    """`{"type": "input_image", "image_url": "...", "detail": ...}` -> an image part for gateway/media.py."""
    url = part.get("image_url")
    if isinstance(url, dict):  # the chat shape {"url": ...}, as some clients send it
        url = url.get("url")
    if not isinstance(url, str) or not url:
        if part.get("file_id") is not None:
            raise InvalidRequest(f"{param}: file_id is not supported (nothing is stored); send image_url", param)
        raise InvalidRequest(f"{param}.image_url must be a URL string", param)
    if part.get("detail") not in (None, "auto", "low", "high"):
        raise InvalidRequest(f"{param}.detail must be auto, low or high", param)
    return {"type": "image", "url": url, "param": param}


def _text_of(content: Any, where: str) -> str | list[dict[str, Any]]:
    """The message content: a string, or (with `input_image` parts) a list of text and image parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of content parts", where)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            parts.append(_image_part(part, f"{where}.content[{index}]"))
        elif kind in ("input_file", "input_audio"):
            raise InvalidRequest(f"This servable supports only text and image input, but {kind} has been provided",
                                 where)
        else:
            raise InvalidRequest(f"{where}: unsupported content part {kind!r}", where)
    if any(part["type"] == "image" for part in parts):
        return parts
    return "".join(part["text"] for part in parts)


def _require(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}.{key} must be a string", where)
    return value


def _append_item(messages: list[dict[str, Any]], item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object", "input")
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise InvalidRequest(f"{where}.role must be user, assistant, system or developer, not {role!r}",
                                 f"{where}.role")
        messages.append({"role": "system" if role == "developer" else role,
                         "content": _text_of(item.get("content", ""), where)})
    elif kind == "function_call":
        call_id = item.get("call_id") or item.get("id")
        arguments = _require(item, "arguments", where)
        try:
            parsed: Any = json.loads(arguments or "{}")
        except ValueError:
            parsed = arguments
        call = {"id": call_id, "type": "function", "function": {"name": _require(item, "name", where),
                                                               "arguments": parsed}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if not isinstance(output, str):
            output = json.dumps(output)
        messages.append({"role": "tool", "tool_call_id": _require(item, "call_id", where), "content": output})
    elif kind == "reasoning":
        return  # earlier reasoning is not sent back to the model
    else:
        raise InvalidRequest(f"{where}: unsupported input item type {kind!r}", "input")
