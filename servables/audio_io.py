"""Audio in and out: decode uploads to 16 kHz mono float32, encode generated speech.

Decoding and encoding use libsndfile through `soundfile` (WAV, FLAC, OGG Vorbis/Opus, MP3 and the
other containers libsndfile reads); M4A and WebM uploads, which libsndfile cannot read, are decoded
with PyAV (`audio_av.py`); resampling uses libsoxr through `soxr`. All come with the `audio` extra
(`pip install genai-gateway[audio]`) and are imported on first use, so servers without audio models
do not need them.
"""
from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from . import audio_av
from .errors import InvalidRequest, ModelLoadError

ASR_RATE = 16000  # Whisper's feature extractor takes 16 kHz mono
MIN_SAMPLES = ASR_RATE // 10  # GenAI's feature extractor rejects <= 200 samples: pad shorter clips with silence
PCM_RATE = 24000  # OpenAI's `pcm` speech format: raw 16-bit little-endian mono at 24 kHz

# response_format -> (libsndfile container, subtype, content type); wav and pcm are written here
ENCODED_FORMATS = {
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
}
CONTENT_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", **{k: v[2] for k, v in ENCODED_FORMATS.items()}}


def require_audio_libraries() -> None:
    """ModelLoadError naming the extra when soundfile or soxr is missing (checked when an audio model loads)."""
    try:
        import soundfile  # noqa: F401
        import soxr  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(f"audio models need the audio extra: pip install 'genai-gateway[audio]' ({exc})") from None


def _soundfile() -> Any:
    import soundfile

    return soundfile


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling (libsoxr, high quality) of a mono float32 signal."""
    if rate == target or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples, rate, target, quality="HQ").astype(np.float32, copy=False)


def probe_seconds(data: bytes, param: str = "file") -> float | None:
    """The duration the file's header declares, without decoding it (400 naming `param` when
    unreadable); None for an M4A/WebM container that declares none (held to the limit while decoding)."""
    if not data:
        raise InvalidRequest(f"{param} is empty", param)
    container = audio_av.container_of(data)
    if container is not None:
        return audio_av.probe_seconds(data, container, param)
    sf = _soundfile()
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidRequest(f"{param} is not an audio file this server can decode (WAV, FLAC, OGG, MP3, M4A, "
                             f"WebM): {_reason(exc)}", param) from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise InvalidRequest(f"{param} holds no audio samples", param)
    return info.frames / info.samplerate


def check_duration(seconds: float, max_seconds: float, param: str = "file") -> None:
    """A 400 naming `param` when `seconds` of audio exceed the limit."""
    if seconds > max_seconds:
        raise InvalidRequest(f"{param} holds {seconds:.0f} s of audio, more than the limit of {max_seconds} s", param)


def decode_speech(data: bytes, param: str = "file", max_seconds: float = float("inf")) -> np.ndarray:
    """An uploaded audio file as 16 kHz mono float32 in [-1, 1] (channels averaged, resampled)."""
    container = audio_av.container_of(data)
    if container is not None:
        mono, rate = audio_av.decode(data, container, param, max_seconds)
    else:
        sf = _soundfile()
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise InvalidRequest(f"{param} could not be decoded: {_reason(exc)}", param) from None
        if samples.size == 0:
            raise InvalidRequest(f"{param} holds no audio samples", param)
        mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    check_duration(mono.size / rate, max_seconds, param)
    speech = resample(np.ascontiguousarray(mono), rate, ASR_RATE)
    if not np.isfinite(speech).all():
        raise InvalidRequest(f"{param} holds samples that are not finite numbers", param)
    if speech.size < MIN_SAMPLES:
        speech = np.pad(speech, (0, MIN_SAMPLES - speech.size))
    return speech


def _reason(exc: Exception) -> str:
    """libsndfile's own words (without the BytesIO repr soundfile puts around them)."""
    return str(getattr(exc, "error_string", None) or exc)


# --- output --------------------------------------------------------------------------------------

def pcm16(samples: np.ndarray) -> bytes:
    """float32 in [-1, 1] -> 16-bit little-endian PCM (clipped)."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_header(rate: int, data_bytes: int | None = None) -> bytes:
    """A 44-byte RIFF/WAVE header for 16-bit mono PCM. Without `data_bytes` (a stream of unknown
    length) the sizes are 0xFFFFFFFF, as OpenAI's streamed WAV; readers then take the data to the end."""
    size = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", size))


def encode_whole(samples: np.ndarray, rate: int, response_format: str) -> bytes:
    """The whole waveform in a compressed container (flac, mp3, opus) by libsndfile."""
    container, subtype, _ = ENCODED_FORMATS[response_format]
    sf = _soundfile()
    out = io.BytesIO()
    sf.write(out, np.clip(samples, -1.0, 1.0), rate, format=container, subtype=subtype)
    return out.getvalue()
