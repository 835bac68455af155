"""The payloads of the Server-Sent Events the streaming endpoints send, as pydantic models for OpenAPI.

Like gateway/openapi_models.py, documentation only: the stream writers build these objects
themselves (gateway/openai/generation.py, responses.py, audio.py, gateway/anthropic/stream.py).
How an event stream is described (OpenAPI 3.1, docs/openapi.md): the `text/event-stream` schema is
one event, `{"event"?, "data", "id"?}`, and `data` is a string whose `contentMediaType` is
`application/json` with the payload as its `contentSchema` (JSON Schema 2020-12), or the literal
`[DONE]` that ends the OpenAI streams.
"""
from __future__ import annotations

from typing import Any, Literal

from .openapi_models import ErrorDetail, Usage, _Doc

# --- OpenAI chat and completions --------------------------------------------------------------------


class ToolCallDelta(_Doc):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: dict[str, Any] | None = None  # {"name"?, "arguments"?}: pieces of the call


class ChatDelta(_Doc):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(_Doc):
    index: int
    delta: ChatDelta
    logprobs: dict[str, Any] | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(_Doc):
    """One `data:` event of a chat completion stream; with `stream_options.include_usage`, the last
    one has no choices and the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChunkChoice(_Doc):
    index: int
    text: str
    logprobs: dict[str, Any] | None = None
    finish_reason: str | None = None


class CompletionChunk(_Doc):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None


class StreamError(_Doc):
    """A failure after the 200 was sent: the error body as the last event (no `[DONE]`)."""

    error: ErrorDetail


# --- OpenAI Responses API ---------------------------------------------------------------------------

ResponseEventType = Literal[
    "response.created", "response.in_progress", "response.output_item.added", "response.output_item.done",
    "response.content_part.added", "response.content_part.done", "response.output_text.delta",
    "response.output_text.done", "response.reasoning_text.delta", "response.reasoning_text.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.completed",
    "response.incomplete", "response.failed"]


class ResponseStreamEvent(_Doc):
    """A typed Responses API event (the SSE `event:` is its `type`); its other fields depend on the type."""

    type: ResponseEventType
    sequence_number: int
    response: dict[str, Any] | None = None  # created, in_progress, completed, incomplete, failed
    item: dict[str, Any] | None = None  # output_item.*
    output_index: int | None = None
    item_id: str | None = None
    content_index: int | None = None
    delta: str | None = None
    text: str | None = None


# --- OpenAI audio transcriptions and translations --------------------------------------------------

class TranscriptStreamEvent(_Doc):
    """`transcript.text.delta` (`delta`), then `transcript.text.done` (`text`, `usage`), or `error`."""

    type: Literal["transcript.text.delta", "transcript.text.done", "error"]
    delta: str | None = None
    text: str | None = None
    usage: dict[str, Any] | None = None
    error: ErrorDetail | None = None


# --- Anthropic Messages API -------------------------------------------------------------------------

class MessageStreamEvent(_Doc):
    """An event of Anthropic's message stream (its "Streaming Messages" documentation); the SSE
    `event:` is its `type`."""

    type: Literal["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                  "message_delta", "message_stop", "ping", "error"]
    message: dict[str, Any] | None = None  # message_start
    index: int | None = None  # content_block_*
    content_block: dict[str, Any] | None = None  # content_block_start
    delta: dict[str, Any] | None = None  # content_block_delta, message_delta
    usage: dict[str, Any] | None = None  # message_delta
    error: dict[str, Any] | None = None  # error: {"type", "message"}


# registered in components/schemas by gateway/openapi.py
PAYLOADS = (ChatCompletionChunk, CompletionChunk, StreamError, ResponseStreamEvent, TranscriptStreamEvent,
            MessageStreamEvent)
