"""/openapi.json describes what the server really answers: what client generators and fuzzers read.

Checked on the default server: validation errors are 400s with the OpenAI error body (no 422
`HTTPValidationError`), success bodies have real schemas, streaming endpoints list
`text/event-stream`, /metrics `text/plain`, /images/edits its multipart form, and KServe's short
paths have no `version` query parameter. Real responses validate against the schema.
"""
from __future__ import annotations

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
    for path in ("/v3/chat/completions", "/v3/completions", "/v3/responses", "/v1/chat/completions"):
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
