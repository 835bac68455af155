"""The Responses API stream (gateway/openai/responses.py) fed synthetic scheduler events."""
from __future__ import annotations

import asyncio
import json

from gateway.openai.responses import _Shape, _stream
from gateway.openai.responses_protocol import ResponsesRequest
from scheduler.events import Chunk, Failed, RequestDone, SequenceDone
from servables.errors import InferenceError
from servables.output_processor import OutputProcessor
from servables.reasoning_parser import ReasoningParser
from servables.tool_parsers import HermesToolParser
from tests.helpers import started_run

BODY = ResponsesRequest(model="m", input="What is the capital of France?", max_output_tokens=30)
PARIS = [Chunk(0, "Par"), Chunk(0, "is."), SequenceDone(0, "stop", 2), RequestDone(7, 2)]


def stream(events, processor: OutputProcessor | None = None) -> tuple[list[dict], list[dict]]:
    """(the SSE events as sent, their parsed payloads); the closing `[DONE]` has no payload."""
    async def drain():
        return [e async for e in _stream(started_run(_Shape(), events), BODY, processor or OutputProcessor())]

    sent = asyncio.run(drain())
    return sent, [json.loads(e["data"]) for e in sent if e["data"] != "[DONE]"]


def test_a_text_answer_has_the_typed_event_sequence():
    sent, payloads = stream(PARIS)
    assert [p["type"] for p in payloads] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert sent[-1] == {"data": "[DONE]"}
    assert [e["event"] for e in sent[:-1]] == [p["type"] for p in payloads]  # `event:` names the payload type


def test_sequence_numbers_count_up_from_zero():
    _, payloads = stream(PARIS)
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))


def test_deltas_and_done_events_agree_on_the_item_and_its_text():
    _, payloads = stream(PARIS)
    by_type = {}
    for p in payloads:
        by_type.setdefault(p["type"], []).append(p)
    item_id = by_type["response.output_item.added"][0]["item"]["id"]
    assert item_id.startswith("msg_")
    assert [d["delta"] for d in by_type["response.output_text.delta"]] == ["Par", "is."]
    assert {d["item_id"] for d in by_type["response.output_text.delta"]} == {item_id}
    assert by_type["response.output_text.done"][0]["text"] == "Paris."
    assert by_type["response.output_item.done"][0]["item"]["content"][0]["text"] == "Paris."


def test_the_snapshots_are_in_progress_and_the_final_response_is_complete():
    _, payloads = stream(PARIS)
    for snapshot in (payloads[0]["response"], payloads[1]["response"]):
        assert snapshot["status"] == "in_progress" and snapshot["output"] == [] and snapshot["usage"] is None
    final = payloads[-1]["response"]
    assert final["status"] == "completed" and final["incomplete_details"] is None
    assert final["id"] == payloads[0]["response"]["id"] and final["id"].startswith("resp-")
    assert final["output"][0]["content"][0]["text"] == "Paris." and final["output"][0]["status"] == "completed"
    usage = final["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (7, 2, 9)
    assert final["max_output_tokens"] == 30 and final["model"] == "m"


def test_hitting_max_output_tokens_ends_with_response_incomplete():
    _, payloads = stream([Chunk(0, "Once upon"), SequenceDone(0, "length", 30), RequestDone(7, 30)])
    final = payloads[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_an_empty_answer_is_still_one_message_item_with_its_added_events():
    _, payloads = stream([Chunk(0, ""), SequenceDone(0, "stop", 0), RequestDone(7, 0)])
    assert payloads[-1]["response"]["output"][0]["content"][0]["text"] == ""
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert [p["type"] for p in payloads].count("response.output_item.added") == 1


def test_an_engine_failure_ends_with_response_failed_and_done():
    sent, payloads = stream([Chunk(0, "Par"), Failed(InferenceError("device lost"))])
    assert payloads[-1]["type"] == "response.failed"
    assert payloads[-1]["response"]["status"] == "failed"
    assert payloads[-1]["response"]["error"] == {"code": "server_error", "message": "device lost"}
    assert sent[-1] == {"data": "[DONE]"}


def test_reasoning_comes_first_as_its_own_output_item():
    events = [Chunk(0, "<think>plan"), Chunk(0, "</think>\nParis."), SequenceDone(0, "stop", 2), RequestDone(7, 2)]
    _, payloads = stream(events, OutputProcessor(reasoning=ReasoningParser()))
    added = [p for p in payloads if p["type"] == "response.output_item.added"]
    assert [(a["output_index"], a["item"]["type"]) for a in added] == [(0, "reasoning"), (1, "message")]
    assert [p["delta"] for p in payloads if p["type"] == "response.reasoning_text.delta"] == ["plan"]
    output = payloads[-1]["response"]["output"]
    assert output[0]["content"] == [{"type": "reasoning_text", "text": "plan"}]
    assert output[1]["content"][0]["text"] == "Paris."


def test_a_tool_call_is_a_function_call_item_with_streamed_arguments():
    events = [Chunk(0, '<tool_call>\n{"name": "get_weather", "arguments": '), Chunk(0, '{"city": "Paris"}}'),
              Chunk(0, "\n</tool_call>"), SequenceDone(0, "stop", 3), RequestDone(7, 3)]
    _, payloads = stream(events, OutputProcessor(tools=HermesToolParser()))
    added = next(p for p in payloads if p["type"] == "response.output_item.added")
    assert added["item"]["type"] == "function_call" and added["item"]["name"] == "get_weather"
    assert added["item"]["status"] == "in_progress" and added["item"]["call_id"].startswith("call_")
    arguments = "".join(p["delta"] for p in payloads if p["type"] == "response.function_call_arguments.delta")
    done = next(p for p in payloads if p["type"] == "response.function_call_arguments.done")
    assert json.loads(arguments) == json.loads(done["arguments"]) == {"city": "Paris"}
    (call,) = payloads[-1]["response"]["output"]
    assert call["type"] == "function_call" and call["status"] == "completed"
    assert json.loads(call["arguments"]) == {"city": "Paris"} and call["call_id"] == added["item"]["call_id"]
