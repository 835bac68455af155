"""POST /messages and /messages/count_tokens: the Anthropic Messages API over the LLM servables.

Served under /v1 (where Anthropic's SDKs post: `{base_url}/v1/messages`), /v3 and /v3/v1, like the
OpenAI routes. The request runs on the same engine, chat template, tool parser, tool-guided
generation and reasoning parser as chat/completions; only the wire shapes differ.
"""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.disconnect import unless_disconnected
from gateway.error_policy import ErrorFamily, policy_of
from gateway.media import policy_of as media_policy_of
from gateway.media import resolve_images
from gateway.openai.generation import Run, collect, start_run
from gateway.openai.resolve import resolve
from gateway.openapi import json_or_sse
from gateway.openapi_events import MessageStreamEvent
from gateway.openapi_models import AnthropicMessage, MessageTokensCount
from gateway.request_context import note_usage
from gateway.routes import Api, declared_router
from gateway.sse import SSEResponse, event_bytes, framed
from scheduler.events import Chunk, Failed, RequestDone, SequenceDone
from servables.output_processor import OutputProcessor
from servables.sampling import SamplingParams
from servables.structured_output import from_response_format

from .protocol import CountTokensRequest, MessagesRequest, tool_input
from .stop import StopSequenceCutter
from .stream import MessageStreamWriter, message_object

router = declared_router(api=Api.V3, errors=ErrorFamily.ANTHROPIC)


class _Shape:
    id_prefix = "msg"


def stop_reason(finish_reason: str | None, cutter: StopSequenceCutter, tool_calls: int, context_bound: bool) -> str:
    """`context_bound`: max_tokens was lowered to what the context window had left."""
    if cutter.matched is not None:
        return "stop_sequence"
    if finish_reason == "length":
        return "model_context_window_exceeded" if context_bound else "max_tokens"
    return "tool_use" if tool_calls else "end_turn"


def _content(processor: OutputProcessor, text: str, omit_thinking: bool) -> list[dict[str, Any]]:
    parsed = processor.parse(text)
    content: list[dict[str, Any]] = []
    if parsed.reasoning:
        content.append({"type": "thinking", "thinking": "" if omit_thinking else parsed.reasoning, "signature": ""})
    if parsed.content or not parsed.tool_calls:
        content.append({"type": "text", "text": parsed.content})
    content += [{"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call.arguments)}
                for call in parsed.tool_calls]
    return content


async def _unary(request: Request, run: Run, message_id: str, processor: OutputProcessor,
                 cutter: StopSequenceCutter, omit_thinking: bool, context_bound: bool) -> Response:
    try:
        choices, use = await unless_disconnected(request, collect(run))
    finally:
        await run.events.aclose()
    note_usage(run.scope, use["prompt_tokens"], use["completion_tokens"])
    choice = choices[0]
    content = _content(processor, cutter.cut("".join(choice.text)), omit_thinking)
    reason = stop_reason(choice.finish_reason, cutter, processor.tool_calls_seen, context_bound)
    return JSONResponse(message_object(message_id, run.model, content, reason, cutter.matched,
                                       use["prompt_tokens"], use["completion_tokens"]))


async def _stream(run: Run, writer: MessageStreamWriter, processor: OutputProcessor,
                  cutter: StopSequenceCutter, context_bound: bool) -> AsyncIterator[dict[str, str]]:
    finish_reason: str | None = None
    try:
        for opening in writer.start():
            yield opening
        async for event in run.all_events():
            if isinstance(event, Chunk) and event.text:
                for out in writer.deltas(processor.feed(cutter.feed(event.text))):
                    yield out
            elif isinstance(event, SequenceDone):
                finish_reason = event.finish_reason
                for out in writer.deltas(processor.feed(cutter.finish())) + writer.deltas(processor.finish()):
                    yield out
            elif isinstance(event, RequestDone):
                note_usage(run.scope, event.prompt_tokens, event.completion_tokens)
                reason = stop_reason(finish_reason, cutter, writer.tool_calls, context_bound)
                for out in writer.finish(reason, cutter.matched, event.completion_tokens, event.prompt_tokens):
                    yield out
                return
            elif isinstance(event, Failed):
                yield writer.error(policy_of(event.error).anthropic_type,
                                   getattr(event.error, "message", str(event.error)))
                return
    finally:
        await run.events.aclose()


PING = event_bytes('{"type":"ping"}', "ping")  # Anthropic's keep-alive event


async def _messages_and_images(body: CountTokensRequest | MessagesRequest, request: Request,
                               servable: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """The template messages, with `image` blocks fetched and decoded under the server's media policy."""
    return await resolve_images(body.template_messages(), media_policy_of(request.app.state),
                                getattr(servable, "accepts_images", False), body.model)


@router.post("/messages", responses=json_or_sse(AnthropicMessage, MessageStreamEvent, done=False))
async def create_message(body: MessagesRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "messages")
    servable = deployment.servable
    messages, images = await _messages_and_images(body, request, servable)
    job = servable.prepare_chat(messages, body.sampling_params(),
                                body.template_kwargs(servable.reasoning_parser is not None), body.tool_request(),
                                from_response_format(body.response_format()), images=images)
    processor = servable.output_processor(job)
    cutter = StopSequenceCutter(body.stop_sequences or [])
    context_bound = servable.max_model_len is not None and job.config.max_new_tokens < body.max_tokens
    run = await start_run(request, deployment.engine.submit(job), body.model, _Shape(), 1)
    message_id = f"msg_{uuid.uuid4().hex}"
    if body.stream:
        writer = MessageStreamWriter(message_id, body.model, job.prompt_tokens, body.omit_thinking)
        return SSEResponse(framed(_stream(run, writer, processor, cutter, context_bound)), ping=15,
                           ping_event=PING)
    return await _unary(request, run, message_id, processor, cutter, body.omit_thinking, context_bound)


@router.post("/messages/count_tokens", response_model=None, responses={200: {"model": MessageTokensCount}})
async def count_tokens(body: CountTokensRequest, request: Request) -> dict[str, int]:
    """The prompt's token count, rendered exactly as POST /messages renders it (with images: as the pipeline
    counted them in a one-token run)."""
    deployment = resolve(request, body.model, "messages")
    servable = deployment.servable
    messages, images = await _messages_and_images(body, request, servable)
    job = servable.prepare_chat(messages, SamplingParams(max_tokens=1),
                                body.template_kwargs(servable.reasoning_parser is not None), body.tool_request(),
                                images=images)
    if not images:
        return {"input_tokens": job.prompt_tokens}
    # an image's token count is known only to the pipeline: prefill once (one output token) and read it
    run = await start_run(request, deployment.engine.submit(job), body.model, _Shape(), 1)
    try:
        _, use = await unless_disconnected(request, collect(run))
    finally:
        await run.events.aclose()
    return {"input_tokens": use["prompt_tokens"]}
