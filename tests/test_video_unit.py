"""Unit tests of the video helpers: frame sampling (servables/video_io.py), media tags, and the prompt
tokens an image or a video adds (servables/media_tokens.py, against counts OpenVINO GenAI reported)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from servables.errors import InvalidRequest
from servables.media_tokens import MediaTokens
from servables.video_io import FramePolicy, decode_video
from servables.vision import strip_image_tags, with_media_tags
from tests.fixtures_vlm import video_bytes

PARAM = "messages[0].content[1]"


@pytest.mark.parametrize("policy, frames, fps", [
    (FramePolicy(fps=2), 4, 2.0),  # 10 frames at 5 fps = 2 s: one frame each 0.5 s
    (FramePolicy(fps=1), 2, 1.0),
    (FramePolicy(fps=100, max_frames=4), 4, 2.0),  # capped: spread over the 2 s
])
def test_frames_are_sampled_at_the_rate_and_capped(policy, frames, fps):
    video = decode_video(video_bytes(0, frames=10, fps=5), PARAM, policy)
    assert video.frames.shape == (frames, 48, 64, 3) and video.frames.dtype.name == "uint8"
    assert video.fps == pytest.approx(fps)


@pytest.mark.parametrize("data, says", [
    (b"", "is empty"),
    (b"\x00\x00\x00\x18ftypmp42" + b"x" * 300, "is not a video file that can be decoded"),
    (video_bytes(0)[:300], "is not a video file that can be decoded"),
])
def test_broken_videos_are_refusals_naming_the_part(data, says):
    with pytest.raises(InvalidRequest) as err:
        decode_video(data, PARAM, FramePolicy())
    assert err.value.param == PARAM and says in err.value.message


def test_frames_above_the_pixel_cap_are_refused():
    with pytest.raises(InvalidRequest) as err:
        decode_video(video_bytes(0), PARAM, FramePolicy(max_pixels=64 * 47))
    assert "64x48 = 3072 pixels" in err.value.message


def test_video_and_image_tags_count_separately():
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "and"}, {"type": "image"},
                                             {"type": "video"}]}]
    tagged, images, videos = with_media_tags(messages)
    assert tagged[0]["content"] == "<ov_genai_video_0>and<ov_genai_image_0><ov_genai_video_1>"
    assert (images, videos) == (1, 2)
    assert strip_image_tags(tagged[0]["content"], images, videos) == "and"


def model_dir(tmp_path: Path, config: dict, preprocessor: dict | None = None) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config))
    if preprocessor is not None:
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return tmp_path


def test_qwen2_vl_tokens_match_what_genai_counted(tmp_path):
    """The tiny test Qwen2-VL's processor (4..16 merged patches of 28 px); the expected numbers are the
    prompt-token differences GenAI's ContinuousBatchingPipeline reported for these inputs."""
    tokens = MediaTokens.of(model_dir(tmp_path, {"model_type": "qwen2_vl"}, {
        "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2,
        "size": {"shortest_edge": 3136, "longest_edge": 12544}}))
    assert [tokens.image(h, w) for h, w in [(40, 50), (300, 200), (1000, 1000)]] == [8, 14, 18]
    assert [tokens.video(n, h, w) for n, h, w in [(4, 300, 200), (5, 40, 50), (1, 1000, 1000), (16, 48, 64)]] \
        == [26, 20, 18, 34]
    assert tokens.count([(40, 50)], [(16, 48, 64)]) == 42


def test_llava_counts_its_fixed_image_tokens_and_unknown_models_none(tmp_path):
    llava = MediaTokens.of(model_dir(tmp_path, {"model_type": "llava", "image_seq_length": 16}))
    assert llava.image(40, 50) == llava.image(1000, 1000) == 17  # 16 patches and GenAI's newline
    assert llava.video(4, 40, 50) == 0
    other = MediaTokens.of(model_dir(tmp_path, {"model_type": "phi3_v"}))
    assert other.count([(40, 50)], [(4, 40, 50)]) == 0
