"""OpenAI audio API (transcriptions, translations, speech) on tiny random Whisper and SpeechT5 models,
through the real openai SDK and a real server. The weights are random: the tests assert mechanics
(formats, timestamps, events, lengths, errors), not what was said."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from gateway.openai.transcript_formats import compression_ratio
from servables.asr import ASRServable, Segment, WindowResult
from servables.audio_options import SpeechToTextOptions
from servables.config_file import ConfigError
from tests.fixtures_audio import VOICES, encode_with_av, speech_wav, speecht5_ir, whisper_ir, write_wav
from tests.helpers import F32, metric, metric_value, wait_for
from tests.server import ServerProcess

ASR = "whisper"
ASR_QUEUE1 = "whisper-queue1"  # the same files with one waiting request allowed
ASR_SHORT = "whisper-2s"  # the same files with max_audio_seconds 2
TTS = "speecht5"
TRANSCRIPTIONS = "/v3/audio/transcriptions"
SPEECH = "/v3/audio/speech"
SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+)")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n(.+)")


@pytest.fixture(scope="module")
def models() -> tuple[Path, Path]:
    return whisper_ir(), speecht5_ir()


@pytest.fixture(scope="module")
def audio_server(models, tmp_path_factory):
    """No `task` in the entries: the server infers speech2text and text2speech from the model files."""
    whisper, speecht5 = models
    config = tmp_path_factory.mktemp("audio") / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": ASR, "base_path": str(whisper), "word_timestamps": True, "max_new_tokens": 24,
                    "plugin_config": F32}},
        {"config": {"name": ASR_QUEUE1, "base_path": str(whisper), "max_queue_size": 1}},
        {"config": {"name": ASR_SHORT, "base_path": str(whisper), "max_audio_seconds": 2}},
        {"config": {"name": TTS, "base_path": str(speecht5)}}]}))
    server = ServerProcess("--config_path", str(config), "--metrics_enable", "--file_system_poll_wait_seconds", "0",
                           log_name="audio").start()
    yield server, config
    server.stop()


@pytest.fixture(scope="module")
def sdk(audio_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{audio_server[0].url}/v3", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def http(audio_server):
    with httpx.Client(base_url=audio_server[0].url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> bytes:
    """espeak-ng saying a sentence: 22050 Hz 16-bit WAV (resampled to 16 kHz by the server)."""
    return speech_wav(tmp_path_factory.mktemp("speech") / "speech.wav").read_bytes()


def flac(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    return out.getvalue()


def seconds(*parts: str) -> float:
    h, m, s, ms = (int(p) for p in parts)
    return h * 3600 + m * 60 + s + ms / 1000


def running(http, model: str) -> float:
    return metric(http, "genai_requests_running", name=model)


# --- speech to text -------------------------------------------------------------------------------

def test_json_and_text_formats_return_the_same_transcript(sdk, speech):
    as_json = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech))
    assert as_json.text.strip()
    assert as_json.usage.type == "duration" and as_json.usage.seconds >= 3  # espeak's sentence lasts ~3.5 s
    as_text = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), response_format="text")
    assert isinstance(as_text, str) and as_text.strip() == as_json.text  # greedy: the same decode twice


def test_srt_and_vtt_cues_are_well_formed_and_in_order(sdk, speech):
    srt = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), response_format="srt")
    cues = [m.groups() for m in SRT_CUE.finditer(srt)]
    assert cues and len(cues) == srt.count(" --> ")
    assert [int(c[0]) for c in cues] == list(range(1, len(cues) + 1))
    times = [(seconds(*c[1:5]), seconds(*c[5:9])) for c in cues]
    assert all(start <= end for start, end in times)
    assert all(a[1] <= b[0] for a, b in zip(times, times[1:], strict=False))
    assert times[-1][1] <= 4.0  # within the audio
    vtt = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    vtt_times = [(seconds(*m.groups()[0:4]), seconds(*m.groups()[4:8])) for m in VTT_CUE.finditer(vtt)]
    assert vtt_times == times


def test_verbose_json_has_segments_and_words_with_increasing_timestamps(sdk, speech):
    r = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), response_format="verbose_json",
                                        timestamp_granularities=["segment", "word"])
    assert r.language in ("en", "de", "fr") and r.task == "transcribe"
    assert 3.0 < r.duration < 4.5
    assert r.segments and [s.id for s in r.segments] == list(range(len(r.segments)))
    starts = [s.start for s in r.segments]
    assert starts == sorted(starts) and all(s.start <= s.end <= r.duration for s in r.segments)
    assert r.words and all(w.word for w in r.words)
    word_starts = [w.start for w in r.words]
    assert word_starts == sorted(word_starts) and all(w.start <= w.end <= r.duration for w in r.words)
    only_words = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech),
                                                 response_format="verbose_json", timestamp_granularities=["word"])
    assert only_words.words and getattr(only_words, "segments", None) is None


def test_verbose_json_segments_carry_whispers_compression_ratio_and_no_invented_logprobs(http, speech):
    r = http.post(TRANSCRIPTIONS, data={"model": ASR, "response_format": "verbose_json"},
                  files={"file": ("speech.wav", speech)})
    segments = r.json()["segments"]
    assert segments
    for segment in segments:
        data = segment["text"].encode()
        assert segment["compression_ratio"] == pytest.approx(len(data) / len(zlib.compress(data)), abs=1e-4)
        # GenAI reports no token log-probabilities or no-speech probability: left out, never made up
        assert not {"avg_logprob", "no_speech_prob", "tokens"} & set(segment)
    assert compression_ratio("la " * 200) > 2.4 > compression_ratio("hello world, this is a tiny speech test")


def test_streaming_sends_deltas_then_done_with_the_whole_text(sdk, speech):
    events = list(sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), stream=True))
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done" and types.count("transcript.text.done") == 1
    assert len(types) >= 3 and set(types[:-1]) == {"transcript.text.delta"}
    assert "".join(e.delta for e in events[:-1]).strip() == events[-1].text
    unary = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech))
    assert events[-1].text == unary.text


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
def test_translation_and_language_are_passed_to_whisper(sdk, http, speech):
    translated = sdk.audio.translations.create(model=ASR, file=("speech.wav", speech), response_format="verbose_json")
    assert translated.task == "translate" and translated.text.strip()
    german = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), language="de",
                                             response_format="verbose_json")
    assert german.language == "de"  # the forced language token (a random model would not detect it)
    french = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), language="fr",
                                             response_format="verbose_json", prompt="Bonjour", temperature=0.4)
    assert french.language == "fr"
    for prefix in ("/v1", "/v3/v1"):
        r = http.post(f"{prefix}/audio/translations", files={"file": ("s.wav", speech)}, data={"model": ASR})
        assert r.status_code == 200 and r.json()["text"].strip()


def test_long_audio_is_transcribed_in_30_second_windows_one_arbiter_unit_each(sdk, http, speech):
    units = metric(http, "genai_arbiter_units", kind="speech2text", name=ASR)
    samples, rate = sf.read(io.BytesIO(speech), dtype="float32")
    gap = np.zeros(int(rate * 0.7), dtype=np.float32)
    long = np.tile(np.concatenate([samples, gap]), 20)[: rate * 70]  # 70 s of speech and pauses
    r = sdk.audio.transcriptions.create(model=ASR, file=("long.flac", flac(long, rate)),
                                        response_format="verbose_json")
    assert 69.5 < r.duration < 70.5
    seeks = sorted({s.seek for s in r.segments})
    assert len(seeks) == 3 and seeks[0] == 0  # seek: the window's start in 10 ms frames, as Whisper's
    assert all(0 < b - a <= 3000 for a, b in zip(seeks, seeks[1:], strict=False))
    assert r.segments[-1].end > 60.0 and [s.start for s in r.segments] == sorted(s.start for s in r.segments)
    # each window is one unit of the device arbiter
    assert metric(http, "genai_arbiter_units", kind="speech2text", name=ASR) - units == 3


def test_other_containers_stereo_and_very_short_clips_are_decoded(sdk, speech):
    samples, rate = sf.read(io.BytesIO(speech), dtype="float32")
    stereo = np.stack([samples, samples * 0.5], axis=1)
    containers = (("s.ogg", "OGG", "VORBIS"), ("s.mp3", "MP3", "MPEG_LAYER_III"), ("s.flac", "FLAC", None))
    for name, fmt, subtype in containers:
        out = io.BytesIO()
        sf.write(out, stereo, rate, format=fmt, subtype=subtype)
        r = sdk.audio.transcriptions.create(model=ASR, file=(name, out.getvalue()), response_format="verbose_json")
        assert 3.0 < r.duration < 4.5, name
    # 50 samples: GenAI raises on <= 200; the server pads short clips with silence
    tiny = io.BytesIO()
    sf.write(tiny, samples[:50], rate, format="WAV")
    assert sdk.audio.transcriptions.create(model=ASR, file=("tiny.wav", tiny.getvalue())).usage.seconds >= 0


def m4a_and_webm(speech: bytes, **webm_options: str) -> dict[str, bytes]:
    """The espeak sentence as M4A (AAC in MP4, at the WAV's rate) and WebM (Opus at 48 kHz), encoded by PyAV."""
    samples, rate = sf.read(io.BytesIO(speech), dtype="float32")
    return {"speech.m4a": encode_with_av(samples, rate, "ipod", "aac", rate),
            "speech.webm": encode_with_av(samples, rate, "webm", "libopus", 48000, webm_options)}


def test_m4a_and_webm_uploads_transcribe_like_the_wav(sdk, speech):
    """libsndfile reads neither container: PyAV decodes them, then the same resampler and model run."""
    wav = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), response_format="verbose_json")
    for name, data in m4a_and_webm(speech).items():
        assert data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3", name
        r = sdk.audio.transcriptions.create(model=ASR, file=(name, data), response_format="verbose_json")
        assert r.text == wav.text, name  # the tiny Whisper decodes the lossy copies to the same tokens
        assert abs(r.duration - wav.duration) < 0.15, name  # AAC adds up to one frame of encoder padding
        assert r.usage.seconds == wav.usage.seconds


