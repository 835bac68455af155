"""Text-to-speech servable: SpeechT5 + HiFi-GAN (and what else GenAI runs) on `Text2SpeechPipeline`.

Voices are speaker embeddings in files beside the model: `<voices_dir>/<name>.bin`, raw float32 of
the pipeline's speaker-embedding shape (SpeechT5: 512 values, an x-vector). `default` is the
pipeline's built-in embedding unless a file of that name exists.

`prepare` validates a request (400s naming the field); `run` speaks the input sentence by sentence,
one `generate` per sentence inside one engine unit, and emits each sentence's waveform (float32 at
`sample_rate`) as it is made, so a streamed response starts after the first sentence. Guards
against OpenVINO GenAI 2026.4 defects: one text per call (a list returns copies of the last text),
the waveform is copied at once (the result aliases the pipeline's buffer, which the next call
overwrites), and speaker embeddings go in as `openvino.Tensor` (a numpy array crashes the process).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .audio_io import CONTENT_TYPES, require_audio_libraries
from .audio_options import TextToSpeechOptions
from .base import ModelSpec
from .config_file import ConfigError
from .errors import InferenceError, InvalidRequest, ModelLoadError
from .time_stretch import stretch

log = logging.getLogger(__name__)

DEFAULT_VOICE = "default"
RESPONSE_FORMATS = tuple(CONTENT_TYPES)  # wav, pcm, flac, mp3, opus
MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's range
MAX_PIECE_CHARS = 400  # longer sentences are cut at a space (SpeechT5's encoder takes 600 positions)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


@dataclass
class SpeechParams:
    input: str | None
    voice: str | None
    response_format: str | None = None
    speed: float | None = None
    instructions: str | None = None


@dataclass
class SpeechJob:
    pieces: list[str]  # one generate call each
    voice: str
    response_format: str
    speed: float
    input_tokens: int = 0  # the model tokenizer's count over the pieces (speech SSE usage)


def split_text(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Sentences of `text` (cut further at spaces when longer than `limit` characters)."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


class TTSServable:
    task: ClassVar[str] = "text2speech"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        try:
            self.options = TextToSpeechOptions.from_dict(spec.options)
        except ConfigError as exc:
            raise ConfigError(f"{spec.name}: {exc}") from None
        self.pipe: Any = None
        self.voices: dict[str, Any] = {}  # name -> openvino.Tensor, or None for the built-in embedding
        self.tokenizer: Any = None  # the model's own tokenizer: input token counts for usage
        self.sample_rate = 16000

    @property
    def name(self) -> str:
        return self.spec.name

    def load(self) -> None:
        require_audio_libraries()
        import openvino as ov
        import openvino_genai as ov_genai

        path = self.spec.base_path
        try:
            self.pipe = ov_genai.Text2SpeechPipeline(str(path), self.options.device, **self.options.plugin_config)
        except Exception as exc:  # noqa: BLE001 - GenAI raises RuntimeError, bad properties TypeError
            raise ModelLoadError(f"{self.name}: cannot load {path} as a text-to-speech model: {exc}") from None
        try:
            self.tokenizer = ov_genai.Tokenizer(str(path))
        except RuntimeError as exc:
            raise ModelLoadError(f"{self.name}: cannot load the tokenizer in {path}: {exc}") from None
        shape = [int(d) for d in self.pipe.get_speaker_embedding_shape()]
        voices: dict[str, Any] = {DEFAULT_VOICE: None}
        folder = path / self.options.voices_dir
        for file in sorted(folder.glob("*.bin")) if folder.is_dir() else []:
            values = np.fromfile(file, dtype="<f4")
            if values.size != math.prod(shape) or not np.isfinite(values).all():
                raise ModelLoadError(f"{self.name}: voice file {file} holds {values.size} float32 values; "
                                     f"the model takes {math.prod(shape)} (shape {shape})")
            voices[file.stem] = ov.Tensor(values.reshape(shape).copy())
        self.voices = voices
        log.info("loaded %s from %s (voices: %s)", self.name, path, ", ".join(voices))

    def close(self) -> None:
        self.pipe = None

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "voices": sorted(self.voices), "sample_rate": self.sample_rate,
                "response_formats": list(RESPONSE_FORMATS)}

    # --- request preparation ----------------------------------------------------------------

    def prepare(self, params: SpeechParams) -> SpeechJob:
        if params.input is None:
            raise InvalidRequest("input field is missing", "input")
        if len(params.input) > self.options.max_input_chars:
            raise InvalidRequest(f"input is {len(params.input)} characters, more than the limit of "
                                 f"{self.options.max_input_chars}", "input")
        pieces = split_text(params.input)
        if not pieces:
            raise InvalidRequest("input must not be empty", "input")
        voice = DEFAULT_VOICE if params.voice is None else params.voice
        if voice not in self.voices:
            raise InvalidRequest(f"voice {voice!r} is not a voice of {self.name}; known voices: "
                                 f"{', '.join(sorted(self.voices))}", "voice")
        response_format = params.response_format or "mp3"  # OpenAI's default
        if response_format not in RESPONSE_FORMATS:
            raise InvalidRequest(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, "
                                 f"got {response_format!r}", "response_format")
        speed = 1.0 if params.speed is None else float(params.speed)
        if not math.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
            raise InvalidRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}", "speed")
        if params.instructions:
            raise InvalidRequest(f"Model {self.name} does not take instructions", "instructions")
        return SpeechJob(pieces, voice, response_format, speed, input_tokens=self._count_tokens(pieces))

    def _count_tokens(self, pieces: list[str]) -> int:
        """Tokens the model reads (its tokenizer, with the special tokens it adds), over all pieces."""
        if self.tokenizer is None:
            return 0
        return sum(int(self.tokenizer.encode(piece).input_ids.get_shape()[1]) for piece in pieces)

    # --- synthesis (the engine's worker thread) ---------------------------------------------

    def run(self, job: SpeechJob, sink: Any) -> None:
        """Speak each piece in its own unit; emit its float32 waveform at `sample_rate`."""
        speaker = self.voices[job.voice]
        for piece in job.pieces:
            with sink.unit():
                try:
                    result = self.pipe.generate(piece) if speaker is None else self.pipe.generate(piece, speaker)
                except RuntimeError as exc:
                    raise InferenceError(f"Speech synthesis failed: {exc}") from exc
                wave = np.array(result.speeches[0].data, dtype=np.float32, copy=True).reshape(-1)
                self.sample_rate = int(result.output_sample_rate)
            sink.emit(stretch(wave, job.speed, self.sample_rate))
            if sink.cancelled:
                return
