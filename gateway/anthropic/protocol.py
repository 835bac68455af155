"""The Anthropic Messages API request (POST /v1/messages, /v1/messages/count_tokens), as pydantic models.

Field names and shapes follow Anthropic's "Messages" API reference. Types are strict and unknown
fields are a 400 naming them; `cache_control`, `citations`, `metadata`, `service_tier` and
`output_config.effort` are accepted and ignored (nothing is cached or billed per tier here).
The request maps onto the chat template's messages and our tool machinery (servables/tools.py)
as chat/completions does.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from servables.errors import InvalidRequest
from servables.sampling import SamplingParams
from servables.tools import ToolRequest

Number = StrictInt | StrictFloat


class AnthropicModel(BaseModel):
    """The one base of this protocol: strict types, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TextBlock(AnthropicModel):
    type: Literal["text"]
    text: StrictStr
    cache_control: dict[str, Any] | None = None
    citations: list[dict[str, Any]] | None = None


class ImageBlock(AnthropicModel):
    type: Literal["image"]
    source: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class DocumentBlock(AnthropicModel):
    type: Literal["document"]
    source: dict[str, Any]
    title: StrictStr | None = None
    context: StrictStr | None = None
    citations: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None


class ToolUseBlock(AnthropicModel):
    type: Literal["tool_use"]
    id: StrictStr
    name: StrictStr
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class ToolResultBlock(AnthropicModel):
    type: Literal["tool_result"]
    tool_use_id: StrictStr
    content: StrictStr | list[TextBlock | ImageBlock] | None = None
    is_error: StrictBool | None = None
    cache_control: dict[str, Any] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(_text_only(part, "tool_result.content") for part in self.content)


class ThinkingBlock(AnthropicModel):
    type: Literal["thinking"]
    thinking: StrictStr
    signature: StrictStr | None = None


class RedactedThinkingBlock(AnthropicModel):
    type: Literal["redacted_thinking"]
    data: StrictStr


ContentBlock = Annotated[
    TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Field(discriminator="type"),
]


def _text_only(block: Any, where: str) -> str:
    if isinstance(block, TextBlock):
        return block.text
    raise InvalidRequest(f"This servable supports only text input, but {block.type} content has been provided in "
                         f"{where}", "messages")


class Message(AnthropicModel):
    role: Literal["user", "assistant"]
    content: StrictStr | list[ContentBlock]

    def template_messages(self) -> list[dict[str, Any]]:
        """This turn as chat-template messages: tool results become `tool` messages, tool uses `tool_calls`."""
        if isinstance(self.content, str):
            return [{"role": self.role, "content": self.content}]
        out: list[dict[str, Any]] = []
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in self.content:
            if isinstance(block, ToolResultBlock):
                if self.role != "user":
                    raise InvalidRequest("tool_result blocks belong in user messages", "messages")
                out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": block.text()})
            elif isinstance(block, ToolUseBlock):
                if self.role != "assistant":
                    raise InvalidRequest("tool_use blocks belong in assistant messages", "messages")
                calls.append({"id": block.id, "type": "function",
                              "function": {"name": block.name, "arguments": block.input}})
            elif isinstance(block, (ThinkingBlock, RedactedThinkingBlock)):
                continue  # earlier reasoning is not sent back to the model
            else:
                texts.append(_text_only(block, f"{self.role} message"))
        if texts or calls or not out:
            message: dict[str, Any] = {"role": self.role, "content": "".join(texts)}
            if calls:
                message["tool_calls"] = calls
            out.append(message)
        return out


