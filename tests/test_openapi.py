"""/openapi.json describes what the server really answers: what client generators and fuzzers read.

Checked on the default server: validation errors are 400s with the OpenAI error body (no 422
`HTTPValidationError`), success bodies have real schemas, streaming endpoints list
`text/event-stream`, /metrics `text/plain`, /images/edits its multipart form, and KServe's short
paths have no `version` query parameter. Real responses validate against the schema.
"""
from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.conftest import LLM

EMBED = "sentence-transformers/all-MiniLM-L6-v2"
MSG = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def schema(http) -> dict[str, Any]:
    r = http.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _validate(schema: dict[str, Any], fragment: dict[str, Any], instance: Any) -> None:
    """Validate `instance` against a schema fragment of the document (its $refs resolve in it)."""
    jsonschema.Draft202012Validator({**fragment, "components": schema["components"]}).validate(instance)


def _response_schema(schema: dict[str, Any], path: str, status: str, method: str = "post",
                     media: str = "application/json") -> dict[str, Any]:
    return schema["paths"][path][method]["responses"][status]["content"][media]["schema"]


def test_validation_errors_are_documented_as_400_openai_bodies(schema):
    assert "422" not in str({path: {m: op["responses"].keys() for m, op in ops.items()}
                             for path, ops in schema["paths"].items()})
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path in ("/v3/chat/completions", "/v3/embeddings", "/v3/rerank", "/v3/tokenize"):
        assert _response_schema(schema, path, "400") == {"$ref": "#/components/schemas/OpenAIError"}
    for path in ("/v2/models/{name}/infer", "/v1/models/{path}"):
        assert _response_schema(schema, path, "400") == {"$ref": "#/components/schemas/TensorError"}
    assert "401" in schema["paths"]["/v3/chat/completions"]["post"]["responses"]  # protected POST
    assert "401" not in schema["paths"]["/v2/models/{name}/infer"]["post"]["responses"]  # public, as OVMS


DOCUMENTED = {"/v3/chat/completions", "/v3/completions", "/v3/responses", "/v3/embeddings", "/v3/rerank", "/v2/rerank",
              "/v3/tokenize", "/v3/images/generations", "/v3/images/edits", "/v3/models", "/v3/models/{model_id}",
              "/v2", "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer",
              "/v2/models/{name}/versions/{version}/infer", "/v1/models/{path}", "/v1/config", "/v1/config/reload",
              "/v2/health/live", "/v2/health/ready"}


def test_every_json_success_response_of_the_main_endpoints_has_a_schema(schema):
    empty = []
    for path, operations in schema["paths"].items():
        if path not in DOCUMENTED:
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                for media, content in response.get("content", {}).items():
                    if media == "application/json" and not content.get("schema"):
                        empty.append(f"{method.upper()} {path} {status}")
    assert not empty


