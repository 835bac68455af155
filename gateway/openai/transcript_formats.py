"""Render a finished transcription as OpenAI's response formats: json, text, srt, vtt, verbose_json."""
from __future__ import annotations

import zlib
from typing import Any

from servables.asr import WindowResult


def full_text(windows: list[WindowResult]) -> str:
    return "".join(w.text for w in windows).strip()


def _clock(seconds: float, decimal: str) -> str:
    millis = int(round(max(seconds, 0.0) * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(windows: list[WindowResult]) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.text.strip()) for w in windows for s in w.segments if s.text.strip()]


def srt(windows: list[WindowResult]) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line after each."""
    return "".join(f"{i}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n\n"
                   for i, (start, end, text) in enumerate(_cues(windows), start=1))


def vtt(windows: list[WindowResult]) -> str:
    """WebVTT: the `WEBVTT` header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues."""
    return "WEBVTT\n\n" + "".join(f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n\n"
                                  for start, end, text in _cues(windows))


def verbose_json(windows: list[WindowResult], task: str, duration: float, temperature: float,
                 granularities: list[str]) -> dict[str, Any]:
    """OpenAI's verbose transcription: segments (unless only words were asked for), words when asked.

    Segments carry `compression_ratio`; `avg_logprob`, `no_speech_prob` and `tokens` are left out:
    openvino_genai 2026.4's ASRPipeline reports no token log-probabilities (its `scores` are 1.0),
    no no-speech probability and no chunk token ids (`token_ids` is empty)."""
    segments: list[dict[str, Any]] = []
    for window in windows:
        for segment in window.segments:
            segments.append({"id": len(segments), "seek": int(round(window.start * 100)), "start": segment.start,
                             "end": segment.end, "text": segment.text, "temperature": temperature,
                             "compression_ratio": compression_ratio(segment.text)})
    body: dict[str, Any] = {
        "task": task, "language": next((w.language for w in windows if w.language), None),
        "duration": round(duration, 3), "text": full_text(windows), "usage": duration_usage(duration),
    }
    if set(granularities) != {"word"}:
        body["segments"] = segments
    if "word" in granularities:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end}
                         for window in windows for w in window.words if w.word.strip()]
    return body


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: UTF-8 bytes over zlib-compressed bytes (> 2.4 flags a loop)."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4)


def duration_usage(seconds: float) -> dict[str, Any]:
    """OpenAI's usage for audio billed by duration (whole seconds, rounded up)."""
    return {"type": "duration", "seconds": int(-(-seconds // 1))}
