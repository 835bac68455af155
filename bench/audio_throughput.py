"""Real-time factor of transcription and speech: through the server vs. the pipelines called directly.

    python bench/audio_throughput.py [--asr_path DIR] [--tts_path DIR] [--seconds 20] [--requests 8] [--rounds 3]

Real-time factor = seconds of audio per wall second (transcribed audio for speech-to-text, produced
audio for text-to-speech), so higher is better. The in-process baseline runs in the same run,
alternating with the server measurements: `ASRPipeline.generate` on the same 16 kHz samples the
server decodes from the uploaded WAV (one 30 s window, same `max_new_tokens`), and
`Text2SpeechPipeline.generate` on the same sentence. Concurrency 4 on the pipeline means 4 threads
sharing one pipeline behind a lock (what the server's speech engine does: one job at a time per
model). Without paths the tiny random test models are built (tests/fixtures_audio.py). Medians over rounds.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import openvino_genai as ov_genai  # noqa: E402
import soundfile as sf  # noqa: E402

from servables.audio_io import decode_speech  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
MAX_NEW_TOKENS = 24


def timed(calls: list, concurrency: int) -> float:
    """Wall seconds to run `calls` with `concurrency` threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda call: call(), calls))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asr_path", type=Path)
    parser.add_argument("--tts_path", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the transcribed clip")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from tests.fixtures_audio import speech_wav, speecht5_ir, whisper_ir

    asr_path = args.asr_path or whisper_ir()
    tts_path = args.tts_path or speecht5_ir()
    work = Path(tempfile.mkdtemp(prefix="audio-bench-"))
    samples, rate = sf.read(speech_wav(work / "s.wav", SENTENCE), dtype="float32")
    clip = np.tile(samples, int(np.ceil(args.seconds * rate / samples.size)))[: int(args.seconds * rate)]
    buffer = io.BytesIO()
    sf.write(buffer, clip, rate, format="WAV", subtype="PCM_16")
    wav = buffer.getvalue()
    speech16k = decode_speech(wav)  # what the server feeds the pipeline

    asr = ov_genai.ASRPipeline(str(asr_path), "CPU")
    tts = ov_genai.Text2SpeechPipeline(str(tts_path), "CPU")
    lock = threading.Lock()
    tts_seconds = []

    def direct_asr() -> None:
        with lock:
            asr.generate(speech16k, max_new_tokens=MAX_NEW_TOKENS)

    def direct_tts() -> None:
        with lock:
            result = tts.generate(SENTENCE)
            tts_seconds.append(result.speeches[0].get_size() / result.output_sample_rate)

    tts.generate(SENTENCE)
    config = work / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "asr", "base_path": str(asr_path), "task": "speech2text",
                    "max_new_tokens": MAX_NEW_TOKENS}},
        {"config": {"name": "tts", "base_path": str(tts_path), "task": "text2speech"}}]}))
    server = ServerProcess("--config_path", str(config), "--arbiter", "off", log_name="audio-bench").start()
    served_tts = []
    try:
        client = httpx.Client(base_url=server.url, timeout=600)

        def served_asr() -> None:
            r = client.post("/v3/audio/transcriptions", data={"model": "asr"}, files={"file": ("c.wav", wav)})
            r.raise_for_status()

        def served_speech() -> None:
            r = client.post("/v3/audio/speech", json={"model": "tts", "input": SENTENCE, "voice": "default",
                                                      "response_format": "pcm"})
            r.raise_for_status()
            served_tts.append(len(r.content) / 2 / 24000)

        served_asr(), served_speech()  # warm-up
        rows = []
        for name, direct, served, audio in (("transcription", direct_asr, served_asr, lambda: args.seconds),
                                            ("speech", direct_tts, served_speech, None)):
            for concurrency in (1, 4):
                rates: dict[str, list[float]] = {"direct": [], "server": []}
                for round_ in range(args.rounds):
                    order = [("direct", direct), ("server", served)]
                    for label, call in order if round_ % 2 == 0 else order[::-1]:
                        tts_seconds.clear(), served_tts.clear()
                        wall = timed([call] * args.requests, concurrency)
                        if audio is not None:
                            total = audio() * args.requests
                        else:
                            total = sum(tts_seconds if label == "direct" else served_tts)
                        rates[label].append(total / wall)
                d, s = statistics.median(rates["direct"]), statistics.median(rates["server"])
                rows.append((name, concurrency, d, s, s / d))
        print(f"{'workload':<14}{'conc':>5}{'direct RTF':>12}{'server RTF':>12}{'ratio':>8}")
        for name, concurrency, d, s, ratio in rows:
            print(f"{name:<14}{concurrency:>5}{d:>12.1f}{s:>12.1f}{ratio:>8.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