def test_m4a_and_webm_limits_and_corrupt_files_are_400_naming_file(http, sdk, speech):
    uploads = m4a_and_webm(speech)
    # over max_audio_seconds (2 s): declared in the header, or found while decoding a WebM that declares none
    live = m4a_and_webm(speech, live="1")["speech.webm"]
    for name, data in (*uploads.items(), ("live.webm", live)):
        r = http.post(TRANSCRIPTIONS, data={"model": ASR_SHORT}, files={"file": (name, data)})
        assert r.status_code == 400 and r.json()["error"]["param"] == "file", r.text
        assert "limit of 2 s" in r.json()["error"]["message"]
    m4a = uploads["speech.m4a"]
    for name, data in (("cut.m4a", m4a[: len(m4a) // 2]), ("header-only.m4a", m4a[:40] + b"\0" * 1000),
                       ("garbage.webm", b"\x1a\x45\xdf\xa3" + b"not matroska" * 50)):
        r = http.post(TRANSCRIPTIONS, data={"model": ASR}, files={"file": (name, data)})
        assert r.status_code == 400 and r.json()["error"]["param"] == "file", r.text
    # the live WebM (no declared duration) within the limit is transcribed like the others
    assert sdk.audio.transcriptions.create(model=ASR, file=("live.webm", live)).text.strip()


def two_hours_of_silence() -> bytes:
    out = io.BytesIO()
    with sf.SoundFile(out, "w", 8000, 1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(8000 * 600, dtype=np.int16)
        for _ in range(12):
            f.write(block)
    return out.getvalue()  # ~180 kB


def empty_wav() -> bytes:
    out = io.BytesIO()
    sf.write(out, np.zeros(0, dtype=np.float32), 16000, format="WAV")
    return out.getvalue()


BAD_UPLOADS = [  # (form fields, file or None, param named in the 400)
    ({"model": ASR}, None, "file"),
    ({"model": ASR}, ("empty.wav", b""), "file"),
    ({"model": ASR}, ("zero-frames.wav", "EMPTY_WAV"), "file"),
    ({"model": ASR}, ("garbage.wav", b"RIFF this is not audio at all " * 40), "file"),
    ({"model": ASR}, ("two-hours.flac", "TWO_HOURS"), "file"),
    ({"model": ASR, "response_format": "docx"}, "SPEECH", "response_format"),
    ({"model": ASR, "timestamp_granularities[]": "sentence"}, "SPEECH", "timestamp_granularities[]"),
    ({"model": ASR, "timestamp_granularities[]": "word"}, "SPEECH", "timestamp_granularities[]"),  # not verbose
    ({"model": ASR_QUEUE1, "response_format": "verbose_json", "timestamp_granularities[]": "word"}, "SPEECH",
     "timestamp_granularities[]"),  # a model loaded without word_timestamps
    ({"model": ASR, "language": "ja"}, "SPEECH", "language"),
    ({"model": ASR, "temperature": "2"}, "SPEECH", "temperature"),
    ({"model": ASR, "temperature": "warm"}, "SPEECH", "temperature"),
    ({"model": ASR, "stream": "true", "response_format": "srt"}, "SPEECH", "stream"),
    ({"model": ASR, "chunking_strategy": "auto"}, "SPEECH", "chunking_strategy"),
    ({"model": TTS}, "SPEECH", "model"),
]


@pytest.mark.parametrize("fields, upload, param", BAD_UPLOADS)
def test_bad_transcription_requests_are_400_naming_the_field(http, speech, fields, upload, param):
    files = None
    if upload is not None:
        name, data = upload if isinstance(upload, tuple) else ("speech.wav", upload)
        data = {"SPEECH": speech, "EMPTY_WAV": empty_wav(), "TWO_HOURS": two_hours_of_silence()}.get(data, data) \
            if isinstance(data, str) else data
        files = {"file": (name, data)}
    else:
        files = {"prompt": (None, "still multipart, without a file")}
    r = http.post(TRANSCRIPTIONS, data=fields, files=files)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


def test_a_prompt_longer_than_the_decoder_context_keeps_its_end(sdk, speech):
    """GenAI does not cut the prompt: 100k prompt tokens exhaust the memory and kill the process."""
    long_prompt = "word " * 40000  # 200 kB, 40k+ tokens against a 448-token decoder
    r = sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech), prompt=long_prompt)
    assert r.text.strip()
    assert sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech)).text.strip()


