"""Response and hand-parsed request bodies, as pydantic models for the OpenAPI schema only.

The endpoints build their JSON themselves (fast paths, OVMS-compatible shapes); these models say
what that JSON is, for client generators and fuzzers (`responses=` / `openapi_extra` on the routes,
gateway/openapi.py). They are never used to validate or serialise at runtime, so they list the
fields a client can rely on and allow more (`extra="allow"`). tests/test_openapi.py and the fuzz
test check that real responses conform to them.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors (gateway/error_policy.py) ------------------------------------------------------------

class ErrorDetail(_Doc):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(_Doc):
    """OpenAI, Cohere and management routes."""

    error: ErrorDetail


class AnthropicErrorDetail(_Doc):
    type: str
    message: str


class AnthropicError(_Doc):
    """The Anthropic Messages API routes (Anthropic's "Errors" documentation)."""

    type: Literal["error"]
    error: AnthropicErrorDetail


class TensorError(_Doc):
    """KServe v2 and TFS REST routes (and a rejected config file on /v1/config/reload)."""

    error: str


# --- OpenAI -----------------------------------------------------------------------------------

class Usage(_Doc):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCallOut(_Doc):
    name: str
    arguments: str


class ToolCallOut(_Doc):
    id: str
    type: Literal["function"]
    function: FunctionCallOut


class AssistantMessage(_Doc):
    role: Literal["assistant"]
    content: str | None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(_Doc):
    index: int
    message: AssistantMessage
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class ChatCompletion(_Doc):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(_Doc):
    index: int
    text: str
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class Completion(_Doc):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class Embedding(_Doc):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # str: base64 of little-endian float32 (encoding_format: base64)


class EmbeddingUsage(_Doc):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(_Doc):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ImageData(_Doc):
    b64_json: str


class ImagesResponse(_Doc):
    created: int
    data: list[ImageData]


class ResponseObject(_Doc):
    """The Responses API object (POST /responses)."""

    id: str
    object: Literal["response"]
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None


class ModelObject(_Doc):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    kind: str
    endpoints: list[str]


class ModelList(_Doc):
    object: Literal["list"]
    data: list[ModelObject]


class TokenizeResponse(_Doc):
    tokens: list[int] | list[list[int]]


# --- Cohere rerank ------------------------------------------------------------------------------

class RerankResult(_Doc):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


class RerankResponse(_Doc):
    id: str
    results: list[RerankResult]
    meta: dict[str, Any]


# --- KServe v2 ----------------------------------------------------------------------------------

class TensorMetadata(_Doc):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(_Doc):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(_Doc):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelReady(_Doc):
    name: str
    ready: bool
    version: str | None = None


class InferInput(_Doc):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None  # flat or nested; absent when parameters.binary_data_size is given
    parameters: dict[str, Any] | None = None


class RequestedOutput(_Doc):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(_Doc):
    """The JSON part of a KServe v2 infer request; with `Inference-Header-Content-Length`, raw input
    tensors follow it (binary data extension)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput]
    outputs: list[RequestedOutput] | None = None


class InferOutput(_Doc):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferResponse(_Doc):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[InferOutput]


# --- TensorFlow Serving -------------------------------------------------------------------------

class PredictRequest(_Doc):
    """Row format (`instances`) or column format (`inputs`), one of the two."""

    signature_name: str | None = None
    instances: list[Any] | None = None
    inputs: Any = None


class PredictResponse(_Doc):
    predictions: Any = None
    outputs: Any = None


class ModelVersionStatus(_Doc):
    version: str
    state: str
    status: dict[str, Any]


class ModelStatus(_Doc):
    model_version_status: list[ModelVersionStatus]


class ConfigStatus(RootModel[dict[str, ModelStatus]]):
    """`GET /v1/config`: every configured model's status, by name (as OVMS)."""


# --- operations ---------------------------------------------------------------------------------

class Live(_Doc):
    live: bool


class Ready(_Doc):
    ready: bool
    failed_models: list[str] | None = None  # 503 after the initial load: configured models that failed


# --- OpenAI audio -------------------------------------------------------------------------------

class Transcription(_Doc):
    """`response_format` json (the default)."""

    text: str
    usage: dict[str, Any] | None = None


class VerboseTranscription(_Doc):
    """`response_format` verbose_json: segments, and words with `timestamp_granularities[]=word`."""

    task: str
    language: str | None
    duration: float
    text: str
    segments: list[dict[str, Any]] | None = None
    words: list[dict[str, Any]] | None = None
    usage: dict[str, Any] | None = None


# --- Anthropic Messages API ---------------------------------------------------------------------

class MessageUsage(_Doc):
    input_tokens: int
    output_tokens: int


class AnthropicMessage(_Doc):
    """The Messages API response (`POST /v1/messages` without `stream`)."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]  # text, thinking and tool_use blocks
    stop_reason: str | None
    stop_sequence: str | None
    usage: MessageUsage


class MessageTokensCount(_Doc):
    input_tokens: int
