"""POST /images/generations (JSON) and /images/edits (multipart): image generation models.

Both run a prepared `ImageJob` on the model's image engine and answer
`{"created", "data": [{"b64_json": <PNG>}]}`. A client that disconnects while its job waits or
runs cancels it: the engine drops it from the queue or stops it within one denoising step.
"""
from __future__ import annotations

import base64
import time
from collections.abc import AsyncGenerator

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from gateway.disconnect import ClientDisconnected, unless_disconnected
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


@router.post("/images/generations", responses={200: {"model": ImagesResponse}})
async def create_image(body: ImageGenerationRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "images/generations")
    job = deployment.servable.prepare_generation(body.to_params())
    return await _run(request, deployment, job)


@router.post("/images/edits", responses={200: {"model": ImagesResponse}},
             openapi_extra=multipart_body(ImageEditRequest, {"image": True, "mask": False}))
async def edit_image(request: Request) -> Response:
    try:
        form = await _read_form(request, _body_limit(request))
    except ClientDisconnect:  # the client went away during the upload
        return Response(status_code=499)
    try:
        fields, image, mask = await _split_form(form)
    finally:
        await form.close()
    try:
        body = ImageEditRequest.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    deployment = resolve(request, body.model, "images/edits")
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


async def _read_form(request: Request, limit: int) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("images/edits takes a multipart/form-data body")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"Request body of {declared} bytes is larger than the limit of {limit} bytes")

    async def capped() -> AsyncGenerator[bytes, None]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise InvalidRequest(f"Request body is larger than the limit of {limit} bytes")
            yield chunk

    parser = MultiPartParser(request.headers, capped(), max_files=len(EDIT_FILE_FIELDS) + 2, max_fields=64)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"Invalid multipart body: {exc.message}") from None


async def _split_form(form: FormData) -> tuple[dict[str, str], bytes | None, bytes | None]:
    """Text fields, and the bytes of the `image` and `mask` files (at most one of each)."""
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for key in form.keys():
        values = form.getlist(key)
        name = "image" if key == "image[]" else key
        if name in EDIT_FILE_FIELDS:
            if len(values) != 1 or name in files:
                raise InvalidRequest(f"exactly one {name} file is supported", name)
            if not isinstance(values[0], UploadFile):
                raise InvalidRequest(f"{name} must be sent as a file", name)
            files[name] = await values[0].read()
        else:
            if len(values) != 1:
                raise InvalidRequest(f"field {key} is given more than once", key)
            if isinstance(values[0], UploadFile):
                raise InvalidRequest(f"field {key} must be a text field, not a file", key)
            fields[key] = values[0]
    return fields, files.get("image"), files.get("mask")
