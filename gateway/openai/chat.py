"""POST /chat/completions."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .generation import Choice, start_run, streaming_response, unary_response
from .logprobs import chat_logprobs
from .protocol import ChatCompletionRequest
from .resolve import resolve

router = APIRouter()


class ChatShape:
    object_unary = "chat.completion"
    object_chunk = "chat.completion.chunk"
    id_prefix = "chatcmpl"

    def __init__(self, tokenizer, logprobs: bool):
        self.tokenizer = tokenizer
        self.logprobs = logprobs

    def _logprobs(self, token_ids: list[int], logprobs: list[float] | None) -> dict[str, Any] | None:
        if not self.logprobs or logprobs is None:
            return None
        return chat_logprobs(self.tokenizer, token_ids, logprobs)

    def unary_choice(self, choice: Choice) -> dict[str, Any]:
        return {
            "index": choice.index,
            "message": {"role": "assistant", "content": "".join(choice.text)},
            "logprobs": self._logprobs(choice.token_ids, choice.logprobs),
            "finish_reason": choice.finish_reason,
        }

    def first_delta(self, index: int) -> dict[str, Any]:
        return {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                "finish_reason": None}

    def chunk_choice(self, index: int, text: str, token_ids: list[int], logprobs: list[float] | None,
                     finish_reason: str | None) -> dict[str, Any]:
        delta = {"content": text} if text or finish_reason is None else {}
        return {"index": index, "delta": delta, "logprobs": self._logprobs(token_ids, logprobs),
                "finish_reason": finish_reason}


@router.post("/chat/completions")
async def create_chat_completion(body: ChatCompletionRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "llm", "chat/completions")
    params = body.to_sampling_params()
    messages = [m.as_template_message() for m in body.messages]
    job = deployment.servable.prepare_chat(messages, params, body.chat_template_kwargs)
    shape = ChatShape(deployment.servable.tokenizer, params.logprobs)
    run = await start_run(request, deployment.engine.submit(job), body.model, shape, job.num_sequences)
    if body.stream:
        return streaming_response(run, body.include_usage)
    return await unary_response(request, run)
