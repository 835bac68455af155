"""multipart/form-data request bodies: read under a size limit, text fields split from files, checked
by a pydantic model (its errors raised as RequestValidationError, like a JSON body's).

The caller answers 499 when the client goes away during the upload (`ClientDisconnect`).
"""
from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from servables.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FormSpec:
    """How one endpoint's form is read; messages keep their endpoint's wording."""

    not_multipart: str  # the error for another content type; `{endpoint}` is filled in
    file_fields: tuple[str, ...]  # parts that are uploaded files, at most one each
    max_files: int  # what the parser takes before it fails
    param: str | None = None  # the `param` of the content-type and body-limit errors
    list_fields: tuple[str, ...] = ()  # text fields that may repeat (`name[]`), kept as lists
    aliases: Mapping[str, str] = field(default_factory=dict)  # another name a file may come as
    one_file: str = "exactly one {name} file is supported"  # a file field given twice
    not_a_file: str = "{name} must be sent as a file"  # a file field given as text


async def read_form(request: Request, model: type[M], spec: FormSpec, limit: int,
                    endpoint: str) -> tuple[M, dict[str, bytes]]:
    """The validated text fields and the bytes of each file field sent. Raises ClientDisconnect."""
    form = await _parse(request, spec, limit, endpoint)
    try:
        fields, files = await _split(form, spec)
    finally:
        await form.close()
    try:
        return model.model_validate(fields), files
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _parse(request: Request, spec: FormSpec, limit: int, endpoint: str) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest(spec.not_multipart.format(endpoint=endpoint), spec.param)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"Request body of {declared} bytes is larger than the limit of {limit} bytes",
                             spec.param)

    async def capped() -> AsyncGenerator[bytes, None]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise InvalidRequest(f"Request body is larger than the limit of {limit} bytes", spec.param)
            yield chunk

    parser = MultiPartParser(request.headers, capped(), max_files=spec.max_files, max_fields=64)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"Invalid multipart body: {exc.message}") from None


async def _split(form: FormData, spec: FormSpec) -> tuple[dict[str, Any], dict[str, bytes]]:
    fields: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for key in form.keys():
        values = form.getlist(key)
        name = spec.aliases.get(key, key)
        if name in spec.file_fields:
            if len(values) != 1 or name in files:
                raise InvalidRequest(spec.one_file.format(name=name), name)
            if not isinstance(values[0], UploadFile):
                raise InvalidRequest(spec.not_a_file.format(name=name), name)
            files[name] = await values[0].read()
        elif any(isinstance(v, UploadFile) for v in values):
            raise InvalidRequest(f"field {key} must be a text field, not a file", key)
        elif key in spec.list_fields:
            fields[key] = list(values)
        elif len(values) != 1:
            raise InvalidRequest(f"field {key} is given more than once", key)
        else:
            fields[key] = values[0]
    return fields, files
