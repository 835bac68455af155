"""What an upload's container costs, and what SSE speech costs, against WAV and plain audio in the same run.

    python bench/audio_formats.py [--asr_path DIR] [--tts_path DIR] [--seconds 20] [--rounds 5]

Transcription: the same espeak-ng clip uploaded as WAV (the baseline), FLAC, MP3 (libsndfile), M4A/AAC
and WebM/Opus (PyAV). Two numbers per format: decoding alone in this process (`decode_speech`, what
the server runs before the model: demux, decode, mono, libsoxr to 16 kHz) in milliseconds per audio
second, and the whole transcription request through the server (median wall seconds). Speech: the
same text as a plain chunked `pcm` response (the baseline) and as `stream_format: "sse"` base64
events. Ratios are to the baseline; medians over rounds, formats alternating within each round.
Without paths the tiny random test models are built (tests/fixtures_audio.py).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from servables.audio_io import decode_speech  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
SPOKEN = " ".join([SENTENCE] * 4)


def uploads(clip: np.ndarray, rate: int) -> dict[str, bytes]:
    from tests.fixtures_audio import encode_with_av

    def with_soundfile(fmt: str, subtype: str | None) -> bytes:
        out = io.BytesIO()
        sf.write(out, clip, rate, format=fmt, subtype=subtype)
        return out.getvalue()

    return {"wav": with_soundfile("WAV", "PCM_16"), "flac": with_soundfile("FLAC", None),
            "mp3": with_soundfile("MP3", "MPEG_LAYER_III"), "m4a": encode_with_av(clip, rate, "ipod", "aac", rate),
            "webm": encode_with_av(clip, rate, "webm", "libopus", 48000)}


def wall(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asr_path", type=Path)
    parser.add_argument("--tts_path", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the transcribed clip")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from tests.fixtures_audio import speech_wav, speecht5_ir, whisper_ir

    asr_path, tts_path = args.asr_path or whisper_ir(), args.tts_path or speecht5_ir()
    work = Path(tempfile.mkdtemp(prefix="audio-formats-"))
    samples, rate = sf.read(speech_wav(work / "s.wav", SENTENCE), dtype="float32")
    clip = np.tile(samples, int(np.ceil(args.seconds * rate / samples.size)))[: int(args.seconds * rate)]
    files = uploads(clip, rate)

    decode_ms: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(args.rounds):
        for name, data in files.items():
            decode_ms[name].append(wall(lambda data=data: decode_speech(data)) * 1000 / args.seconds)

    config = work / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "asr", "base_path": str(asr_path), "task": "speech2text", "max_new_tokens": 24}},
        {"config": {"name": "tts", "base_path": str(tts_path), "task": "text2speech"}}]}))
    server = ServerProcess("--config_path", str(config), "--arbiter", "off", log_name="audio-formats").start()
    try:
        client = httpx.Client(base_url=server.url, timeout=600)

        def transcribe(name: str) -> Callable[[], object]:
            def call() -> object:
                r = client.post("/v3/audio/transcriptions", data={"model": "asr"},
                                files={"file": (f"clip.{name}", files[name])})
                r.raise_for_status()
                return r
            return call

        def speak(stream_format: str) -> Callable[[], object]:
            def call() -> object:
                r = client.post("/v3/audio/speech", json={"model": "tts", "input": SPOKEN, "voice": "default",
                                                          "response_format": "pcm", "stream_format": stream_format})
                r.raise_for_status()
                return r
            return call

        for name in files:
            transcribe(name)()  # warm-up
        speak("audio")(), speak("sse")()
        served: dict[str, list[float]] = {name: [] for name in files}
        spoken: dict[str, list[float]] = {"audio": [], "sse": []}
        for round_ in range(args.rounds):
            names = list(files) if round_ % 2 == 0 else list(files)[::-1]
            for name in names:
                served[name].append(wall(transcribe(name)))
            for fmt in (("audio", "sse") if round_ % 2 == 0 else ("sse", "audio")):
                spoken[fmt].append(wall(speak(fmt)))
    finally:
        server.stop()

    base_decode, base_served = statistics.median(decode_ms["wav"]), statistics.median(served["wav"])
    print(f"transcription of a {args.seconds:.0f} s clip ({args.rounds} rounds, medians)")
    print(f"{'upload':<8}{'bytes':>10}{'decode ms/s':>13}{'ratio':>8}{'request s':>11}{'ratio':>8}")
    for name, data in files.items():
        d, s = statistics.median(decode_ms[name]), statistics.median(served[name])
        print(f"{name:<8}{len(data):>10}{d:>13.2f}{d / base_decode:>8.2f}{s:>11.3f}{s / base_served:>8.2f}")
    plain, sse = statistics.median(spoken["audio"]), statistics.median(spoken["sse"])
    print(f"\nspeech of {len(SPOKEN)} characters, pcm")
    print(f"{'stream_format':<15}{'request s':>11}{'ratio':>8}")
    print(f"{'audio':<15}{plain:>11.3f}{1.0:>8.2f}")
    print(f"{'sse':<15}{sse:>11.3f}{sse / plain:>8.2f}")


if __name__ == "__main__":
    main()
