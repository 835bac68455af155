"""Speech-to-text servable: Whisper (and the other ASR models OpenVINO GenAI knows) on `ASRPipeline`.

`ASRPipeline` rather than `WhisperPipeline`: it takes the same Whisper options (language, task,
initial prompt, timestamps, word timestamps, streamer) and also runs the non-Whisper ASR families
GenAI adds (Qwen3-ASR, Fun-ASR), so one servable covers them. Its results are per input
(`chunks[0]`, `languages[0]`, `words[0]`).

`prepare` validates a transcription or translation against the model and the server limits (400s
naming the field) and decodes the upload; `run` transcribes it window by window (30 s, cut where it
is quiet) inside the engine's units, emitting text deltas while a window decodes (when streaming)
and one `WindowResult` per window. Guards against OpenVINO GenAI 2026.4 defects:
`max_new_tokens` >= 2 with timestamps (1 never returns), at least 0.1 s of samples per window (shorter
raises), and word timestamps only on windows whose segments hold complete words (else SIGSEGV).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .audio_io import ASR_RATE, MIN_SAMPLES, check_duration, decode_speech, probe_seconds, require_audio_libraries
from .audio_options import SpeechToTextOptions
from .audio_windows import windows
from .base import ModelSpec
from .config_file import ConfigError
from .errors import InferenceError, InvalidRequest, ModelLoadError

log = logging.getLogger(__name__)

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
PROMPT_RESERVE = 8  # decoder positions kept for <|startofprev|>, the start/language/task tokens and a timestamp
GRANULARITIES = ("segment", "word")
_WORD = re.compile(r"\w", re.UNICODE)


@dataclass
class TranscriptionParams:
    """What one request asks for (the multipart text fields, typed)."""

    task: str  # "transcribe" | "translate"
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    response_format: str = "json"
    timestamp_granularities: list[str] = field(default_factory=list)
    stream: bool = False


@dataclass
class TranscriptionJob:
    speech: np.ndarray  # 16 kHz mono float32
    task: str
    language: str | None  # "<|en|>" or None (detected)
    prompt: str | None
    temperature: float
    segments: bool  # segment timestamps needed
    words: bool
    stream: bool


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class TextDelta:
    """Text decoded so far in a window (streaming)."""

    text: str


@dataclass
class WindowResult:
    start: float  # seconds from the start of the audio
    end: float
    text: str
    language: str | None
    segments: list[Segment]
    words: list[Word]


class ASRServable:
    task: ClassVar[str] = "speech2text"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        try:
            self.options = SpeechToTextOptions.from_dict(spec.options)
        except ConfigError as exc:
            raise ConfigError(f"{spec.name}: {exc}") from None
        self.pipe: Any = None
        self.languages: dict[str, int] = {}  # "<|en|>" -> token id; empty for English-only models
        self.can_translate = False
        self.prompt_tokens = 0  # the longest prompt (tokens) that fits beside max_new_tokens in the decoder

    @property
    def name(self) -> str:
        return self.spec.name

    def load(self) -> None:
        require_audio_libraries()
        import openvino_genai as ov_genai

        props = dict(self.options.plugin_config)
        if self.options.word_timestamps:
            props["word_timestamps"] = True  # a constructor property: generate-time only raises
        try:
            self.pipe = ov_genai.ASRPipeline(str(self.spec.base_path), self.options.device, **props)
        except Exception as exc:  # noqa: BLE001 - GenAI raises RuntimeError, bad properties TypeError
            raise ModelLoadError(f"{self.name}: cannot load {self.spec.base_path} as a speech-to-text model: "
                                 f"{exc}") from None
        config = self.pipe.get_generation_config()
        self.languages = dict(config.lang_to_id) if config.is_multilingual else {}
        self.can_translate = bool(config.is_multilingual) and config.translate_token_id >= 0
        self.prompt_tokens = max(0, int(config.max_length) - self.options.max_new_tokens - PROMPT_RESERVE)
        log.info("loaded %s from %s (%d languages)", self.name, self.spec.base_path, len(self.languages))

    def close(self) -> None:
        self.pipe = None

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "languages": sorted(code.strip("<|>") for code in self.languages),
                "translation": self.can_translate, "word_timestamps": self.options.word_timestamps,
                "max_audio_seconds": self.options.max_audio_seconds}

    # --- request preparation (a worker thread of the gateway) ------------------------------

    def prepare(self, params: TranscriptionParams, data: bytes) -> TranscriptionJob:
        """Validate the fields, then check and decode the audio (400 naming the field on any problem)."""
        if params.response_format not in RESPONSE_FORMATS:
            raise InvalidRequest(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, "
                                 f"got {params.response_format!r}", "response_format")
        bad = [g for g in params.timestamp_granularities if g not in GRANULARITIES]
        if bad:
            raise InvalidRequest(f"timestamp_granularities[] values must be segment or word, got {bad[0]!r}",
                                 "timestamp_granularities[]")
        granular = set(params.timestamp_granularities)
        if granular and params.response_format != "verbose_json":
            raise InvalidRequest("timestamp_granularities[] needs response_format verbose_json",
                                 "timestamp_granularities[]")
        words = "word" in granular
        if words and not self.options.word_timestamps:
            raise InvalidRequest(f"Model {self.name} is not configured for word timestamps "
                                 "(model option word_timestamps: true)", "timestamp_granularities[]")
        if params.stream and params.response_format not in ("json", "text"):
            raise InvalidRequest("stream=true supports response_format json or text", "stream")
        temperature = 0.0 if params.temperature is None else params.temperature
        if not math.isfinite(temperature) or not 0.0 <= temperature <= 1.0:
            raise InvalidRequest("temperature must be between 0 and 1", "temperature")
        if words and temperature > 0:
            raise InvalidRequest("word timestamps need temperature 0", "temperature")
        if params.task == "translate" and not self.can_translate:
            raise InvalidRequest(f"Model {self.name} cannot translate (not a multilingual Whisper model)", "model")
        language = self._language(params.language)
        prompt = params.prompt if params.prompt and params.prompt.strip() else None

        if len(data) > self.options.max_upload_bytes:
            raise InvalidRequest(f"file is {len(data)} bytes, more than the limit of "
                                 f"{self.options.max_upload_bytes} bytes", "file")
        seconds = probe_seconds(data, "file")  # None: an M4A/WebM without a declared duration
        if seconds is not None:
            check_duration(seconds, self.options.max_audio_seconds, "file")
        speech = decode_speech(data, "file", self.options.max_audio_seconds)
        return TranscriptionJob(speech, params.task, language, prompt, temperature,
                                segments=params.response_format in ("srt", "vtt", "verbose_json"), words=words,
                                stream=params.stream)

    def _language(self, language: str | None) -> str | None:
        if language is None or not language.strip():
            return None
        token = language.strip()
        if not token.startswith("<|"):
            token = f"<|{token.lower()}|>"
        if not self.languages:
            raise InvalidRequest(f"Model {self.name} is English-only and takes no language", "language")
        if token not in self.languages:
            known = ", ".join(sorted(code.strip("<|>") for code in self.languages))
            raise InvalidRequest(f"language {language!r} is not one of this model's languages: {known}", "language")
        return token

    # --- transcription (the engine's worker thread) ----------------------------------------

    def run(self, job: TranscriptionJob, sink: Any) -> None:
        """Transcribe window by window; emit TextDelta (streaming) and one WindowResult per window."""
        previous: str | None = job.prompt
        for start, end in windows(job.speech, ASR_RATE):
            speech = job.speech[start:end]
            if speech.size < MIN_SAMPLES:
                speech = np.pad(speech, (0, MIN_SAMPLES - speech.size))
            offset, length = start / ASR_RATE, (end - start) / ASR_RATE
            with sink.unit():
                result = self._window(job, speech, previous, sink)
            window = self._window_result(result, offset, length)
            if job.words and self._words_are_safe(window):
                with sink.unit():
                    window.words = self._words(job, speech, previous, offset, length)
            sink.emit(window)
            if sink.cancelled:
                return
            previous = window.text.strip() or previous  # condition the next window on this one (as Whisper does)

    def _fit_prompt(self, prompt: str | None) -> str | None:
        """The end of `prompt` that fits the decoder's context (as Whisper keeps the last tokens of
        its prompt). GenAI does not cut it: a prompt of 100k tokens exhausts the memory."""
        if not prompt or not self.prompt_tokens:
            return None
        tokenizer = self.pipe.get_tokenizer()
        ids = tokenizer.encode(prompt, add_special_tokens=False).input_ids.data[0].tolist()
        return prompt if len(ids) <= self.prompt_tokens else tokenizer.decode(ids[-self.prompt_tokens:])

    def _config(self, job: TranscriptionJob, prompt: str | None, timestamps: bool) -> dict[str, Any]:
        config: dict[str, Any] = {"max_new_tokens": self.options.max_new_tokens, "return_timestamps": timestamps}
        if self.languages:
            config["task"] = job.task
        if job.language:
            config["language"] = job.language
        prompt = self._fit_prompt(prompt)
        if prompt:
            config["initial_prompt"] = prompt
        if job.temperature > 0:
            config.update(do_sample=True, temperature=job.temperature, top_k=50)
        return config

    def _window(self, job: TranscriptionJob, speech: np.ndarray, prompt: str | None, sink: Any) -> Any:
        config = self._config(job, prompt, job.segments)
        streamer = None
        if not job.segments:  # GenAI streams windows under 30 s without timestamps only
            def streamer(piece: str) -> bool:
                if job.stream and piece:
                    sink.emit(TextDelta(piece))
                return sink.cancelled  # True stops decoding: a client that left stops within a token
        try:
            return self.pipe.generate(speech, streamer=streamer, **config)
        except RuntimeError as exc:
            raise InferenceError(f"Transcription failed: {exc}") from exc

    @staticmethod
    def _window_result(result: Any, offset: float, length: float) -> WindowResult:
        text = result.texts[0] if result.texts else ""
        language = result.languages[0] if result.languages else None
        segments: list[Segment] = []
        chunks = result.chunks[0] if result.chunks else []
        cursor = offset
        for chunk in chunks:
            # timestamps are clamped to the window and kept in order (an undertrained model can
            # predict times past the audio)
            start = min(max(offset + chunk.start_ts, cursor), offset + length)
            end = min(max(offset + chunk.end_ts, start), offset + length)
            segments.append(Segment(round(start, 2), round(end, 2), chunk.text))
            cursor = end
        if not segments and text.strip():
            segments.append(Segment(round(offset, 2), round(offset + length, 2), text))
        return WindowResult(offset, offset + length, text, language, segments, [])

    @staticmethod
    def _words_are_safe(window: WindowResult) -> bool:
        """GenAI 2026.4 crashes the process (SIGSEGV) computing word timestamps of a segment that
        decodes to no complete word; only windows whose every segment holds a word are asked."""
        return bool(window.segments) and all(_WORD.search(s.text) and "\ufffd" not in s.text for s in window.segments)

    def _words(self, job: TranscriptionJob, speech: np.ndarray, prompt: str | None, offset: float,
               length: float) -> list[Word]:
        config = self._config(job, prompt, True)
        config["word_timestamps"] = True
        try:
            result = self.pipe.generate(speech, **config)
        except RuntimeError as exc:
            raise InferenceError(f"Word timestamps failed: {exc}") from exc
        words: list[Word] = []
        cursor = offset
        for item in (result.words[0] if result.words else []):
            start = min(max(offset + item.start_ts, cursor), offset + length)
            end = min(max(offset + item.end_ts, start), offset + length)
            words.append(Word(item.text, round(start, 2), round(end, 2)))
            cursor = end
        return words
