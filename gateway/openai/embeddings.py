"""POST /embeddings: prepare on the servable, run through the model's batching engine, format."""
from __future__ import annotations

import base64

import numpy as np
from starlette.requests import Request

from gateway.fast_json import FastJSONResponse
from gateway.media import policy_of, resolve_embedding_images
from gateway.openapi_models import EmbeddingList
from gateway.request_context import note_usage
from gateway.routes import Api, declared_router

from .embeddings_protocol import EmbeddingsRequest
from .resolve import resolve

router = declared_router(api=Api.V3)


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()


@router.post("/embeddings", responses={200: {"model": EmbeddingList}})
async def create_embeddings(body: EmbeddingsRequest, request: Request) -> FastJSONResponse:
    deployment = resolve(request, body.model, "embeddings")
    servable = deployment.servable
    inputs = await resolve_embedding_images(body.inputs(), policy_of(request.app.state), servable, body.model)
    job = servable.prepare(inputs, body.dimensions)
    vectors = servable.finish(job, await deployment.engine.run(job.texts))
    note_usage(request.scope, job.prompt_tokens, None)
    data = [{"object": "embedding", "embedding": encode_vector(v, body.encoding_format), "index": i}
            for i, v in enumerate(vectors)]
    # a response object skips FastAPI's jsonable_encoder walk over every float; orjson renders it
    return FastJSONResponse({"object": "list", "data": data, "model": body.model,
                             "usage": {"prompt_tokens": job.prompt_tokens, "total_tokens": job.prompt_tokens}})