def test_wrong_content_type_and_oversize_uploads_are_400_then_the_server_still_serves(http, sdk, speech):
    r = http.post(TRANSCRIPTIONS, json={"model": ASR, "file": "speech.wav"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    big = b"\0" * (26 * 1024 * 1024)  # over the default 25 MB upload limit: refused on Content-Length
    r = http.post(TRANSCRIPTIONS, data={"model": ASR}, files={"file": ("big.wav", big)})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    assert sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech)).text.strip()


def test_word_timestamps_are_asked_only_for_windows_with_complete_words():
    """GenAI 2026.4 crashes the process computing word timestamps of a segment with no complete word."""
    def window(*texts: str) -> WindowResult:
        return WindowResult(0.0, 1.0, "".join(texts), "en", [Segment(0.0, 1.0, t) for t in texts], [])

    assert ASRServable._words_are_safe(window(" hello", " world"))
    assert not ASRServable._words_are_safe(window(" hello", ""))
    assert not ASRServable._words_are_safe(window(" \ufffd"))  # a partial UTF-8 byte
    assert not ASRServable._words_are_safe(window())


def test_max_new_tokens_below_two_is_refused_in_the_config():
    """GenAI 2026.4 never returns from max_new_tokens=1 with timestamps."""
    with pytest.raises(ConfigError, match="max_new_tokens"):
        SpeechToTextOptions.from_dict({"max_new_tokens": 1})
    assert SpeechToTextOptions.from_dict({"max_new_tokens": 2}).max_new_tokens == 2


