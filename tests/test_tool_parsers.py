"""Tool-call and reasoning parsers on recorded model outputs, whole and split at every stream position."""
from __future__ import annotations

import json

import pytest

from servables.output_processor import OutputProcessor, collect_calls
from servables.reasoning_parser import ReasoningParser
from servables.tool_parsers import PARSERS, detect

# (parser, recorded output, expected content, expected [(name, arguments)])
RECORDED = [
    # SmolLM2 (generic: the format openvino_genai's tool polyfill shows), guided and unguided
    ("generic", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}', "",
     [("get_weather", {"city": "Paris"})]),
    ("generic", '{\n  "tool_calls": [\n    {\n      "name": "get_weather",\n      "arguments": {\n        "city": '
                '"Paris"\n      },\n      "id": "call_1___"\n    }\n  ]\n}', "", [("get_weather", {"city": "Paris"})]),
    ("generic", '{"name": "add", "arguments": {"a": 3, "b": 10}}', "", [("add", {"a": 3, "b": 10})]),
    ("generic", '{\n  "tool_response": {\n    "content": "sunny"\n}',
     '{\n  "tool_response": {\n    "content": "sunny"\n}', []),
    ("generic", "The weather in Paris is sunny.", "The weather in Paris is sunny.", []),
    # Qwen 2.5 / Hermes
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
     "", [("get_weather", {"city": "Paris", "unit": "celsius"})]),
    ("hermes", 'I will check both.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
               '\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Berlin"}}\n</tool_call>',
     "I will check both.\n", [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Berlin"})]),
    ("hermes", 'Use <b>tags</b> freely: 3 < 4.', "Use <b>tags</b> freely: 3 < 4.", []),
    ("hermes", '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>', "", [("get_time", {})]),
    # Llama 3.1 / 3.2
    ("llama3", '{"name": "get_weather", "parameters": {"city": "Paris"}}', "", [("get_weather", {"city": "Paris"})]),
    ("llama3", '<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {"y": "z;{"}}', "",
     [("a", {"x": 1}), ("b", {"y": "z;{"})]),
    ("llama3", '{"answer": 42}', '{"answer": 42}', []),
    # Mistral
    ("mistral", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "add", "arguments": '
                '{"a": 1, "b": 2}}]', "", [("get_weather", {"city": "Paris"}), ("add", {"a": 1, "b": 2})]),
    ("mistral", '[{"name": "get_weather", "arguments": {"city": "Paris"}}]', "", [("get_weather", {"city": "Paris"})]),
    ("mistral", "[1, 2, 3] are numbers", "[1, 2, 3] are numbers", []),
]


def _stream(parser: str, text: str, cuts: list[int]):
    processor = OutputProcessor(None, PARSERS[parser]())
    content, deltas, bounds = "", [], [0, *cuts, len(text)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        out = processor.feed(text[start:end])
        content += out.content
        deltas += out.tool_calls
    out = processor.finish()
    return content + out.content, deltas


@pytest.mark.parametrize("parser,text,content,calls", RECORDED, ids=[f"{r[0]}-{i}" for i, r in enumerate(RECORDED)])
def test_unary_parse_of_recorded_output(parser, text, content, calls):
    parsed = OutputProcessor(None, PARSERS[parser]()).parse(text)
    assert parsed.content == content
    assert [(c.name, json.loads(c.arguments)) for c in parsed.tool_calls] == calls
    assert all(c.id.startswith("call_") for c in parsed.tool_calls)


@pytest.mark.parametrize("parser,text,content,calls", RECORDED, ids=[f"{r[0]}-{i}" for i, r in enumerate(RECORDED)])
def test_streamed_calls_split_anywhere_equal_the_unary_parse(parser, text, content, calls):
    for cut in range(1, len(text)):  # two chunks, split at every position
        got_content, deltas = _stream(parser, text, [cut])
        assert got_content == content, cut
        assert [(c.name, json.loads(c.arguments)) for c in collect_calls(deltas)] == calls, cut
    got_content, deltas = _stream(parser, text, list(range(1, len(text))))  # one character per chunk
    assert got_content == content
    assert [(c.name, json.loads(c.arguments)) for c in collect_calls(deltas)] == calls


def test_stream_sends_the_name_before_argument_fragments():
    text = RECORDED[0][1]
    _, deltas = _stream("generic", text, list(range(1, len(text))))
    kinds = [type(d).__name__ for d in deltas]
    assert kinds[0] == "ToolCallStart" and kinds.count("ToolCallStart") == 1
    assert kinds.count("ToolArgsDelta") > 3  # arguments arrive in fragments, not at the end


def test_truncated_call_is_returned_as_content_in_unary():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'
    parsed = OutputProcessor(None, PARSERS["hermes"]()).parse(text)
    assert parsed.tool_calls == [] and parsed.content == text


@pytest.mark.parametrize("template,expected", [
    ("{% for m in messages %}<tool_call>{% endfor %}", "hermes"),
    ("[AVAILABLE_TOOLS] [TOOL_CALLS]", "mistral"),
    ("<|start_header_id|>ipython<|end_header_id|>", "llama3"),
    ("{{ messages }}", "generic"),
])
def test_parser_is_detected_from_the_chat_template(template, expected):
    assert detect(template) == expected


REASONING = "<think>\nThe user wants Paris weather.\n</think>\n\nIt is sunny in Paris."


def test_reasoning_is_split_from_content_whole_and_streamed():
    parsed = OutputProcessor(ReasoningParser(), None).parse(REASONING)
    assert parsed.reasoning == "\nThe user wants Paris weather.\n"
    assert parsed.content == "It is sunny in Paris."
    for cut in range(1, len(REASONING)):
        processor = OutputProcessor(ReasoningParser(), None)
        parts = [processor.feed(REASONING[:cut]), processor.feed(REASONING[cut:]), processor.finish()]
        assert "".join(p.reasoning for p in parts) == parsed.reasoning, cut
        assert "".join(p.content for p in parts) == parsed.content, cut


def test_reasoning_then_tool_call():
    text = "<think>call it</think><tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>"
    parsed = OutputProcessor(ReasoningParser(), PARSERS["hermes"]()).parse(text)
    assert parsed.reasoning == "call it" and parsed.content == ""
    assert [(c.name, json.loads(c.arguments)) for c in parsed.tool_calls] == [("f", {"x": 1})]


def test_implicit_reasoning_start_and_unclosed_reasoning():
    parsed = OutputProcessor(ReasoningParser(implicit_start=True), None).parse("thinking...</think>Answer")
    assert (parsed.reasoning, parsed.content) == ("thinking...", "Answer")
    parsed = OutputProcessor(ReasoningParser(), None).parse("<think>never ends")
    assert (parsed.reasoning, parsed.content) == ("never ends", "")
    parsed = OutputProcessor(ReasoningParser(), None).parse("No thinking here")
    assert (parsed.reasoning, parsed.content) == ("", "No thinking here")


def test_an_object_naming_an_unoffered_function_is_content():
    text = '{"name": "Bob", "age": 42}'
    parsed = OutputProcessor(None, PARSERS["generic"](frozenset({"get_weather"}))).parse(text)
    assert parsed.content == text and parsed.tool_calls == []
    content, deltas = "", []
    processor = OutputProcessor(None, PARSERS["generic"](frozenset({"get_weather"})))
    for ch in text:
        out = processor.feed(ch)
        content, deltas = content + out.content, deltas + out.tool_calls
    assert content + processor.finish().content == text and deltas == []
