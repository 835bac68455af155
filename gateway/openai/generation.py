"""Runs a prepared LLM job on its engine and turns the events into OpenAI responses.

Chat and completions differ only in how a choice is shaped (`ChoiceShape`); collecting unary
results, SSE streaming, usage accounting and disconnect handling are shared here.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from gateway import fast_json
from gateway.disconnect import ClientDisconnected, unless_disconnected
from gateway.error_policy import openai_body, openai_error
from gateway.request_context import note_usage
from gateway.sse import DONE, SSEResponse, event_bytes
from scheduler.bridge import RequestStream
from scheduler.events import Chunk, Event, Failed, RequestDone, SequenceDone
from servables.errors import ServingError


@dataclass
class Choice:
    index: int
    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None


class RunShape(Protocol):
    """What a `Run` needs of its shape: the prefix of its id."""

    id_prefix: str


class ChoiceShape(RunShape, Protocol):
    """How one API family shapes its objects."""

    object_unary: str
    object_chunk: str

    def unary_choice(self, choice: Choice) -> dict[str, Any]: ...

    def first_delta(self, index: int) -> dict[str, Any] | None: ...

    def chunk_choice(self, index: int, text: str, token_ids: list[int], logprobs: list[float] | None,
                     finish_reason: str | None) -> dict[str, Any] | None:
        """One chunk's choice; None when there is nothing to send yet (a parser holds text back)."""
        ...


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


S = TypeVar("S", bound=RunShape)
S_co = TypeVar("S_co", bound=RunShape, covariant=True)  # a Run[ChatShape] is a Run[ChoiceShape]


class Run(Generic[S_co]):
    """One submitted request: its event iterator, the first event already awaited."""

    def __init__(self, events: AsyncGenerator[Event, None], first: Event, model: str, shape: S_co, num_choices: int):
        self.events = events
        self.first = first
        self.model = model
        self.shape = shape
        self.num_choices = num_choices
        self.id = f"{shape.id_prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.scope: Scope = {}

    async def all_events(self) -> AsyncIterator[Event]:
        yield self.first
        async for event in self.events:
            yield event

    def envelope(self, obj: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": choices,
                **extra}


async def start_run(request: Request, stream: RequestStream, model: str, shape: S, num_choices: int) -> Run[S]:
    """Wait for the first event (so early failures still get a proper HTTP status)."""
    events = stream.events()
    try:
        first = await unless_disconnected(request, events.__anext__())
    except ClientDisconnected:
        await events.aclose()
        raise
    if isinstance(first, Failed):
        raise first.error
    run = Run(events, first, model, shape, num_choices)
    run.scope = request.scope
    return run


async def collect(run: Run[Any]) -> tuple[dict[int, Choice], dict[str, int]]:
    choices = {i: Choice(i) for i in range(run.num_choices)}
    async for event in run.all_events():
        if isinstance(event, Chunk):
            choice = choices.setdefault(event.index, Choice(event.index))
            choice.text.append(event.text)
            choice.token_ids.extend(event.token_ids)
            if event.logprobs:
                choice.logprobs.extend(event.logprobs)
        elif isinstance(event, SequenceDone):
            choices.setdefault(event.index, Choice(event.index)).finish_reason = event.finish_reason
        elif isinstance(event, RequestDone):
            return choices, usage(event.prompt_tokens, event.completion_tokens)
        elif isinstance(event, Failed):
            raise event.error
    raise ServingError("generation ended without a result")


async def unary_response(request: Request, run: Run[ChoiceShape]) -> Response:
    try:
        choices, use = await unless_disconnected(request, collect(run))
    finally:
        await run.events.aclose()
    note_usage(run.scope, use["prompt_tokens"], use["completion_tokens"])
    body = run.envelope(run.shape.object_unary, [run.shape.unary_choice(c) for c in choices.values()], usage=use)
    return JSONResponse(body)


class ChunkWriter:
    """Frames one run's stream chunks as SSE bytes. The envelope (id, object, created, model and, with
    `include_usage`, `"usage":null`) is the same in every chunk: it is serialised once per request and
    only the choice is serialised per chunk (orjson). Key order and values are those of `Run.envelope`."""

    def __init__(self, run: Run[Any], obj: str, include_usage: bool):
        envelope = fast_json.dumps({"id": run.id, "object": obj, "created": run.created, "model": run.model})
        self.head = b"data: " + envelope[:-1] + b',"choices":['
        self.tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
        self.run = run
        self.obj = obj

    def choice(self, choice: dict[str, Any]) -> bytes:
        return self.head + fast_json.dumps(choice) + self.tail

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        body = self.run.envelope(self.obj, [], usage=usage(prompt_tokens, completion_tokens))
        return event_bytes(fast_json.dumps(body))


async def _stream_events(run: Run[ChoiceShape], include_usage: bool,
                         prefix: dict[int, str] | None) -> AsyncGenerator[bytes, None]:
    shape = run.shape
    writer = ChunkWriter(run, shape.object_chunk, include_usage)
    try:
        for index in range(run.num_choices):
            delta = shape.first_delta(index)
            if delta is not None:
                yield writer.choice(delta)
            if prefix and prefix.get(index):
                choice = shape.chunk_choice(index, prefix[index], [], None, None)
                if choice is not None:
                    yield writer.choice(choice)
        async for event in run.all_events():
            if isinstance(event, Chunk):
                choice = shape.chunk_choice(event.index, event.text, event.token_ids, event.logprobs, None)
                if choice is not None:
                    yield writer.choice(choice)
            elif isinstance(event, SequenceDone):
                choice = shape.chunk_choice(event.index, "", [], None, event.finish_reason)
                if choice is not None:
                    yield writer.choice(choice)
            elif isinstance(event, RequestDone):
                note_usage(run.scope, event.prompt_tokens, event.completion_tokens)
                if include_usage:
                    yield writer.usage(event.prompt_tokens, event.completion_tokens)
                yield DONE  # its own write: `ovms_responses` counts one per event, as OVMS does
                return
            elif isinstance(event, Failed):
                err = event.error  # the engine logged it; the client gets the API's error body
                yield event_bytes(fast_json.dumps(openai_body(err) if isinstance(err, ServingError)
                                                  else openai_error("Internal server error", "internal_error")))
                return
    finally:
        await run.events.aclose()


def streaming_response(run: Run[ChoiceShape], include_usage: bool, prefix: dict[int, str] | None = None) -> Response:
    return SSEResponse(_stream_events(run, include_usage, prefix), ping=15)