class Tool(AnthropicModel):
    """A client tool. Anthropic's server tools (web search, code execution, ...) are not served."""

    name: StrictStr = Field(min_length=1)
    input_schema: dict[str, Any]
    description: StrictStr | None = None
    type: Literal["custom"] | None = None
    cache_control: dict[str, Any] | None = None

    def as_chat_tool(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": self.input_schema}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


class ToolChoice(AnthropicModel):
    type: Literal["auto", "any", "tool", "none"]
    name: StrictStr | None = None
    disable_parallel_tool_use: StrictBool | None = None


class ThinkingEnabled(AnthropicModel):
    type: Literal["enabled"]
    budget_tokens: StrictInt = Field(ge=1024)
    display: Literal["summarized", "omitted"] | None = None


class ThinkingAdaptive(AnthropicModel):
    """The model decides: thinking is on when the model has a reasoning parser."""

    type: Literal["adaptive"]
    display: Literal["summarized", "omitted"] | None = None


class ThinkingDisabled(AnthropicModel):
    type: Literal["disabled"]


Thinking = Annotated[ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled, Field(discriminator="type")]


class OutputFormat(AnthropicModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(AnthropicModel):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: OutputFormat | None = None


class _Prompt(AnthropicModel):
    """What both endpoints render into a prompt."""

    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: StrictStr | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None

    def template_messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        system = self.system if isinstance(self.system, str) or self.system is None else "".join(
            block.text for block in self.system)
        if system:
            messages.append({"role": "system", "content": system})
        for message in self.messages:
            messages.extend(message.template_messages())
        return messages

    def tool_request(self) -> ToolRequest | None:
        choice = self.tool_choice
        if not self.tools:
            if choice is not None and choice.type in ("any", "tool"):
                raise InvalidRequest(f"tool_choice {choice.type} needs tools", "tool_choice")
            return None
        if choice is not None and choice.type == "tool" and not choice.name:
            raise InvalidRequest("tool_choice.name is required when tool_choice.type is tool", "tool_choice")
        if choice is not None and choice.type != "tool" and choice.name is not None:
            raise InvalidRequest("tool_choice.name is only allowed when tool_choice.type is tool", "tool_choice")
        value: Any = {"auto": "auto", "any": "required", "none": "none"}.get(choice.type if choice else "auto")
        if choice is not None and choice.type == "tool":
            value = {"type": "function", "function": {"name": choice.name}}
        parallel = False if choice is not None and choice.disable_parallel_tool_use else None
        return ToolRequest([tool.as_chat_tool() for tool in self.tools], value, parallel)

    def template_kwargs(self, has_reasoning_parser: bool) -> dict[str, Any] | None:
        """`thinking` becomes the templates' `enable_thinking`; enabling it needs a reasoning parser."""
        if self.thinking is None:
            return None
        if isinstance(self.thinking, ThinkingEnabled) and not has_reasoning_parser:
            raise InvalidRequest(f"Model {self.model} has no reasoning parser: thinking cannot be enabled", "thinking")
        return {"enable_thinking": not isinstance(self.thinking, ThinkingDisabled) and has_reasoning_parser}

    @property
    def omit_thinking(self) -> bool:
        """`display: "omitted"`: thinking blocks are sent, their text is not."""
        return getattr(self.thinking, "display", None) == "omitted"


class MessagesRequest(_Prompt):
    max_tokens: StrictInt = Field(ge=1)
    stop_sequences: list[Annotated[StrictStr, Field(min_length=1)]] | None = Field(default=None, max_length=16)
    stream: StrictBool = False
    temperature: Number | None = Field(default=None, ge=0, le=1)
    top_p: Number | None = None
    top_k: StrictInt | None = None
    metadata: dict[str, Any] | None = None
    service_tier: StrictStr | None = None
    cache_control: dict[str, Any] | None = None
    output_config: OutputConfig | None = None

    def response_format(self) -> dict[str, Any] | None:
        """`output_config.format` in the Responses API's `text.format` form (servables/structured_output.py)."""
        output_format = self.output_config.format if self.output_config else None
        return None if output_format is None else {"type": "json_schema", "schema": output_format.schema_}

    def sampling_params(self) -> SamplingParams:
        if isinstance(self.thinking, ThinkingEnabled) and self.thinking.budget_tokens >= self.max_tokens:
            raise InvalidRequest("thinking.budget_tokens must be less than max_tokens", "thinking")
        # the stop string stays in the output so that the gateway sees which one ended the turn
        # (gateway/anthropic/stop.py cuts it off and reports it as `stop_sequence`)
        return SamplingParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                              top_k=self.top_k, stop=list(self.stop_sequences or []), stream=self.stream,
                              include_stop_str_in_output=bool(self.stop_sequences), fit_to_context=True)


class CountTokensRequest(_Prompt):
    pass


def tool_input(arguments: str) -> dict[str, Any]:
    """A parsed call's arguments as the `input` object of a `tool_use` block."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
