"""POST /audio/transcriptions, /audio/translations (multipart) and /audio/speech (JSON).

Transcriptions and translations decode the uploaded `file` (a worker thread), run it on the model's
speech engine window by window, and answer in the requested `response_format`, or as SSE
`transcript.text.delta` / `transcript.text.done` events with `stream=true`. Speech runs sentence by
sentence and streams the audio as it is made (chunked transfer): `wav` (a header of unknown length,
as OpenAI streams it) and `pcm` (16-bit mono at 24 kHz, OpenAI's pcm) chunk per sentence; `flac`,
`mp3` and `opus` are encoded once the whole waveform exists. With `stream_format: "sse"` the same
bytes travel base64-encoded in OpenAI's `speech.audio.delta` events, then one `speech.audio.done`
with usage. A client that goes away cancels its job.
"""
from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from gateway.disconnect import ClientDisconnected, unless_disconnected
from gateway.error_policy import openai_body
from gateway.multipart import FormSpec, read_form
from gateway.openapi import json_or_sse, multipart_body
from gateway.openapi_events import TranscriptStreamEvent
from gateway.openapi_models import Transcription, VerboseTranscription
from gateway.routes import Api, declared_router
from scheduler.audio_engine import SpeechEngine
from scheduler.model_manager import Deployment
from servables.asr import ASRServable, TextDelta, WindowResult
from servables.audio_io import ASR_RATE, CONTENT_TYPES, PCM_RATE, encode_whole, pcm16, resample, wav_header
from servables.audio_options import SpeechToTextOptions
from servables.errors import InvalidRequest, ServingError
from servables.tts import TTSServable

from . import transcript_formats as formats
from .audio_protocol import FILE_FIELD, LIST_FIELDS, SpeechRequest, TranscriptionForm
from .resolve import manager_of, resolve

router = declared_router(api=Api.V3)

FORM_SLACK_BYTES = 64 * 1024  # the text fields and multipart framing beside the file
TRANSCRIPTION_FORM = FormSpec(
    not_multipart="{endpoint} takes a multipart/form-data body with the audio in `file`", file_fields=(FILE_FIELD,),
    max_files=2, param=FILE_FIELD, list_fields=LIST_FIELDS,
    one_file="{name} must be exactly one uploaded file", not_a_file="{name} must be exactly one uploaded file")


_TEXT = {"schema": {"type": "string"}}
TRANSCRIPT_DOCS: dict[str, Any] = {
    "responses": {200: {**json_or_sse(Transcription | VerboseTranscription, TranscriptStreamEvent, done=False)[200],
                        "description": "`response_format` json or verbose_json; text and srt as text/plain, vtt as "
                                       "text/vtt; with `stream=true`, Server-Sent Events"}},
    "openapi_extra": multipart_body(TranscriptionForm, {FILE_FIELD: True}),
}
for _media in ("text/plain", "text/vtt"):
    TRANSCRIPT_DOCS["responses"][200]["content"][_media] = _TEXT
SPEECH_DOCS: dict[str, Any] = {"responses": {200: {"description": "The audio in `response_format` (default wav)",
                                                  "content": {media: {"schema": {"type": "string", "format": "binary"}}
                                                              for media in dict.fromkeys(CONTENT_TYPES.values())}}}}


@router.post("/audio/transcriptions", **TRANSCRIPT_DOCS)
async def create_transcription(request: Request) -> Response:
    return await _speech_to_text(request, "transcribe", "audio/transcriptions")


@router.post("/audio/translations", **TRANSCRIPT_DOCS)
async def create_translation(request: Request) -> Response:
    return await _speech_to_text(request, "translate", "audio/translations")


@router.post("/audio/speech", response_class=Response, **SPEECH_DOCS)
async def create_speech(body: SpeechRequest, request: Request) -> Response:
    deployment = resolve(request, body.model, "audio/speech")
    servable, engine = cast(TTSServable, deployment.servable), _engine(deployment)
    job = servable.prepare(body.to_params())
    ticket = engine.submit(job)
    chunks = ticket.items()
    try:  # the first sentence (or an error) before the 200: a failed synthesis is still a proper error
        first = await unless_disconnected(request, anext(chunks))
    except ClientDisconnected:
        return Response(status_code=499)
    except StopAsyncIteration:
        first = None
    audio = _audio_bytes(first, chunks, job.response_format, servable.sample_rate)
    if body.stream_format == "sse":
        return EventSourceResponse(_speech_events(audio, job.input_tokens), sep="\n", ping=15,
                                   headers={"Cache-Control": "no-cache"})
    return StreamingResponse(audio, media_type=CONTENT_TYPES[job.response_format])


# --- speech-to-text -----------------------------------------------------------------------------

