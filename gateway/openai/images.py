"""POST /images/generations (JSON) and /images/edits (multipart): image generation models.

Both run a prepared `ImageJob` on the model's image engine and answer
`{"created", "data": [{"b64_json": <PNG>}]}`. A client that disconnects while its job waits or
runs cancels it: the engine drops it from the queue or stops it within one denoising step.
"""
from __future__ import annotations

import base64
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from gateway.disconnect import ClientDisconnected, unless_disconnected
from gateway.multipart import FormSpec, read_form
from gateway.openapi import multipart_body
from gateway.openapi_models import ImagesResponse
from gateway.routes import Api, declared_router
from scheduler.model_manager import Deployment
from servables.errors import InvalidRequest
from servables.image import ImageJob
from servables.image_options import ImageOptions

from .image_protocol import EDIT_FILE_FIELDS, ImageEditRequest, ImageGenerationRequest
from .resolve import manager_of, resolve

router = declared_router(api=Api.V3)

FORM_SLACK_BYTES = 1024 * 1024  # room for the text fields and multipart framing beside image + mask
EDIT_FORM = FormSpec(not_multipart="{endpoint} takes a multipart/form-data body", file_fields=EDIT_FILE_FIELDS,
                     max_files=len(EDIT_FILE_FIELDS) + 2, aliases={"image[]": "image"})


@router.post("/images/generations", responses={200: {"model": ImagesResponse}})
async def create_image(body: ImageGenerationRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "images/generations")
    job = deployment.servable.prepare_generation(body.to_params())
    return await _run(request, deployment, job)


@router.post("/images/edits", responses={200: {"model": ImagesResponse}},
             openapi_extra=multipart_body(ImageEditRequest, {"image": True, "mask": False}))
async def edit_image(request: Request) -> Response:
    try:
        body, files = await read_form(request, ImageEditRequest, EDIT_FORM, _body_limit(request), "images/edits")
    except ClientDisconnect:  # the client went away during the upload
        return Response(status_code=499)
    deployment = resolve(request, body.model, "images/edits")
    image, mask = files.get("image"), files.get("mask")
    if image is None:
        raise InvalidRequest("image field is missing in multipart body", "image")
    # decoding uploads can take a while for large images: keep it off the event loop
    job = await run_in_threadpool(deployment.servable.prepare_edit, body.to_params(), image, mask)
    return await _run(request, deployment, job)


async def _run(request: Request, deployment: Deployment, job: ImageJob) -> Response:
    ticket = deployment.engine.submit(job)
    try:
        result = await unless_disconnected(request, ticket.result())
    except ClientDisconnected:
        return Response(status_code=499)  # nobody is listening; the job was cancelled
    data = [{"b64_json": base64.b64encode(png).decode("ascii")} for png in result.images]
    return JSONResponse({"created": int(time.time()), "data": data})


# --- multipart ----------------------------------------------------------------------------------

def _body_limit(request: Request) -> int:
    """The largest edit body any image model accepts: image + mask at its upload limit, plus slack."""
    limits = [d.servable.options.max_upload_bytes for d in manager_of(request).deployments()
              if d.kind.name == "image_generation"]
    return 2 * max(limits, default=ImageOptions.max_upload_bytes) + FORM_SLACK_BYTES
