"""The OpenAI audio wire protocol: transcription/translation form fields and the speech JSON body.

Transcriptions and translations arrive as multipart/form-data (the file plus text fields, as the
openai SDK sends them; list fields are repeated `name[]` parts). Speech is JSON. Unknown fields are
400s naming them (`include[]`, `chunking_strategy`, ...), as elsewhere in the gateway.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from servables.asr import TranscriptionParams
from servables.errors import InvalidRequest
from servables.tts import SpeechParams

FILE_FIELD = "file"
LIST_FIELDS = ("timestamp_granularities[]",)


class TranscriptionForm(BaseModel):
    """The text fields of POST /audio/transcriptions and /audio/translations."""

    model_config = ConfigDict(extra="forbid", strict=False, populate_by_name=True)

    model: str = Field(min_length=1)
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"
    temperature: float | None = None
    stream: bool = False
    timestamp_granularities: list[str] = Field(default_factory=list, alias="timestamp_granularities[]")

    def to_params(self, task: str) -> TranscriptionParams:
        if task == "translate" and self.language is not None:
            raise InvalidRequest("translations take no language (the output is English)", "language")
        return TranscriptionParams(task=task, language=self.language, prompt=self.prompt,
                                   temperature=self.temperature, response_format=self.response_format,
                                   timestamp_granularities=self.timestamp_granularities, stream=self.stream)


class VoiceId(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str


class SpeechRequest(BaseModel):
    """POST /audio/speech (application/json)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(min_length=1)
    input: str
    voice: str | VoiceId | None = None
    response_format: str | None = None
    speed: float | None = None
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] | None = None  # sse: base64 `speech.audio.delta` events

    def to_params(self) -> SpeechParams:
        voice = self.voice.id if isinstance(self.voice, VoiceId) else self.voice
        return SpeechParams(input=self.input, voice=voice, response_format=self.response_format, speed=self.speed,
                            instructions=self.instructions)
