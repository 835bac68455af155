"""`json_depth_exceeds`: the guard's nesting check, which must not be fooled by strings."""
from __future__ import annotations

import json

from gateway.guard import json_depth_exceeds

LIMIT = 100


def nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def test_depth_at_the_limit_passes_and_one_more_is_refused():
    assert not json_depth_exceeds(nested(100), LIMIT)
    assert json_depth_exceeds(nested(101), LIMIT)


def test_objects_and_arrays_count_together():
    doc = {"a": [{"b": [1]}]}
    for _ in range(24):
        doc = {"a": [{"b": [doc]}]}  # 4 levels per round: 25 rounds = 100 levels
    body = json.dumps(doc).encode()
    assert not json_depth_exceeds(body, LIMIT)
    assert json_depth_exceeds(b"[" + body + b"]", LIMIT)


def test_brackets_inside_strings_do_not_count():
    body = json.dumps({"text": "[" * 500 + "{" * 500}).encode()
    assert not json_depth_exceeds(body, LIMIT)


def test_an_escaped_quote_does_not_end_the_string():
    body = json.dumps({"text": 'say "' + "[" * 300 + '"'}).encode()  # \" inside, then brackets, still a string
    assert b'\\"' in body
    assert not json_depth_exceeds(body, LIMIT)


def test_an_escaped_backslash_before_the_quote_does_end_the_string():
    body = b'["a\\\\", ' + nested(150) + b"]"  # the string is `a\`; the brackets after it are real
    assert json.loads(body)[0] == "a\\"
    assert json_depth_exceeds(body, LIMIT)


def test_closing_brackets_bring_the_depth_back_down():
    body = b"[" + b",".join([nested(60)] * 50) + b"]"  # 3000 brackets, never deeper than 61
    assert not json_depth_exceeds(body, LIMIT)
    assert json_depth_exceeds(body, 60)


def test_the_guard_scans_every_content_type_fastapi_parses_as_json():
    from gateway.guard import parsed_as_json

    for content_type in (None, b"", b"application/json", b"Application/JSON; charset=utf-8",
                         b"application/vnd.api+json"):
        assert parsed_as_json(content_type), content_type
    for content_type in (b"text/plain", b"application/octet-stream", b"multipart/form-data; boundary=x",
                         b"application/jsonl"):
        assert not parsed_as_json(content_type), content_type


def test_load_json_refuses_deep_or_broken_bodies_with_a_400():
    import pytest

    from gateway.guard import load_json
    from servables.errors import InvalidRequest

    assert load_json(b'{"inputs": [[1, 2]]}', LIMIT) == {"inputs": [[1, 2]]}
    for body in (nested(100_000), b"{not json", b"\xff\xfe"):
        with pytest.raises(InvalidRequest):
            load_json(body, LIMIT)


def test_an_unterminated_string_hides_the_brackets_after_it():
    assert not json_depth_exceeds(b'{"a": "' + b"[" * 500, LIMIT)
    assert not json_depth_exceeds(b'{"a": "\\"' + b"[" * 500 + b"\\", LIMIT)  # ends in a lone backslash


def test_depth_carries_across_the_chunks_of_a_large_body():
    wide = b"[" + b",".join([b"[]"] * 1_500_000) + b"]"  # 3 MB of brackets, depth 2
    assert not json_depth_exceeds(wide, LIMIT)
    assert json_depth_exceeds(b"[" * 99 + wide + b"]" * 99, LIMIT)  # depth 101, peaks past the first chunk
    assert not json_depth_exceeds(b"[" * 98 + wide + b"]" * 98, LIMIT)
