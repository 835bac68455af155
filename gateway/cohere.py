"""POST /rerank (Cohere v1 and v2, OVMS /v3): cross-encoders, or any embedding model by cosine."""
from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request

from .cohere_protocol import RerankRequest
from .fast_json import FastJSONResponse
from .openai.resolve import resolve
from .openapi_models import RerankResponse
from .request_context import note_usage
from .routes import Api, declared_router

router = declared_router(api=Api.V3)
PREFIXES = ("/v3", "/v1", "/v2", "/v3/v1", "/v3/v2")


@router.post("/rerank", response_model=None, responses={200: {"model": RerankResponse}})
async def rerank(body: RerankRequest, request: Request) -> FastJSONResponse:
    deployment = resolve(request, body.model, "rerank")
    servable = deployment.servable
    job = servable.prepare_rerank(body.query, body.texts(), body.max_chunks_per_doc, body.max_tokens_per_doc)
    scores = servable.rerank_scores(job, await deployment.engine.run(job.items))
    note_usage(request.scope, job.input_tokens, None)
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: body.top_n or len(scores)]
    results = []
    for index in order:
        result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
        if body.return_documents:
            result["document"] = body.document_body(index)
        results.append(result)
    version = "2" if "/v2/" in request.url.path else "1"
    return FastJSONResponse({"id": str(uuid.uuid4()), "results": results,
                             "meta": {"api_version": {"version": version}, "billed_units": {"search_units": 1},
                                      "tokens": {"input_tokens": job.input_tokens, "output_tokens": 0}}})