async def _speech_to_text(request: Request, task: str, endpoint: str) -> Response:
    try:
        body, files = await read_form(request, TranscriptionForm, TRANSCRIPTION_FORM, _body_limit(request), endpoint)
    except ClientDisconnect:
        return Response(status_code=499)
    deployment = resolve(request, body.model, endpoint)
    data = files.get(FILE_FIELD)
    if data is None:
        raise InvalidRequest("file field is missing in the multipart body", FILE_FIELD)
    params = body.to_params(task)
    servable = cast(ASRServable, deployment.servable)
    job = await run_in_threadpool(servable.prepare, params, data)  # decoding takes a while
    duration = job.speech.size / ASR_RATE
    ticket = _engine(deployment).submit(job)
    if params.stream:
        return EventSourceResponse(_transcript_events(ticket.items(), duration), sep="\n", ping=15,
                                   headers={"Cache-Control": "no-cache"})
    try:
        windows: list[WindowResult] = [w for w in await unless_disconnected(request, ticket.collect())
                                       if isinstance(w, WindowResult)]
    except ClientDisconnected:
        return Response(status_code=499)
    return _render(windows, params.response_format, task, duration, job.temperature, params.timestamp_granularities)


def _engine(deployment: Deployment) -> SpeechEngine:
    return cast(SpeechEngine, deployment.engine)


def _render(windows: list[WindowResult], response_format: str, task: str, duration: float, temperature: float,
            granularities: list[str]) -> Response:
    if response_format == "text":
        return PlainTextResponse(formats.full_text(windows) + "\n")
    if response_format == "srt":
        return PlainTextResponse(formats.srt(windows))
    if response_format == "vtt":
        return PlainTextResponse(formats.vtt(windows), media_type="text/vtt")
    if response_format == "verbose_json":
        return JSONResponse(formats.verbose_json(windows, task, duration, temperature, granularities))
    return JSONResponse({"text": formats.full_text(windows), "usage": formats.duration_usage(duration)})


async def _transcript_events(items: AsyncIterator[Any], duration: float) -> AsyncGenerator[dict[str, str], None]:
    """OpenAI's transcription stream: a delta per decoded piece, then the whole text."""
    windows: list[WindowResult] = []
    try:
        async for item in items:
            if isinstance(item, TextDelta):
                yield _event({"type": "transcript.text.delta", "delta": item.text})
            elif isinstance(item, WindowResult):
                windows.append(item)
        yield _event({"type": "transcript.text.done", "text": formats.full_text(windows),
                      "usage": formats.duration_usage(duration)})
    except ServingError as exc:  # after the 200: OpenAI's error event, its body from the error policy
        yield _event({"type": "error", **openai_body(exc)})
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()  # a client that left cancels the job


def _event(data: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}


# --- text-to-speech -----------------------------------------------------------------------------

async def _audio_bytes(first: Any, rest: AsyncIterator[Any], response_format: str,
                       rate: int) -> AsyncGenerator[bytes, None]:
    """The response body: streamed per sentence (wav, pcm) or encoded at the end (flac, mp3, opus)."""
    import numpy as np

    pieces = [] if first is None else [first]
    try:
        if response_format in ("wav", "pcm"):
            if response_format == "wav":
                yield wav_header(rate)
            for piece in pieces:
                yield _pcm_chunk(piece, response_format, rate)
            async for piece in rest:
                yield _pcm_chunk(piece, response_format, rate)
            return
        async for piece in rest:
            pieces.append(piece)
        waveform = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        yield await run_in_threadpool(encode_whole, waveform, rate, response_format)
    finally:
        await rest.aclose()  # type: ignore[attr-defined]  # a client that left cancels the job


async def _speech_events(audio: AsyncGenerator[bytes, None], input_tokens: int) -> AsyncGenerator[dict[str, str], None]:
    """OpenAI's speech stream: the response body's bytes in base64 `speech.audio.delta` events, then
    `speech.audio.done` with usage. SpeechT5 decodes spectrogram frames, not tokens: output_tokens is 0."""
    try:
        async for chunk in audio:
            yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")})
        yield _event({"type": "speech.audio.done", "usage": {"input_tokens": input_tokens, "output_tokens": 0,
                                                              "total_tokens": input_tokens}})
    except ServingError as exc:  # after the 200: OpenAI's error event
        yield _event({"type": "error", **openai_body(exc)})
    finally:
        await audio.aclose()  # a client that left cancels the job


def _pcm_chunk(samples: Any, response_format: str, rate: int) -> bytes:
    return pcm16(resample(samples, rate, PCM_RATE) if response_format == "pcm" else samples)


# --- multipart ----------------------------------------------------------------------------------

def _body_limit(request: Request) -> int:
    """The largest body any speech-to-text model accepts: its upload limit plus room for the fields."""
    limits = [cast(ASRServable, d.servable).options.max_upload_bytes for d in manager_of(request).deployments()
              if d.kind.name == "speech2text"]
    return max(limits, default=SpeechToTextOptions.max_upload_bytes) + FORM_SLACK_BYTES
