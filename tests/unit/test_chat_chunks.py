"""Chat and completions SSE shaping (gateway/openai/generation.py) fed synthetic scheduler events."""
from __future__ import annotations

import asyncio
import json

import pytest

from gateway.openai.chat import ChatShape
from gateway.openai.completions import CompletionShape
from gateway.openai.generation import Run, _stream_events, collect
from scheduler.events import Chunk, Failed, RequestDone, SequenceDone
from servables.errors import InvalidRequest
from servables.output_processor import OutputProcessor
from servables.reasoning_parser import ReasoningParser
from servables.tool_parsers import HermesToolParser
from tests.helpers import started_run


def chat_shape(processor=OutputProcessor) -> ChatShape:
    return ChatShape(token_texts=lambda ids: [f"<{i}>" for i in ids], logprobs=False, new_processor=processor)


def sse(run: Run, include_usage: bool = False, prefix=None) -> list:
    """The data of every SSE event: parsed JSON, or the literal "[DONE]"."""
    async def drain():
        return b"".join([piece async for piece in _stream_events(run, include_usage, prefix)])

    raw = asyncio.run(drain()).decode()
    assert raw.endswith("\n\n")
    events = raw[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events  # one data line per event
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


HELLO = [Chunk(0, "Hel", [1]), Chunk(0, "lo", [2]), SequenceDone(0, "stop", 2), RequestDone(5, 2)]


def test_chat_stream_starts_with_the_role_then_deltas_then_finish_then_done():
    run = started_run(chat_shape(), HELLO)
    out = sse(run)
    assert out[-1] == "[DONE]"
    chunks = out[:-1]
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}, {"content": "Hel"},
                                                         {"content": "lo"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert all("usage" not in c for c in chunks)
    assert run.events.closed


def test_include_usage_puts_null_usage_on_every_chunk_and_a_usage_chunk_last():
    out = sse(started_run(chat_shape(), HELLO), include_usage=True)
    assert out[-1] == "[DONE]"
    *chunks, usage_chunk = out[:-1]
    assert all(c["usage"] is None for c in chunks)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_usage_is_noted_for_the_access_log():
    run = started_run(chat_shape(), HELLO)
    sse(run)
    assert run.scope["state"]["prompt_tokens"] == 5 and run.scope["state"]["completion_tokens"] == 2


def test_two_choices_each_get_a_role_chunk_and_their_own_index():
    events = [Chunk(1, "b"), Chunk(0, "a"), SequenceDone(0, "length", 1), SequenceDone(1, "stop", 1),
              RequestDone(3, 2)]
    chunks = sse(started_run(chat_shape(), events, num_choices=2))[:-1]
    assert [(c["choices"][0]["index"], c["choices"][0]["delta"].get("content")) for c in chunks[:4]] == [
        (0, ""), (1, ""), (1, "b"), (0, "a")]
    assert {c["choices"][0]["index"]: c["choices"][0]["finish_reason"] for c in chunks[4:]} == {0: "length", 1: "stop"}


def test_completions_stream_sends_the_echoed_prompt_first_and_no_role_chunk():
    events = [Chunk(0, " there"), SequenceDone(0, "length", 1), RequestDone(2, 1)]
    chunks = sse(started_run(CompletionShape(None, False, "Hi"), events), prefix={0: "Hi"})[:-1]
    assert [c["choices"][0]["text"] for c in chunks] == ["Hi", " there", ""]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert {c["object"] for c in chunks} == {"text_completion"} and chunks[0]["id"].startswith("cmpl-")


def test_an_engine_failure_mid_stream_is_an_error_event_without_done():
    run = started_run(chat_shape(), [Chunk(0, "Hel"), Failed(InvalidRequest("boom", "messages"))])
    out = sse(run)
    assert "[DONE]" not in out
    assert out[-1] == {"error": {"message": "boom", "type": "invalid_request_error", "param": "messages", "code": None}}
    assert run.events.closed


def test_a_client_that_stops_reading_closes_the_engine_stream():
    run = started_run(chat_shape(), HELLO)

    async def read_two():
        stream = _stream_events(run, False, None)
        for _ in range(2):  # the role chunk and "Hel"
            await stream.__anext__()
        await stream.aclose()

    asyncio.run(read_two())
    assert run.events.closed


def test_reasoning_is_streamed_as_reasoning_content_and_held_back_text_sends_nothing():
    events = [Chunk(0, "<thi"), Chunk(0, "nk>plan"), Chunk(0, "</think>\nParis"), SequenceDone(0, "stop", 3),
              RequestDone(4, 3)]
    shape = chat_shape(lambda: OutputProcessor(reasoning=ReasoningParser()))
    deltas = [c["choices"][0]["delta"] for c in sse(started_run(shape, events))[1:-1]]
    assert deltas == [{"reasoning_content": "plan"}, {"content": "Paris"}, {}]  # "<thi" could open the tag


def test_a_tool_call_streams_name_then_arguments_and_finishes_with_tool_calls():
    events = [Chunk(0, "<tool_call>\n"), Chunk(0, '{"name": "add", "arguments": '), Chunk(0, '{"a": 1}}\n'),
              Chunk(0, "</tool_call>"), SequenceDone(0, "stop", 4), RequestDone(4, 4)]
    shape = chat_shape(lambda: OutputProcessor(tools=HermesToolParser()))
    choices = [c["choices"][0] for c in sse(started_run(shape, events))[1:-1]]
    calls = [call for choice in choices for call in choice["delta"].get("tool_calls", [])]
    assert calls[0]["index"] == 0 and calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
    assert calls[0]["function"]["name"] == "add"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"a": 1}
    assert choices[-1]["finish_reason"] == "tool_calls"


def test_unary_collect_joins_each_choices_text_and_reports_usage():
    events = [Chunk(0, "Hel", [1], [-0.5]), Chunk(1, "Yo", [9]), Chunk(0, "lo", [2], [-0.25]),
              SequenceDone(0, "stop", 2), SequenceDone(1, "length", 1), RequestDone(5, 3)]
    choices, usage = asyncio.run(collect(started_run(chat_shape(), events, num_choices=2)))
    assert ("".join(choices[0].text), choices[0].token_ids, choices[0].logprobs, choices[0].finish_reason) == (
        "Hello", [1, 2], [-0.5, -0.25], "stop")
    assert ("".join(choices[1].text), choices[1].finish_reason) == ("Yo", "length")
    assert usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_unary_collect_raises_the_engine_error():
    with pytest.raises(InvalidRequest, match="boom"):
        asyncio.run(collect(started_run(chat_shape(), [Chunk(0, "a"), Failed(InvalidRequest("boom"))])))
