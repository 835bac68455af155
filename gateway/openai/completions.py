"""POST /completions (legacy text completions)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.openapi import json_or_sse
from gateway.openapi_events import CompletionChunk, StreamError
from gateway.openapi_models import Completion
from gateway.routes import Api, declared_router
from servables.structured_output import from_response_format

from .generation import Choice, start_run, streaming_response, unary_response
from .logprobs import TokenTexts, completion_logprobs
from .protocol import CompletionRequest
from .resolve import resolve

router = declared_router(api=Api.V3)


class CompletionShape:
    object_unary = "text_completion"
    object_chunk = "text_completion"
    id_prefix = "cmpl"

    def __init__(self, token_texts: TokenTexts, logprobs: bool, echo_text: str):
        self.token_texts = token_texts
        self.logprobs = logprobs
        self.echo_text = echo_text

    def unary_choice(self, choice: Choice) -> dict[str, Any]:
        logprobs = None
        if self.logprobs:
            logprobs = completion_logprobs(self.token_texts, choice.token_ids, choice.logprobs, len(self.echo_text))
        return {"index": choice.index, "text": self.echo_text + "".join(choice.text), "logprobs": logprobs,
                "finish_reason": choice.finish_reason}

    def first_delta(self, index: int) -> None:
        return None

    def chunk_choice(self, index: int, text: str, token_ids: list[int], logprobs: list[float] | None,
                     finish_reason: str | None) -> dict[str, Any]:
        lp = completion_logprobs(self.token_texts, token_ids, logprobs) if self.logprobs and logprobs else None
        return {"index": index, "text": text, "logprobs": lp, "finish_reason": finish_reason}


def _echo_only(body: CompletionRequest, prompt_text: str, prompt_tokens: int) -> dict[str, Any]:
    import time
    import uuid

    choices = [{"index": i, "text": prompt_text, "logprobs": None, "finish_reason": "length"} for i in range(body.n)]
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": body.model, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 0, "total_tokens": prompt_tokens}}


@router.post("/completions", responses=json_or_sse(Completion, CompletionChunk, StreamError))
async def create_completion(body: CompletionRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "completions")
    servable = deployment.servable
    prompt = body.single_prompt()
    echo_only = body.echo and body.max_tokens == 0
    if echo_only:
        body = body.model_copy(update={"max_tokens": None})
    params = body.to_sampling_params()
    constraint = from_response_format(body.response_format)
    if isinstance(prompt, str):
        job = servable.prepare_completion(prompt, params, constraint)
    else:
        job = servable.prepare_completion_ids(prompt, params, constraint)
    job.streamed = bool(body.stream)
    echo_text = ""
    if body.echo:
        echo_text = prompt if isinstance(prompt, str) else servable.detokenize(job.input_ids)
    if echo_only:
        from starlette.responses import JSONResponse

        return JSONResponse(_echo_only(body, echo_text, job.prompt_tokens))
    shape = CompletionShape(servable.token_strings, params.logprobs, echo_text)
    run = await start_run(request, deployment.engine.submit(job), body.model, shape, job.num_sequences)
    if body.stream:
        return streaming_response(run, body.include_usage, {i: echo_text for i in range(job.num_sequences)})
    return await unary_response(request, run)