def test_streaming_endpoints_document_server_sent_events(schema):
    for path in ("/v3/chat/completions", "/v3/completions", "/v3/responses", "/v1/chat/completions", "/v1/messages"):
        content = schema["paths"][path]["post"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/event-stream"}, path
        assert content["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")


def test_metrics_is_text_plain(schema):
    assert list(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_image_edits_declare_their_multipart_form(schema):
    body = schema["paths"]["/v3/images/edits"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["image"] == {"type": "string", "format": "binary"}
    assert form["properties"]["mask"] == {"type": "string", "format": "binary"}
    assert {"model", "prompt", "image"} <= set(form["required"])
    assert "mask" not in form["required"]


def test_kserve_paths_have_only_their_path_parameters(schema):
    for path, expected in (("/v2/models/{name}/infer", ["name"]),
                           ("/v2/models/{name}/versions/{version}/infer", ["name", "version"]),
                           ("/v2/models/{name}/ready", ["name"]), ("/v2/models/{name}", ["name"])):
        operation = next(iter(schema["paths"][path].values()))
        params = operation.get("parameters", [])
        assert [(p["name"], p["in"]) for p in params] == [(name, "path") for name in expected], path
    infer = schema["paths"]["/v2/models/{name}/infer"]["post"]
    assert {"application/json", "application/octet-stream"} <= set(infer["requestBody"]["content"])


@pytest.mark.parametrize("path,body,component", [
    ("/v3/chat/completions", {"model": LLM, "messages": MSG, "max_tokens": 3}, "ChatCompletion"),
    ("/v3/completions", {"model": LLM, "prompt": "Hi", "max_tokens": 3, "logprobs": 1}, "Completion"),
    ("/v3/responses", {"model": LLM, "input": "Hi", "max_output_tokens": 3}, "ResponseObject"),
    ("/v3/embeddings", {"model": EMBED, "input": ["a", "b"]}, "EmbeddingList"),
    ("/v3/embeddings", {"model": EMBED, "input": "a", "encoding_format": "base64"}, "EmbeddingList"),
    ("/v3/rerank", {"model": EMBED, "query": "q", "documents": ["a", "b"], "return_documents": True},
     "RerankResponse"),
    ("/v3/tokenize", {"model": LLM, "text": ["a b", "c"]}, "TokenizeResponse"),
    ("/v3/chat/completions", {"model": LLM, "messages": MSG, "top_k": 2**40}, "OpenAIError"),
])
def test_real_responses_conform_to_the_schema(http, schema, path, body, component):
    r = http.post(path, json=body)
    status = "400" if component == "OpenAIError" else "200"
    assert str(r.status_code) == status, r.text
    documented = _response_schema(schema, path, status)
    assert documented == {"$ref": f"#/components/schemas/{component}"}
    _validate(schema, documented, r.json())


@pytest.mark.parametrize("path", ["/v3/models", f"/v3/models/{LLM}", "/v1/config", "/v2/health/ready",
                                  "/v2/health/live", "/v2"])
def test_real_get_responses_conform_to_the_schema(http, schema, path):
    r = http.get(path)
    assert r.status_code == 200, r.text
    documented_path = "/v3/models/{model_id}" if path.startswith("/v3/models/") else path
    _validate(schema, _response_schema(schema, documented_path, "200", "get"), r.json())


# --- every success response has a schema; streams document their events ---------------------------

NO_SCHEMA_NEEDED: set[str] = set()  # "METHOD path status media" of documented exceptions (none today)


def test_every_success_response_of_every_operation_documents_its_body(schema):
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                content = response.get("content") or {"(no content)": {}}
                missing += [f"{method.upper()} {path} {status} {media}" for media, body in content.items()
                            if not body.get("schema") and f"{method.upper()} {path} {status} {media}"
                            not in NO_SCHEMA_NEEDED]
    assert not missing, missing


def _sse_events(text: str) -> list[dict[str, str]]:
    """Server-Sent Events as `{"event"?, "data"}` objects (comment lines such as pings skipped)."""
    events, current = [], {}
    for line in text.splitlines() + [""]:
        if not line:
            if "data" in current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            current[field] = current[field] + "\n" + value if field == "data" and "data" in current else value
    return events


def _check_stream(schema: dict[str, Any], path: str, text: str) -> list[str]:
    """Validate each event of a real stream against the documented event schema and its JSON payload
    against the `contentSchema` (which jsonschema treats as an annotation); the payloads' types."""
    event_schema = _response_schema(schema, path, "200", media="text/event-stream")
    data = event_schema["properties"]["data"]
    json_branch = next(b for b in data.get("anyOf", [data]) if "contentSchema" in b)
    done_allowed = any(b.get("const") == "[DONE]" for b in data.get("anyOf", []))
    events, kinds = _sse_events(text), []
    assert events
    for event in events:
        _validate(schema, event_schema, event)
        if event["data"] == "[DONE]":
            assert done_allowed and event is events[-1], path
            continue
        payload = json.loads(event["data"])
        _validate(schema, json_branch["contentSchema"], payload)
        kinds.append(payload.get("type") or payload.get("object"))
        if "event" in event:
            assert event["event"] == payload["type"]
    return kinds


@pytest.mark.parametrize("path,body,first,last", [
    ("/v3/chat/completions", {"model": LLM, "messages": MSG, "max_tokens": 3, "stream": True,
                              "stream_options": {"include_usage": True}}, "chat.completion.chunk", "[DONE]"),
    ("/v3/completions", {"model": LLM, "prompt": "Hi", "max_tokens": 3, "stream": True}, "text_completion", "[DONE]"),
    ("/v3/responses", {"model": LLM, "input": "Hi", "max_output_tokens": 3, "stream": True}, "response.created",
     "[DONE]"),
    ("/v1/messages", {"model": LLM, "messages": MSG, "max_tokens": 3, "stream": True}, "message_start",
     "message_stop"),
])
def test_stream_events_conform_to_their_documented_payload_schemas(http, schema, path, body, first, last):
    r = http.post(path, json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
    kinds = _check_stream(schema, path, r.text)
    assert kinds[0] == first
    assert (r.text.rstrip().endswith("data: [DONE]") if last == "[DONE]" else kinds[-1] == last)


def test_anthropic_routes_document_anthropic_error_bodies(schema):
    for status in ("400", "401", "404", "413"):
        assert _response_schema(schema, "/v1/messages", status) == {"$ref": "#/components/schemas/AnthropicError"}
    assert _response_schema(schema, "/v1/messages", "200") == {"$ref": "#/components/schemas/AnthropicMessage"}
    assert _response_schema(schema, "/v1/messages/count_tokens", "200") == {
        "$ref": "#/components/schemas/MessageTokensCount"}


def test_audio_routes_document_their_form_and_every_answer_format(schema):
    transcription = schema["paths"]["/v3/audio/transcriptions"]["post"]
    form = transcription["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"] == {"type": "string", "format": "binary"} and "file" in form["required"]
    assert {"application/json", "text/plain", "text/vtt", "text/event-stream"} == set(
        transcription["responses"]["200"]["content"])
    speech = schema["paths"]["/v3/audio/speech"]["post"]["responses"]["200"]["content"]
    assert set(speech) == {"audio/wav", "audio/pcm", "audio/flac", "audio/mpeg", "audio/ogg"}
