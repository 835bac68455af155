"""The OpenAI wire protocol for chat and completions, as pydantic models.

Types are strict (a string where a number belongs is a 400, not coerced). Unknown fields are
rejected with a 400 naming them, except the few OpenAI itself accepts and ignores (`user`).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from servables.errors import InvalidRequest
from servables.sampling import SamplingParams
from servables.speculative import SpeculativeParams
from servables.tools import ToolRequest

from ..limits import INT32_MAX, UINT32_MAX, UINT64_MAX

if TYPE_CHECKING:
    from typing_extensions import TypeIs

Number = StrictInt | StrictFloat


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(_Strict):
    include_usage: StrictBool = False


class TextPart(_Strict):
    type: Literal["text"]
    text: StrictStr


class ImageURL(_Strict):
    url: StrictStr = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None  # accepted; the model's processor sets the resolution


class ImagePart(_Strict):
    """`{"type": "image_url", "image_url": {"url": ..., "detail": ...}}` (a bare URL string is accepted too)."""

    type: Literal["image_url"]
    image_url: ImageURL | StrictStr

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


class VideoURL(_Strict):
    url: StrictStr = Field(min_length=1)


class VideoPart(_Strict):
    """`{"type": "video_url", "video_url": {"url": ...}}` (vLLM's shape; a bare URL string is accepted too)."""

    type: Literal["video_url"]
    video_url: VideoURL | StrictStr

    @property
    def url(self) -> str:
        return self.video_url if isinstance(self.video_url, str) else self.video_url.url


class FunctionCall(_Strict):
    name: StrictStr
    arguments: StrictStr | dict[str, Any] = "{}"


class ToolCallIn(_Strict):
    """An assistant message's earlier tool call, sent back in the conversation."""

    id: StrictStr | None = None
    type: Literal["function"] = "function"
    function: FunctionCall

    def as_template(self) -> dict[str, Any]:
        arguments: Any = self.function.arguments
        if isinstance(arguments, str):  # templates iterate over arguments: give them the object
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                pass
        call: dict[str, Any] = {"type": "function", "function": {"name": self.function.name, "arguments": arguments}}
        if self.id is not None:
            call["id"] = self.id
        return call


class FunctionDef(_Strict):
    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class ToolDef(_Strict):
    """A function tool, nested (`{"type", "function": {...}}`, OpenAI) or flat (`{"type", "name", ...}`, as OVMS)."""

    type: Literal["function"]
    function: FunctionDef | None = None
    name: StrictStr | None = Field(default=None, min_length=1)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None

    def as_dict(self) -> dict[str, Any]:
        function = self.function
        if function is None:
            if self.name is None:
                raise InvalidRequest("Function object does not contain a valid name field", "tools")
            function = FunctionDef(name=self.name, description=self.description, parameters=self.parameters,
                                   strict=self.strict)
        return {"type": "function", "function": function.model_dump(exclude_none=True)}


class NamedFunction(_Strict):
    name: StrictStr


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


def tool_request(tools: list[ToolDef] | None, choice: ToolChoice | None, parallel: bool | None) -> ToolRequest | None:
    if not tools:
        if choice not in (None, "none"):
            raise InvalidRequest("tool_choice is only allowed when tools are specified", "tool_choice")
        return None
    if isinstance(choice, NamedToolChoice):
        choice_value: Any = {"type": "function", "function": {"name": choice.function.name}}
    else:
        choice_value = choice or "auto"
    return ToolRequest([t.as_dict() for t in tools], choice_value, parallel)


# the roles OpenAI's Chat Completions API defines ("function" is its deprecated predecessor of "tool")
ChatRole = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(_Strict):
    role: ChatRole
    content: StrictStr | list[TextPart | ImagePart | VideoPart] | None = None
    name: StrictStr | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: StrictStr | None = None
    reasoning_content: StrictStr | None = None

    def as_template_message(self, where: str = "messages") -> dict[str, Any]:
        """The message for the chat template. With image or video parts, content stays a list of
        `{"type": "text"}` and `{"type": "image" | "video", "url", "param"}` parts (gateway/media.py fetches them)."""
        content: Any = self.content
        if isinstance(content, list):
            if any(isinstance(part, ImagePart | VideoPart) for part in content):
                content = [{"type": "text", "text": part.text} if isinstance(part, TextPart) else
                           {"type": "image" if isinstance(part, ImagePart) else "video", "url": part.url,
                            "param": f"{where}.content[{index}]"}
                           for index, part in enumerate(content)]
            else:
                content = "".join(part.text for part in content if isinstance(part, TextPart))
        message: dict[str, Any] = {"role": self.role, "content": content or ""}
        if self.name is not None:
            message["name"] = self.name
        if self.tool_calls:
            message["tool_calls"] = [call.as_template() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        if self.reasoning_content:
            message["reasoning_content"] = self.reasoning_content
        return message


class _GenerationRequest(_Strict):
    model: StrictStr = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=0, le=UINT32_MAX)  # 0: echo only (completions)
    temperature: Number | None = None
    top_p: Number | None = None
    top_k: StrictInt | None = Field(default=None, ge=-1, le=INT32_MAX)
    min_p: Number | None = None
    seed: StrictInt | None = Field(default=None, ge=0, le=UINT64_MAX)
    stop: StrictStr | list[StrictStr] | None = None
    n: StrictInt = Field(default=1, ge=1, le=INT32_MAX)
    best_of: StrictInt | None = Field(default=None, ge=1, le=INT32_MAX)
    presence_penalty: Number | None = None
    frequency_penalty: Number | None = None
    repetition_penalty: Number | None = None
    length_penalty: Number | None = None
    ignore_eos: StrictBool = False
    include_stop_str_in_output: StrictBool | None = None
    user: StrictStr | None = None  # accepted and ignored, as OpenAI does
    response_format: dict[str, Any] | None = None
    # speculative decoding (OVMS's names; servables/speculative.py)
    num_assistant_tokens: StrictInt | None = None
    assistant_confidence_threshold: Number | None = None
    max_ngram_size: StrictInt | None = None
    min_tokens: StrictInt | None = None  # vLLM / llama-server: GenerationConfig.min_new_tokens
    stop_token_ids: list[StrictInt] | None = None  # vLLM: stop at any of these token ids

    def check_stream_options(self) -> None:
        if self.stream_options is not None and not self.stream:
            raise InvalidRequest("stream_options provided, but stream not set to true", "stream_options")

    def sampling_params(self, max_tokens: int | None, logprobs: bool,
                        max_tokens_param: str = "max_tokens") -> SamplingParams:
        self.check_stream_options()
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
            min_p=self.min_p, seed=self.seed, stop=stop, n=self.n, best_of=self.best_of,
            presence_penalty=self.presence_penalty, frequency_penalty=self.frequency_penalty,
            repetition_penalty=self.repetition_penalty, length_penalty=self.length_penalty,
            ignore_eos=self.ignore_eos, include_stop_str_in_output=bool(self.include_stop_str_in_output),
            logprobs=logprobs, stream=self.stream, max_tokens_param=max_tokens_param, min_tokens=self.min_tokens,
            stop_token_ids=list(self.stop_token_ids or []),
            speculative=SpeculativeParams(self.num_assistant_tokens, self.assistant_confidence_threshold,
                                          self.max_ngram_size),
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1, le=UINT32_MAX)
    logprobs: StrictBool = False
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)  # OpenAI's range
    chat_template_kwargs: dict[str, Any] | None = None
    tools: list[ToolDef] | None = Field(default=None, min_length=1)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None

    def tool_request(self) -> ToolRequest | None:
        return tool_request(self.tools, self.tool_choice, self.parallel_tool_calls)

    def to_sampling_params(self) -> SamplingParams:
        if self.top_logprobs:
            raise InvalidRequest(
                "top_logprobs is not supported: openvino_genai returns only the chosen token's logprob",
                "top_logprobs",
            )
        if self.top_logprobs is not None and not self.logprobs:
            raise InvalidRequest("top_logprobs requires logprobs to be true", "top_logprobs")
        if self.max_completion_tokens is not None:
            return self.sampling_params(self.max_completion_tokens, self.logprobs, "max_completion_tokens")
        return self.sampling_params(self.max_tokens, self.logprobs)


def _strings(prompt: list[int] | list[str]) -> TypeIs[list[str]]:
    """pydantic validated the list whole as one of the two: its first item tells which."""
    return bool(prompt) and isinstance(prompt[0], str)


class CompletionRequest(_GenerationRequest):
    prompt: StrictStr | list[StrictInt] | list[StrictStr]
    echo: StrictBool = False
    logprobs: StrictInt | None = Field(default=None, ge=0, le=5)  # OpenAI's range

    def to_sampling_params(self) -> SamplingParams:
        if self.logprobs is not None and self.logprobs not in (0, 1):
            raise InvalidRequest(
                "accepted logprobs values are 0 and 1: openvino_genai returns only the chosen token's logprob",
                "logprobs",
            )
        return self.sampling_params(self.max_tokens, bool(self.logprobs))

    def single_prompt(self) -> str | list[int]:
        """The one prompt of the request: a string or a list of token ids."""
        prompt = self.prompt
        if isinstance(prompt, list) and _strings(prompt):
            if len(prompt) != 1:
                raise InvalidRequest("Only one prompt per request is supported", "prompt")
            prompt = prompt[0]
        if not prompt:
            raise InvalidRequest("prompt is missing", "prompt")
        return prompt
