"""Video content parts: encoded bytes -> sampled RGB frames, with PyAV (FFmpeg's demuxers and decoders).

Frame sampling (README, "Video input"): frames are taken at `fps` frames per second of video time
(the first frame, then one each 1/fps seconds); when the video is long enough that this would give
more than `max_frames`, the interval widens so that `max_frames` frames spread evenly over the
whole duration. A stream that does not state its duration is sampled at `fps` and cut after
`max_frames` frames. The frames come back as one uint8 RGB array [N, H, W, 3] (NHWC), the layout
OpenVINO GenAI's `videos` argument takes; GenAI resizes them as the model's processor says.

PyAV is the `media` extra (`pip install genai-gateway[media]`); without it a video part is a 400.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidRequest


@dataclass(frozen=True)
class FramePolicy:
    """How many frames a video gives (the `serve` flags `--video_fps`, `--max_video_frames`)."""

    fps: float = 2.0
    max_frames: int = 16
    max_pixels: int = 4096 * 4096  # per frame, width x height


@dataclass(frozen=True)
class SampledVideo:
    """The frames taken from one video, [N, H, W, 3] uint8 RGB, and how many were taken per second."""

    frames: np.ndarray
    fps: float


def decode_video(data: bytes, param: str, policy: FramePolicy) -> SampledVideo:
    """Sampled frames of the first video stream in `data`; a 400 naming `param` when it is empty, not a
    video PyAV can decode, or its frames are larger than the pixel cap."""
    try:
        import av
    except ImportError as exc:
        raise InvalidRequest(f"{param}: video input needs PyAV on the server (pip install 'genai-gateway[media]')",
                             param) from exc
    if not data:
        raise InvalidRequest(f"{param} is empty", param)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise InvalidRequest(f"{param} has no video stream", param)
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > policy.max_pixels:
                raise InvalidRequest(f"{param} frames are {width}x{height} = {width * height} pixels, more than "
                                     f"the limit of {policy.max_pixels} pixels", param)
            interval = _interval(container, stream, policy)
            frames = _sample(container.decode(stream), interval, policy, param)
    except InvalidRequest:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise InvalidRequest(f"{param} is not a video file that can be decoded ({type(exc).__name__})", param) from exc
    if not frames:
        raise InvalidRequest(f"{param} has no decodable frames", param)
    return SampledVideo(np.stack(frames), 1.0 / interval)


def _interval(container: Any, stream: Any, policy: FramePolicy) -> float:
    """Seconds between sampled frames: 1/fps, widened so that a known duration gives at most max_frames."""
    interval = 1.0 / policy.fps
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # container durations are in microseconds (AV_TIME_BASE)
    if duration and duration / interval > policy.max_frames:
        interval = duration / policy.max_frames
    return interval


def _sample(decoded: Any, interval: float, policy: FramePolicy, param: str) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    next_time: float | None = None
    for index, frame in enumerate(decoded):
        if frame.width * frame.height > policy.max_pixels:  # a stream may change size mid-way
            raise InvalidRequest(f"{param} has a frame of {frame.width}x{frame.height} pixels, more than the "
                                 f"limit of {policy.max_pixels} pixels", param)
        time = frame.time if frame.time is not None else index * interval
        if next_time is None:
            next_time = time
        if time + 1e-6 >= next_time:
            frames.append(frame.to_ndarray(format="rgb24"))
            next_time += interval
            if len(frames) >= policy.max_frames:
                break
    return frames
