"""POST /chat/completions."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.media import policy_of, resolve_media
from gateway.openapi import json_or_sse
from gateway.openapi_events import ChatCompletionChunk, StreamError
from gateway.openapi_models import ChatCompletion
from gateway.routes import Api, declared_router
from servables.output_processor import OutputDelta, OutputProcessor
from servables.structured_output import from_response_format
from servables.tool_parsers import ToolArgsDelta, ToolCallStart

from .generation import Choice, start_run, streaming_response, unary_response
from .logprobs import TokenTexts, chat_logprobs
from .protocol import ChatCompletionRequest
from .resolve import resolve

router = declared_router(api=Api.V3)


def tool_call_deltas(delta: OutputDelta) -> list[dict[str, Any]]:
    """OpenAI stream deltas: the first piece of a call has id, type and name; later ones arguments."""
    out: list[dict[str, Any]] = []
    for item in delta.tool_calls:
        if isinstance(item, ToolCallStart):
            out.append({"index": item.index, "id": item.id, "type": "function",
                        "function": {"name": item.name, "arguments": ""}})
        elif isinstance(item, ToolArgsDelta):
            if out and out[-1]["index"] == item.index:
                out[-1]["function"]["arguments"] += item.text
            else:
                out.append({"index": item.index, "function": {"arguments": item.text}})
    return out


class ChatShape:
    object_unary = "chat.completion"
    object_chunk = "chat.completion.chunk"
    id_prefix = "chatcmpl"

    def __init__(self, token_texts: TokenTexts, logprobs: bool, new_processor):
        self.token_texts = token_texts
        self.logprobs = logprobs
        self.new_processor = new_processor  # () -> OutputProcessor, one per choice
        self.processors: dict[int, OutputProcessor] = {}

    def _logprobs(self, token_ids: list[int], logprobs: list[float] | None) -> dict[str, Any] | None:
        if not self.logprobs or logprobs is None:
            return None
        return chat_logprobs(self.token_texts, token_ids, logprobs)

    def _processor(self, index: int) -> OutputProcessor:
        if index not in self.processors:
            self.processors[index] = self.new_processor()
        return self.processors[index]

    def _finish_reason(self, index: int, finish_reason: str | None) -> str | None:
        if finish_reason == "stop" and self._processor(index).tool_calls_seen:
            return "tool_calls"
        return finish_reason

    def unary_choice(self, choice: Choice) -> dict[str, Any]:
        parsed = self._processor(choice.index).parse("".join(choice.text))
        message: dict[str, Any] = {"role": "assistant", "content": parsed.content}
        if parsed.reasoning:
            message["reasoning_content"] = parsed.reasoning
        if parsed.tool_calls:
            message["content"] = parsed.content or None
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in parsed.tool_calls]
        return {
            "index": choice.index,
            "message": message,
            "logprobs": self._logprobs(choice.token_ids, choice.logprobs),
            "finish_reason": self._finish_reason(choice.index, choice.finish_reason),
        }

    def first_delta(self, index: int) -> dict[str, Any]:
        return {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                "finish_reason": None}

    def chunk_choice(self, index: int, text: str, token_ids: list[int], logprobs: list[float] | None,
                     finish_reason: str | None) -> dict[str, Any] | None:
        processor = self._processor(index)
        if finish_reason is None and processor.plain:  # no parser: the text is the content (the common case)
            if not text and not (self.logprobs and logprobs):
                return None
            return {"index": index, "delta": {"content": text} if text else {},
                    "logprobs": self._logprobs(token_ids, logprobs), "finish_reason": None}
        parsed = processor.feed(text) if finish_reason is None else processor.finish()
        delta: dict[str, Any] = {}
        if parsed.reasoning:
            delta["reasoning_content"] = parsed.reasoning
        if parsed.content:
            delta["content"] = parsed.content
        if parsed.tool_calls:
            delta["tool_calls"] = tool_call_deltas(parsed)
        if not delta and finish_reason is None and not (self.logprobs and logprobs):
            return None  # everything was held back by a parser
        return {"index": index, "delta": delta, "logprobs": self._logprobs(token_ids, logprobs),
                "finish_reason": self._finish_reason(index, finish_reason)}


@router.post("/chat/completions", responses=json_or_sse(ChatCompletion, ChatCompletionChunk, StreamError))
async def create_chat_completion(body: ChatCompletionRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "chat/completions")
    servable = deployment.servable
    params = body.to_sampling_params()
    messages = [m.as_template_message(f"messages[{i}]") for i, m in enumerate(body.messages)]
    messages, images, videos = await resolve_media(messages, policy_of(request.app.state),
                                                   getattr(servable, "accepts_images", False),
                                                   getattr(servable, "accepts_video", False), body.model)
    job = servable.prepare_chat(messages, params, body.chat_template_kwargs, body.tool_request(),
                                from_response_format(body.response_format), images=images, videos=videos)
    job.streamed = bool(body.stream)
    shape = ChatShape(servable.token_strings, params.logprobs, lambda: servable.output_processor(job))
    run = await start_run(request, deployment.engine.submit(job), body.model, shape, job.num_sequences)
    if body.stream:
        return streaming_response(run, body.include_usage)
    return await unary_response(request, run)