def test_client_leaving_a_stream_cancels_it_and_the_server_keeps_serving(audio_server, http, speech, sdk):
    samples, rate = sf.read(io.BytesIO(speech), dtype="float32")
    long = flac(np.tile(samples, 40), rate)  # ~2 min: five windows
    with httpx.Client(base_url=audio_server[0].url, timeout=60) as client:
        with client.stream("POST", TRANSCRIPTIONS, data={"model": ASR, "stream": "true"},
                           files={"file": ("long.flac", long)}) as r:
            assert r.status_code == 200
            first = next(line for line in r.iter_lines() if line.startswith("data:"))
            assert json.loads(first[5:])["type"] == "transcript.text.delta"
    wait_for(lambda: running(http, ASR) == 0, timeout=30, message="the cancelled transcription stopped")
    assert sdk.audio.transcriptions.create(model=ASR, file=("speech.wav", speech)).text.strip()


def test_a_full_queue_is_503_with_retry_after_and_queued_work_still_completes(audio_server, http, speech):
    samples, rate = sf.read(io.BytesIO(speech), dtype="float32")
    step = max(1, rate // 8000)  # ~8 kHz keeps minutes of speech small
    long = flac(np.tile(samples[::step], 85), rate // step)  # ~5 min: ten windows
    with httpx.Client(base_url=audio_server[0].url, timeout=120) as client, ThreadPoolExecutor(1) as pool:
        with client.stream("POST", TRANSCRIPTIONS, data={"model": ASR_QUEUE1, "stream": "true"},
                           files={"file": ("long.flac", long)}) as running_stream:
            lines = running_stream.iter_lines()  # kept open: closing the iterator would disconnect
            assert next(lines).startswith("data:")  # it runs
            queued = pool.submit(http.post, TRANSCRIPTIONS, data={"model": ASR_QUEUE1},
                                 files={"file": ("s.wav", speech)})
            wait_for(lambda: queued.done() or metric(http, "genai_requests_waiting", name=ASR_QUEUE1) == 1,
                     timeout=30, message="one request waiting")
            assert not queued.done()
            r = http.post(TRANSCRIPTIONS, data={"model": ASR_QUEUE1}, files={"file": ("s.wav", speech)})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
        # leaving the stream cancelled the running job: the queued one runs now
        assert queued.result().status_code == 200 and queued.result().json()["text"].strip()


# --- text to speech -------------------------------------------------------------------------------

def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def test_speech_is_a_wav_soundfile_reads_at_the_declared_rate(sdk):
    r = sdk.audio.speech.create(model=TTS, voice=VOICES[0], input="Hello everyone", response_format="wav")
    samples, rate = read_wav(r.content)
    assert rate == 16000 and samples.ndim == 1
    # the tiny model never stops early: maxlenratio 2 -> one 512-sample frame pair per token (16 tokens)
    assert samples.size == 16 * 512
    assert 0.01 < np.abs(samples).max() <= 1.0


def test_sentences_are_spoken_one_per_call_and_concatenated(sdk):
    """A list of texts in one GenAI call returns copies of the last one: the server speaks each
    sentence alone (and copies each waveform before the next call overwrites it)."""
    def frames(text: str) -> np.ndarray:
        return read_wav(sdk.audio.speech.create(model=TTS, voice=VOICES[0], input=text,
                                                response_format="wav").content)[0]

    a, b = frames("Hi."), frames("Hello there everyone.")
    both = frames("Hi. Hello there everyone.")
    assert a.size != b.size and both.size == a.size + b.size
    np.testing.assert_allclose(both[: a.size], a, atol=1e-4)
    np.testing.assert_allclose(both[a.size:], b, atol=1e-4)


def test_voices_are_the_files_beside_the_model_and_unknown_is_400_listing_them(sdk, http):
    sounds = {v: sdk.audio.speech.create(model=TTS, voice=v, input="Hello", response_format="wav").content
              for v in (*VOICES, "default")}
    assert len(set(sounds.values())) == 3  # each speaker embedding changes the voice
    r = http.post(SPEECH, json={"model": TTS, "voice": {"id": VOICES[1]}, "input": "Hello",
                                "response_format": "wav"})
    assert r.status_code == 200 and r.content == sounds[VOICES[1]]
    with pytest.raises(openai.BadRequestError) as err:
        sdk.audio.speech.create(model=TTS, voice="nova", input="Hello")
    assert err.value.body["param"] == "voice"
    assert all(v in err.value.body["message"] for v in (*VOICES, "default"))
    models = {m["id"]: m for m in http.get("/v3/models").json()["data"]}
    assert models[TTS]["voices"] == sorted((*VOICES, "default"))


def test_pcm_flac_mp3_and_opus_decode_to_the_same_length(sdk):
    wav, _ = read_wav(sdk.audio.speech.create(model=TTS, voice=VOICES[0], input="Hello everyone",
                                              response_format="wav").content)
    pcm = sdk.audio.speech.create(model=TTS, voice=VOICES[0], input="Hello everyone", response_format="pcm").content
    assert len(pcm) == 2 * round(wav.size * 24000 / 16000)  # OpenAI's pcm: 16-bit mono at 24 kHz
    for fmt in ("flac", "mp3", "opus"):
        data = sdk.audio.speech.create(model=TTS, voice=VOICES[0], input="Hello everyone", response_format=fmt).content
        decoded, rate = sf.read(io.BytesIO(data), dtype="float32")
        assert abs(decoded.size / rate - wav.size / 16000) < 0.1, fmt
    np.testing.assert_allclose(sf.read(io.BytesIO(sdk.audio.speech.create(
        model=TTS, voice=VOICES[0], input="Hello everyone", response_format="flac").content), dtype="float32")[0],
        wav, atol=1e-4)  # flac is lossless


def test_speed_stretches_time_not_pitch(sdk):
    def spoken(speed: float) -> np.ndarray:
        return read_wav(sdk.audio.speech.create(model=TTS, voice=VOICES[0], input="Hello everyone",
                                                response_format="wav", speed=speed).content)[0]

    normal, fast, slow = spoken(1.0), spoken(2.0), spoken(0.5)
    assert abs(fast.size - normal.size / 2) <= 1 and abs(slow.size - normal.size * 2) <= 1


def test_streaming_speech_sends_the_first_sentence_before_the_rest_is_made(sdk, http):
    text = " ".join(f"Sentence number {i} of a longer text." for i in range(8))
    with sdk.audio.speech.with_streaming_response.create(model=TTS, voice=VOICES[0], input=text,
                                                         response_format="wav") as response:
        chunks = response.iter_bytes()
        first = next(chunks)
        assert running(http, TTS) == 1  # still speaking the later sentences
        data = first + b"".join(chunks)
    samples, rate = read_wav(data)
    assert rate == 16000 and samples.size > 8 * 16000 * 0.5


def test_client_leaving_a_speech_stream_stops_it_within_a_sentence(audio_server, http):
    def units() -> float:
        return metric(http, "genai_arbiter_units", kind="text2speech", name=TTS)

    before = units()
    text = " ".join(f"This is sentence number {i}." for i in range(40))
    with httpx.Client(base_url=audio_server[0].url, timeout=60) as client:
        with client.stream("POST", SPEECH, json={"model": TTS, "input": text, "voice": VOICES[0],
                                                 "response_format": "pcm"}) as r:
            assert r.status_code == 200
            next(r.iter_bytes())
    wait_for(lambda: running(http, TTS) == 0, timeout=30, message="the abandoned speech stopped")
    assert units() - before < 10  # stopped within a sentence or two of the disconnect, not after all 40


def speech_events(http, **body) -> list[dict]:
    """POST /audio/speech with stream_format sse, read as a stream of `data:` lines."""
    with http.stream("POST", SPEECH, json={"model": TTS, "voice": VOICES[0], "stream_format": "sse", **body}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]


def test_speech_sse_deltas_concatenate_to_the_same_audio_as_the_plain_response(sdk, http):
    text = "Hi. Hello there everyone."
    for fmt in ("wav", "pcm", "flac"):
        events = speech_events(http, input=text, response_format=fmt)
        types = [e["type"] for e in events]
        assert types[-1] == "speech.audio.done" and set(types[:-1]) == {"speech.audio.delta"}, types
        audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
        plain = sdk.audio.speech.create(model=TTS, voice=VOICES[0], input=text, response_format=fmt).content
        assert audio == plain, fmt
        if fmt != "flac":
            assert len(types) >= 3, types  # wav and pcm: a delta per sentence (after the wav header)
    usage = events[-1]["usage"]
    assert usage["input_tokens"] > len("Hi") and usage["output_tokens"] == 0
    assert usage["total_tokens"] == usage["input_tokens"]
    samples, rate = sf.read(io.BytesIO(audio), dtype="float32")
    assert rate == 16000 and samples.size > 0
    longer = speech_events(http, input=text + " And one more sentence.", response_format="flac")
    assert longer[-1]["usage"]["input_tokens"] > usage["input_tokens"]


def test_speech_sse_through_the_openai_sdk(sdk):
    r = sdk.audio.speech.create(model=TTS, voice=VOICES[0], input="Hello", response_format="pcm", stream_format="sse")
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(pcm) > 0 and len(pcm) % 2 == 0


BAD_SPEECH = [
    ({"input": "Hi", "voice": "alloy", "response_format": "aac"}, "response_format"),
    ({"input": "Hi", "voice": "alloy", "speed": 5.0}, "speed"),
    ({"input": "Hi", "voice": "alloy", "speed": 0.1}, "speed"),
    ({"input": "   ", "voice": "alloy"}, "input"),
    ({"input": "x" * 4097, "voice": "alloy"}, "input"),
    ({"input": "Hi", "voice": "alloy", "stream_format": "ndjson"}, "stream_format"),
    ({"input": "Hi", "voice": "alloy", "instructions": "whisper it"}, "instructions"),
    ({"voice": "alloy"}, "input"),
    ({"input": "Hi", "voice": 3}, "voice"),
]


@pytest.mark.parametrize("body, param", BAD_SPEECH)
def test_bad_speech_requests_are_400_naming_the_field(http, body, param):
    r = http.post(SPEECH, json={"model": TTS, **body})
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["param"] or "").startswith(param), r.text


def test_speech_model_does_not_transcribe_and_the_asr_model_does_not_speak(http, speech):
    r = http.post(SPEECH, json={"model": ASR, "input": "Hi", "voice": "alloy"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


# --- serving ------------------------------------------------------------------------------------

def test_models_metrics_and_config_reload_cover_both_kinds(audio_server, http, speech, models):
    server, config = audio_server
    listed = {m["id"]: m for m in http.get("/v3/models").json()["data"]}
    assert listed[ASR]["kind"] == "speech2text" and listed[ASR]["endpoints"] == ["audio/transcriptions",
                                                                                  "audio/translations"]
    assert listed[TTS]["kind"] == "text2speech" and listed[TTS]["endpoints"] == ["audio/speech"]
    assert http.post(TRANSCRIPTIONS, data={"model": ASR}, files={"file": ("s.wav", speech)}).status_code == 200
    assert http.post(SPEECH, json={"model": TTS, "input": "Hi", "voice": "default"}).status_code == 200
    text = http.get("/metrics").text
    for model, kind in ((ASR, "speech2text"), (TTS, "text2speech")):
        assert metric_value(text, "ovms_responses", api="V3", interface="REST", method="Unary", name=model) > 0
        assert metric_value(text, "genai_arbiter_units", kind=kind, name=model) > 0
        assert metric_value(text, "genai_requests_running", name=model) == 0
    entries = json.loads(config.read_text())
    entries["model_config_list"].append({"config": {"name": "speecht5-copy", "base_path": str(models[1]),
                                                    "task": "text2speech"}})
    config.write_text(json.dumps(entries))
    try:
        assert http.post("/v1/config/reload").status_code in (200, 201)
        r = http.post(SPEECH, json={"model": "speecht5-copy", "input": "Hi", "voice": "default",
                                    "response_format": "wav"})
        assert r.status_code == 200 and read_wav(r.content)[1] == 16000
    finally:
        entries["model_config_list"].pop()
        config.write_text(json.dumps(entries))
        http.post("/v1/config/reload")
    assert http.post(SPEECH, json={"model": "speecht5-copy", "input": "Hi"}).status_code == 404


def test_serve_a_whisper_folder_without_task_infers_speech2text(models, tmp_path):
    write_wav(tmp_path / "beep.wav", np.sin(np.arange(8000) / 5).astype(np.float32) * 0.3, 8000)
    server = ServerProcess("--model_path", str(models[0]), "--model_name", "w", log_name="audio-cli").start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            kind = client.get("/v3/models/w").json()["kind"]
            assert kind == "speech2text"
            r = client.post("/v1/audio/transcriptions", data={"model": "w", "response_format": "text"},
                            files={"file": ("beep.wav", (tmp_path / "beep.wav").read_bytes())})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    finally:
        server.stop()


def test_pull_converts_a_whisper_checkpoint_with_the_speech2text_task_then_serves_it(tmp_path, speech):
    from tests.fake_hub import FakeHub
    from tests.fixtures_audio import whisper_hf

    hub = FakeHub()
    hub.add_repo("test-org/tiny-whisper", whisper_hf())
    hub.start()
    repo = tmp_path / "models"
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    try:  # no --task: inferred from config.json (WhisperForConditionalGeneration), converted with optimum's ASR task
        server = ServerProcess("--source_model", "test-org/tiny-whisper", "--model_repository_path", str(repo),
                               "--weight-format", "fp32", env=env, log_name="audio-pull").start(600)
    finally:
        hub.stop()
    try:
        folder = repo / "test-org/tiny-whisper"
        assert json.loads((folder / "genai_gateway.json").read_text())["task"] == "speech2text"
        assert (folder / "openvino_encoder_model.xml").is_file() and (folder / "openvino_tokenizer.xml").is_file()
        client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
        r = client.audio.transcriptions.create(model="test-org/tiny-whisper", file=("s.wav", speech),
                                               response_format="verbose_json")
        assert r.text.strip() and r.segments
    finally:
        server.stop()
    assert "automatic-speech-recognition-with-past" in server.log()


@pytest.mark.slow
def test_pull_converts_a_speecht5_checkpoint_with_its_vocoder_then_speaks(tmp_path):
    """`pull` infers text2speech from config.json and hands the vocoder to optimum-cli as OVMS does
    (`--model-kwargs`); without one it says what to pass instead of failing inside the export."""
    from tests.fake_hub import FakeHub
    from tests.fixtures_audio import speecht5_hf

    checkpoints = speecht5_hf()
    hub = FakeHub()
    hub.add_repo("test-org/tiny-speecht5", checkpoints / "tts")
    hub.add_repo("test-org/tiny-hifigan", checkpoints / "vocoder")
    hub.start()
    repo = tmp_path / "models"
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    try:
        no_vocoder = subprocess.run([sys.executable, "-m", "gateway.cli", "pull", "--source_model",
                                     "test-org/tiny-speecht5", "--model_repository_path", str(repo)],
                                    cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                                    env={**os.environ, **env}, timeout=300)
        assert no_vocoder.returncode == 2 and "vocoder" in no_vocoder.stderr, no_vocoder.stderr
        assert not (repo / "test-org/tiny-speecht5").exists()
        server = ServerProcess("--source_model", "test-org/tiny-speecht5", "--model_repository_path", str(repo),
                               "--weight-format", "fp32", "--extra_quantization_params",
                               '--model-kwargs {"vocoder":"test-org/tiny-hifigan"}', env=env,
                               log_name="audio-pull-tts").start(600)
    finally:
        hub.stop()
    try:
        folder = repo / "test-org/tiny-speecht5"
        assert json.loads((folder / "genai_gateway.json").read_text())["task"] == "text2speech"
        assert (folder / "openvino_vocoder.xml").is_file() and (folder / "openvino_tokenizer.xml").is_file()
        client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
        samples, rate = read_wav(client.audio.speech.create(model="test-org/tiny-speecht5", voice="default",
                                                            input="Hi", response_format="wav").content)
        assert rate == 16000 and samples.size > 0 and np.abs(samples).max() > 0
    finally:
        server.stop()
    assert "text-to-audio" in server.log()
