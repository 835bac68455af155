"""POST /responses: the OpenAI Responses API over the LLM servables.

Unary: one `response` object. Streaming: typed events (`response.created`, `response.in_progress`,
`response.output_item.added`, ... `response.completed`), each with a `sequence_number`, sent as
`event: <type>` + `data: <json>`. Output items: `reasoning`, `function_call`, `message`.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.disconnect import unless_disconnected
from gateway.media import policy_of, resolve_images
from gateway.openapi import json_or_sse
from gateway.openapi_events import ResponseStreamEvent
from gateway.openapi_models import ResponseObject
from gateway.routes import Api, declared_router
from gateway.sse import SSEResponse, framed
from scheduler.events import Chunk, Failed, RequestDone, SequenceDone
from servables.output_processor import OutputProcessor, normalize_arguments
from servables.structured_output import from_response_format
from servables.tool_parsers import ToolArgsDelta, ToolCallStart

from .generation import Run, collect, start_run
from .resolve import resolve
from .responses_protocol import ResponsesRequest

router = declared_router(api=Api.V3)


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class _Shape:
    id_prefix = "resp"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"input_tokens": prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens}


def response_object(run: Run, body: ResponsesRequest, status: str, output: list[dict[str, Any]],
                    usage: dict[str, Any] | None = None, incomplete: bool = False) -> dict[str, Any]:
    choice: Any = body.tool_choice or "auto"
    if not isinstance(choice, str):
        choice = choice.model_dump()
    return {
        "id": run.id, "object": "response", "created_at": run.created, "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None, "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.instructions, "max_output_tokens": body.max_output_tokens, "model": body.model,
        "output": output, "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": {"effort": body.reasoning.effort if body.reasoning else None, "summary": None},
        "store": False, "temperature": body.temperature, "top_p": body.top_p,
        "text": {"format": body.response_format() or {"type": "text"}},
        "tool_choice": choice, "tools": [t.model_dump(exclude_none=True) for t in body.tools or []],
        "truncation": "disabled", "usage": usage, "metadata": body.metadata or {}, "user": None,
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = ([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
               if status == "completed" else [])
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def _reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [], "status": "completed",
            "content": [{"type": "reasoning_text", "text": text}]}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


async def _unary(request: Request, run: Run, body: ResponsesRequest, processor: OutputProcessor) -> Response:
    try:
        choices, use = await unless_disconnected(request, collect(run))
    finally:
        await run.events.aclose()
    choice = choices[0]
    parsed = processor.parse("".join(choice.text))
    output: list[dict[str, Any]] = []
    if parsed.reasoning:
        output.append(_reasoning_item(_item_id("rs"), parsed.reasoning))
    for call in parsed.tool_calls:
        output.append(_call_item(_item_id("fc"), call.id, call.name, call.arguments))
    if parsed.content or not parsed.tool_calls:
        output.append(_message_item(_item_id("msg"), parsed.content))
    incomplete = choice.finish_reason == "length"
    usage = _usage(use["prompt_tokens"], use["completion_tokens"])
    return JSONResponse(response_object(run, body, "incomplete" if incomplete else "completed", output, usage,
                                        incomplete))


class _EventWriter:
    """Builds the typed event sequence and the output items as deltas arrive."""

    def __init__(self, run: Run, body: ResponsesRequest):
        self.run, self.body = run, body
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, int] = {}  # "reasoning" / "message" / "call:<i>" -> output index
        self.texts: dict[int, str] = {}

    def event(self, kind: str, **fields: Any) -> dict[str, str]:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return {"event": kind, "data": json.dumps(payload, ensure_ascii=False, separators=(",", ":"))}

    def start(self) -> list[dict[str, str]]:
        snapshot = response_object(self.run, self.body, "in_progress", [])
        return [self.event("response.created", response=snapshot),
                self.event("response.in_progress", response=snapshot)]

    def _add(self, key: str, item: dict[str, Any]) -> tuple[int, dict[str, str]]:
        index = len(self.output)
        self.output.append(item)
        self.open[key] = index
        self.texts[index] = ""
        return index, self.event("response.output_item.added", output_index=index, item=item)

    def reasoning(self, text: str) -> list[dict[str, str]]:
        events = []
        if "reasoning" not in self.open:
            item = {"id": _item_id("rs"), "type": "reasoning", "summary": [], "status": "in_progress"}
            events.append(self._add("reasoning", item)[1])
        index = self.open["reasoning"]
        self.texts[index] += text
        events.append(self.event("response.reasoning_text.delta", item_id=self.output[index]["id"],
                                 output_index=index, content_index=0, delta=text))
        return events

    def content(self, text: str) -> list[dict[str, str]]:
        events = []
        if "message" not in self.open:
            index, added = self._add("message", _message_item(_item_id("msg"), "", "in_progress"))
            events.append(added)
            events.append(self.event("response.content_part.added", item_id=self.output[index]["id"],
                                     output_index=index, content_index=0,
                                     part={"type": "output_text", "text": "", "annotations": []}))
        index = self.open["message"]
        self.texts[index] += text
        events.append(self.event("response.output_text.delta", item_id=self.output[index]["id"], output_index=index,
                                 content_index=0, delta=text, logprobs=[]))
        return events

    def call_start(self, start: ToolCallStart) -> list[dict[str, str]]:
        item = _call_item(_item_id("fc"), start.id, start.name, "", "in_progress")
        return [self._add(f"call:{start.index}", item)[1]]

    def call_args(self, delta: ToolArgsDelta) -> list[dict[str, str]]:
        index = self.open[f"call:{delta.index}"]
        self.texts[index] += delta.text
        return [self.event("response.function_call_arguments.delta", item_id=self.output[index]["id"],
                           output_index=index, delta=delta.text)]

    def close_all(self) -> list[dict[str, str]]:
        events = self.content("") if not self.output else []  # an empty answer is still one message
        for key, index in sorted(self.open.items(), key=lambda kv: kv[1]):
            item, text = self.output[index], self.texts[index]
            if key == "reasoning":
                events.append(self.event("response.reasoning_text.done", item_id=item["id"], output_index=index,
                                         content_index=0, text=text))
                item = _reasoning_item(item["id"], text)
            elif key == "message":
                events.append(self.event("response.output_text.done", item_id=item["id"], output_index=index,
                                         content_index=0, text=text, logprobs=[]))
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                events.append(self.event("response.content_part.done", item_id=item["id"], output_index=index,
                                         content_index=0, part=part))
                item = _message_item(item["id"], text)
            else:
                arguments = normalize_arguments(text)
                events.append(self.event("response.function_call_arguments.done", item_id=item["id"],
                                         output_index=index, arguments=arguments, name=item["name"]))
                item = _call_item(item["id"], item["call_id"], item["name"], arguments)
            self.output[index] = item
            events.append(self.event("response.output_item.done", output_index=index, item=item))
        self.open.clear()
        return events

    def deltas(self, delta) -> list[dict[str, str]]:
        events = []
        if delta.reasoning:
            events += self.reasoning(delta.reasoning)
        if delta.content:
            events += self.content(delta.content)
        for item in delta.tool_calls:
            events += self.call_start(item) if isinstance(item, ToolCallStart) else self.call_args(item)
        return events


async def _stream(run: Run, body: ResponsesRequest, processor: OutputProcessor) -> AsyncIterator[dict]:
    writer = _EventWriter(run, body)
    finish_reason = None
    try:
        for out in writer.start():
            yield out
        async for event in run.all_events():
            if isinstance(event, Chunk) and event.text:
                for out in writer.deltas(processor.feed(event.text)):
                    yield out
            elif isinstance(event, SequenceDone):
                finish_reason = event.finish_reason
                for out in writer.deltas(processor.finish()):
                    yield out
            elif isinstance(event, RequestDone):
                for out in writer.close_all():
                    yield out
                incomplete = finish_reason == "length"
                final = response_object(run, body, "incomplete" if incomplete else "completed", writer.output,
                                        _usage(event.prompt_tokens, event.completion_tokens), incomplete)
                yield writer.event("response.incomplete" if incomplete else "response.completed", response=final)
                yield {"data": "[DONE]"}
                return
            elif isinstance(event, Failed):
                failed = response_object(run, body, "failed", writer.output)
                failed["error"] = {"code": "server_error", "message": getattr(event.error, "message", str(event.error))}
                yield writer.event("response.failed", response=failed)
                yield {"data": "[DONE]"}
                return
    finally:
        await run.events.aclose()


@router.post("/responses", responses=json_or_sse(ResponseObject, ResponseStreamEvent))
async def create_response(body: ResponsesRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "responses")
    servable = deployment.servable
    messages, images = await resolve_images(body.messages(), policy_of(request.app.state),
                                            getattr(servable, "accepts_images", False), body.model)
    job = servable.prepare_chat(messages, body.sampling_params(), body.template_kwargs(),
                                body.tool_request(), from_response_format(body.response_format()), images=images)
    processor = servable.output_processor(job)
    run = await start_run(request, deployment.engine.submit(job), body.model, _Shape(), job.num_sequences)
    if body.stream:
        return SSEResponse(framed(_stream(run, body, processor)), ping=15)
    return await _unary(request, run, body, processor)
