"""M4A (AAC in MP4) and WebM/Matroska (Opus, Vorbis, ...) uploads, decoded with PyAV.

libsndfile reads neither container, so these two go to PyAV (`av` on PyPI, wheels with FFmpeg
inside; in the `audio` extra). Only these containers are opened, with the demuxer forced from the
file's magic bytes: FFmpeg's probing would also accept playlists (HLS, concat) that make it open
other files or URLs. The MP4 demuxer leaves external data references off by default (FFmpeg
formats documentation, `enable_drefs`).

The duration is read from the container header when it declares one; files that do not (a WebM a
browser's MediaRecorder writes) are held to the same limit while they decode, so a small file
cannot expand past `max_seconds` of samples.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

from .errors import InvalidRequest

MP4_FORMAT = "mp4"  # FFmpeg's mov,mp4,m4a,3gp,3g2,mj2 demuxer
MATROSKA_FORMAT = "matroska"  # matroska,webm
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def container_of(data: bytes) -> str | None:
    """The FFmpeg demuxer for an MP4/M4A or Matroska/WebM file, else None (left to libsndfile)."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return MP4_FORMAT
    if data[:4] == _EBML_MAGIC:
        return MATROSKA_FORMAT
    return None


def _av(param: str) -> Any:
    try:
        import av
    except ImportError:
        raise InvalidRequest(f"{param} is an M4A or WebM file, which this server decodes only with PyAV: "
                             "pip install 'genai-gateway[audio]'", param) from None
    return av


def _open(data: bytes, container: str, param: str) -> Any:
    av = _av(param)
    try:
        return av.open(io.BytesIO(data), mode="r", format=container)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidRequest(f"{param} is not a readable {container} file: {_reason(exc)}", param) from None


def _reason(exc: Exception) -> str:
    """FFmpeg's own words, without the errno and the '<none>' file name PyAV puts around them."""
    return str(getattr(exc, "strerror", None) or exc)


def _audio_stream(source: Any, param: str) -> Any:
    stream = next((s for s in source.streams if s.type == "audio"), None)
    if stream is None:
        raise InvalidRequest(f"{param} holds no audio stream", param)
    return stream


def probe_seconds(data: bytes, container: str, param: str) -> float | None:
    """The duration the container header declares (of its audio stream, else of the file), or None."""
    with _open(data, container, param) as source:
        stream = _audio_stream(source, param)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if source.duration is not None:
            return float(source.duration) / 1_000_000  # AV_TIME_BASE
        return None


def decode(data: bytes, container: str, param: str, max_seconds: float) -> tuple[np.ndarray, int]:
    """The first audio stream as mono float32 (channels averaged) at its own rate; a 400 naming
    `param` when it is corrupt, holds no samples or decodes to more than `max_seconds`."""
    av = _av(param)
    parts: list[np.ndarray] = []
    total, rate = 0, 0
    with _open(data, container, param) as source:
        stream = _audio_stream(source, param)
        resampler: Any = None
        try:
            for frame in source.decode(stream):
                if resampler is None:  # planar float at the first frame's rate, whatever follows
                    rate = int(frame.sample_rate)
                    resampler = av.AudioResampler(format="fltp", rate=rate)
                for out in resampler.resample(frame):
                    mono = out.to_ndarray().mean(axis=0, dtype=np.float32)
                    parts.append(mono)
                    total += mono.size
                if total > max_seconds * rate:
                    raise InvalidRequest(f"{param} holds more than the limit of {max_seconds} s of audio", param)
            if resampler is not None:
                for out in resampler.resample(None):
                    parts.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
        except (av.FFmpegError, ValueError) as exc:
            raise InvalidRequest(f"{param} could not be decoded: {_reason(exc)}", param) from None
    if not parts or rate <= 0:
        raise InvalidRequest(f"{param} holds no audio samples", param)
    return np.concatenate(parts), rate
