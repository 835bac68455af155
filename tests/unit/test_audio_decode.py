"""Upload decoding without a server: which containers go to PyAV, what they decode to, and the 400s
(corrupt, no audio stream, past the duration limit) that name the field."""
from __future__ import annotations

import io

import numpy as np
import pytest

from servables import audio_av
from servables.audio_io import ASR_RATE, decode_speech, probe_seconds
from servables.errors import InvalidRequest
from tests.fixtures_audio import encode_with_av

av = pytest.importorskip("av")
RATE = 22050


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def mp4_with_video(audio: bool) -> bytes:
    """A second of 32x32 MPEG-4 video, with an AAC track when `audio`."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as target:
        video = target.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = target.add_stream("aac", rate=RATE, layout="mono") if audio else None
        for i in range(10):
            image = np.full((32, 32, 3), i * 20, dtype=np.uint8)
            target.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        target.mux(video.encode(None))
        if sound is not None:
            frame = av.AudioFrame.from_ndarray(tone(1.0).reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = RATE
            target.mux([*sound.encode(frame), *sound.encode(None)])
    return out.getvalue()


def test_only_mp4_and_matroska_magic_bytes_go_to_pyav():
    m4a = encode_with_av(tone(0.5), RATE, "ipod", "aac", RATE)
    webm = encode_with_av(tone(0.5), RATE, "webm", "libopus", 48000)
    assert audio_av.container_of(m4a) == "mp4" and audio_av.container_of(webm) == "matroska"
    for other in (b"RIFF....WAVEfmt ", b"fLaC\0\0\0\"", b"OggS\0\2", b"ID3\4\0\0", b"#EXTM3U\n", b""):
        assert audio_av.container_of(other) is None  # libsndfile's, or refused: never FFmpeg's probing


@pytest.mark.parametrize("container, codec, codec_rate", [("ipod", "aac", RATE), ("webm", "libopus", 48000),
                                                          ("matroska", "aac", RATE)])
def test_m4a_webm_and_mka_decode_to_16khz_mono_of_the_same_length(container, codec, codec_rate):
    data = encode_with_av(tone(1.5), RATE, container, codec, codec_rate)
    assert probe_seconds(data) == pytest.approx(1.5, abs=0.1)
    speech = decode_speech(data)
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert speech.size / ASR_RATE == pytest.approx(1.5, abs=0.1)
    assert 0.1 < np.abs(speech).max() <= 1.0


def test_the_sound_of_a_video_is_decoded_and_a_silent_video_is_400():
    speech = decode_speech(mp4_with_video(audio=True))
    assert speech.size / ASR_RATE == pytest.approx(1.0, abs=0.1)
    with pytest.raises(InvalidRequest, match="no audio stream") as err:
        probe_seconds(mp4_with_video(audio=False))
    assert err.value.param == "file"


def test_decoding_stops_at_the_duration_limit_when_the_header_declares_none():
    live = encode_with_av(tone(3.0), RATE, "webm", "libopus", 48000, {"live": "1"})
    assert probe_seconds(live) is None
    with pytest.raises(InvalidRequest, match="limit of 2") as err:
        decode_speech(live, "file", 2)
    assert err.value.param == "file"
    assert decode_speech(live, "file", 4).size / ASR_RATE == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("data", [b"\0\0\0\x1cftypM4A " + b"x" * 500, b"\x1a\x45\xdf\xa3" + b"\0" * 64])
def test_corrupt_containers_are_400_naming_file(data):
    with pytest.raises(InvalidRequest) as err:
        decode_speech(data, "file")
    assert err.value.param == "file"
