"""The Messages API (gateway/anthropic/) fed synthetic input: stop-sequence cutting, the SSE event
writer, and the stream of a run over scripted scheduler events."""
from __future__ import annotations

import asyncio
import json

import pytest

from gateway.anthropic.messages import _Shape, _stream, stop_reason
from gateway.anthropic.stop import StopSequenceCutter
from gateway.anthropic.stream import MessageStreamWriter
from scheduler.events import Chunk, Failed, RequestDone, SequenceDone
from servables.errors import InferenceError
from servables.output_processor import OutputDelta, OutputProcessor
from servables.reasoning_parser import ReasoningParser
from servables.tool_parsers import ToolArgsDelta, ToolCallStart
from tests.helpers import started_run


@pytest.mark.parametrize("pieces", [["Hello END tail"], ["Hello E", "N", "D tail"], ["Hel", "lo ", "EN", "D"]])
def test_stop_sequence_is_cut_however_the_text_is_split(pieces):
    cutter = StopSequenceCutter(["END", "zzz"])
    assert "".join(cutter.feed(p) for p in pieces) + cutter.finish() == "Hello "
    assert cutter.matched == "END"


def test_a_partial_stop_sequence_is_held_back_then_released():
    cutter = StopSequenceCutter(["END"])
    assert cutter.feed("one E") == "one "
    assert cutter.feed("ND") == "" and cutter.matched == "END"
    other = StopSequenceCutter(["END"])
    assert other.feed("one E") == "one " and other.feed("xit") == "Exit" and other.matched is None
    assert other.feed("EN") == "" and other.finish() == "EN" and other.matched is None


def test_the_earliest_stop_sequence_wins_and_no_stops_pass_everything():
    cutter = StopSequenceCutter(["b c", "a"])
    assert cutter.cut("x a b c") == "x " and cutter.matched == "a"
    assert StopSequenceCutter([]).cut("anything") == "anything"


def _types(events):
    return [(e["event"], json.loads(e["data"]).get("index")) for e in events]


def test_writer_closes_one_block_before_opening_the_next():
    writer = MessageStreamWriter("msg_1", "m", 7)
    events = writer.start()
    events += writer.deltas(OutputDelta(reasoning="hmm"))
    events += writer.deltas(OutputDelta(content="Hi"))
    events += writer.deltas(OutputDelta(tool_calls=[ToolCallStart(0, "call_1", "add"), ToolArgsDelta(0, '{"a":')]))
    events += writer.deltas(OutputDelta(tool_calls=[ToolArgsDelta(0, "1}")]))
    events += writer.finish("tool_use", None, 9)
    assert _types(events) == [
        ("message_start", None), ("ping", None),
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_stop", 1),
        ("content_block_start", 2), ("content_block_delta", 2), ("content_block_delta", 2), ("content_block_stop", 2),
        ("message_delta", None), ("message_stop", None)]
    data = [json.loads(e["data"]) for e in events]
    assert data[0]["message"]["usage"] == {"input_tokens": 7, "output_tokens": 0}
    assert [d["delta"]["type"] for d in data if d["type"] == "content_block_delta"] == [
        "thinking_delta", "text_delta", "input_json_delta", "input_json_delta"]
    assert data[8]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "add", "input": {}}
    assert data[-2] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                        "usage": {"output_tokens": 9}}


def test_writer_sends_an_empty_text_block_when_nothing_was_generated():
    writer = MessageStreamWriter("msg_1", "m", 3)
    events = writer.finish("end_turn", None, 0)
    assert _types(events)[:2] == [("content_block_start", 0), ("content_block_stop", 0)]


@pytest.mark.parametrize("finish,matched,calls,context_bound,expected", [
    ("stop", None, 0, False, "end_turn"), ("length", None, 0, False, "max_tokens"),
    ("length", None, 0, True, "model_context_window_exceeded"), ("stop", None, 1, False, "tool_use"),
    ("stop", "END", 0, False, "stop_sequence"),
])
def test_stop_reason(finish, matched, calls, context_bound, expected):
    cutter = StopSequenceCutter(["END"])
    if matched:
        cutter.cut("a END")
    assert stop_reason(finish, cutter, calls, context_bound) == expected


def stream(events, stops: list[str] | None = None, processor: OutputProcessor | None = None,
           context_bound: bool = False) -> tuple[list[dict], object]:
    """The payloads sent for `events`, and the run (whose `events.closed` says the stream was closed)."""
    run = started_run(_Shape(), events)
    writer = MessageStreamWriter("msg_1", "m", 7)

    async def drain():
        return [e async for e in _stream(run, writer, processor or OutputProcessor(), StopSequenceCutter(stops or []),
                                         context_bound)]

    sent = asyncio.run(drain())
    assert [e["event"] for e in sent] == [json.loads(e["data"])["type"] for e in sent]  # `event:` names the type
    return [json.loads(e["data"]) for e in sent], run


def test_a_stream_ends_with_message_delta_and_message_stop_and_closes_the_run():
    payloads, run = stream([Chunk(0, "Par"), Chunk(0, "is."), SequenceDone(0, "stop", 2), RequestDone(7, 2)])
    assert [p["type"] for p in payloads] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                             "content_block_delta", "content_block_stop", "message_delta",
                                             "message_stop"]
    assert payloads[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert run.events.closed


def test_a_stop_sequence_split_across_chunks_never_reaches_the_stream():
    events = [Chunk(0, "one two TH"), Chunk(0, "REE four"), SequenceDone(0, "stop", 4), RequestDone(7, 4)]
    payloads, _ = stream(events, stops=["THREE"])
    assert "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta") == "one two "
    assert payloads[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "THREE"}


def test_reasoning_comes_first_as_a_thinking_block():
    processor = OutputProcessor(ReasoningParser(implicit_start=True))
    payloads, _ = stream([Chunk(0, "hmm</think>"), Chunk(0, "Paris."), SequenceDone(0, "length", 3),
                          RequestDone(7, 3)], processor=processor, context_bound=True)
    starts = [p["content_block"]["type"] for p in payloads if p["type"] == "content_block_start"]
    assert starts == ["thinking", "text"]
    assert payloads[-2]["delta"]["stop_reason"] == "model_context_window_exceeded"


def test_an_engine_failure_mid_stream_is_an_error_event():
    payloads, run = stream([Chunk(0, "Par"), Failed(InferenceError("Generation failed: boom"))])
    assert payloads[-1] == {"type": "error", "error": {"type": "api_error", "message": "Generation failed: boom"}}
    assert run.events.closed
