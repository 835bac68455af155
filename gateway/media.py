"""Image and video content parts of chat and Responses requests: where media may come from, and their limits.

An image or video part names its source by URL:
- `data:image/...;base64,...` (`data:video/...` for videos): always accepted;
- `http://` / `https://`: only from hosts listed in `--allowed_media_domains` (off by default),
  fetched with a timeout and a byte cap; a redirect is followed only to the same host;
- `file://...` or a path: only under `--allowed_local_media_path` (no `..`, no symlink that leaves it).
The bytes are decoded by Pillow (PNG, JPEG, WebP, GIF first frame) with a pixel cap read from the
header, so decompression bombs are refused before they expand; videos by PyAV, frames sampled as
`servables/video_io.py` says. Every refusal is a 400 naming the part (`messages[0].content[1]`,
`input[0].content[2]`).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import numpy as np

from servables.errors import InvalidRequest
from servables.image_io import ImageItem, decode_chat_image
from servables.video_io import FramePolicy, SampledVideo, decode_video

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class MediaPolicy:
    """The `serve` flags that govern image input (defaults match the CLI)."""

    allowed_domains: frozenset[str] = field(default_factory=frozenset)  # lower-case host names
    allowed_local_path: Path | None = None
    max_images: int = 8  # per request
    max_image_bytes: int = 20 * 2**20  # per image, encoded
    max_image_pixels: int = 4096 * 4096  # per image, width x height
    fetch_timeout: float = 10.0  # seconds, per remote image or video
    max_videos: int = 2  # per request
    max_video_bytes: int = 50 * 2**20  # per video, encoded
    frames: FramePolicy = field(default_factory=FramePolicy)  # frame sampling of videos

    def max_bytes(self, kind: str) -> int:
        return self.max_video_bytes if kind == "video" else self.max_image_bytes


async def resolve_media(messages: Sequence[dict[str, Any]], policy: MediaPolicy, accepts_images: bool,
                        accepts_video: bool, model: str
                        ) -> tuple[list[dict[str, Any]], list[np.ndarray], list[SampledVideo]]:
    """Fetch and decode the image and video parts (`{"type": "image" | "video", "url", "param"}`) of
    `messages`, in order.

    Returns the messages with each such part reduced to `{"type": "image"}` / `{"type": "video"}`,
    the images as RGB arrays [H, W, 3] and the videos as sampled RGB frames [N, H, W, 3] with their rate.
    """
    images: list[np.ndarray] = []
    videos: list[SampledVideo] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            out.append(message)
            continue
        parts = []
        for part in content:
            kind = part.get("type")
            if kind not in ("image", "video"):
                parts.append(part)
                continue
            param = part["param"]
            if kind == "image":
                if not accepts_images:
                    raise InvalidRequest(f"Model {model} does not accept images ({param})", param)
                if len(images) >= policy.max_images:
                    raise InvalidRequest(f"{param}: more than {policy.max_images} images in one request", param)
                data = await fetch_bytes(part["url"], param, policy)
                images.append(await asyncio.to_thread(decode_chat_image, data, param, policy.max_image_pixels))
            else:
                if not accepts_video:
                    raise InvalidRequest(f"Model {model} does not accept video ({param})", param)
                if len(videos) >= policy.max_videos:
                    raise InvalidRequest(f"{param}: more than {policy.max_videos} videos in one request", param)
                data = await fetch_bytes(part["url"], param, policy, "video")
                videos.append(await asyncio.to_thread(decode_video, data, param, policy.frames))
            parts.append({"type": kind})
        out.append({**message, "content": parts})
    return out, images, videos


async def resolve_images(messages: Sequence[dict[str, Any]], policy: MediaPolicy, accepts_images: bool,
                         model: str) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """`resolve_media` for request shapes that carry no video parts (Anthropic Messages)."""
    out, images, _videos = await resolve_media(messages, policy, accepts_images, False, model)
    return out, images


async def fetch_bytes(url: str, param: str, policy: MediaPolicy, kind: str = "image") -> bytes:
    """The encoded image (or video) behind `url`, within the policy's sources and byte cap."""
    if url.startswith("data:"):
        return _data_url(url, param, policy.max_bytes(kind), kind)
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return await _remote(url, param, policy, kind)
    if scheme == "file" or (not scheme and url):
        return await asyncio.to_thread(_local, url, param, policy, kind)
    raise InvalidRequest(f"{param}: unsupported {kind} URL scheme {scheme!r}; use data:, http(s): or file:", param)


def _data_url(url: str, param: str, max_bytes: int, kind: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma:
        raise InvalidRequest(f"{param}: malformed data URL (no comma)", param)
    media_type, *attributes = header[len("data:"):].split(";")
    if not media_type.lower().startswith(f"{kind}/"):
        raise InvalidRequest(f"{param}: data URL media type must be {kind}/*, got {media_type or 'none'!r}", param)
    if "base64" not in attributes:
        raise InvalidRequest(f"{param}: data URL must be base64-encoded", param)
    payload = payload.strip()
    if len(payload) // 4 * 3 > max_bytes:
        raise InvalidRequest(f"{param}: {kind} is larger than {max_bytes} bytes", param)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{param}: data URL is not valid base64", param) from exc


async def _remote(url: str, param: str, policy: MediaPolicy, kind: str) -> bytes:
    host = (urlsplit(url).hostname or "").lower()
    if host not in policy.allowed_domains:
        raise InvalidRequest(f"{param}: fetching {kind}s from {host or 'this URL'} is not allowed "
                             "(the server's --allowed_media_domains does not list it)", param)
    try:
        async with httpx.AsyncClient(follow_redirects=False, timeout=policy.fetch_timeout) as client:
            for _ in range(MAX_REDIRECTS + 1):
                async with client.stream("GET", url) as response:
                    if response.is_redirect:
                        target = urljoin(url, response.headers.get("location", ""))
                        if (urlsplit(target).hostname or "").lower() != host:
                            raise InvalidRequest(f"{param}: the {kind} URL redirects to another host, which is "
                                                 "not followed", param)
                        url = target
                        continue
                    if response.status_code != 200:
                        raise InvalidRequest(f"{param}: fetching the {kind} answered HTTP "
                                             f"{response.status_code}", param)
                    return await _capped_body(response, param, policy.max_bytes(kind), kind)
    except httpx.TimeoutException as exc:
        raise InvalidRequest(f"{param}: fetching the {kind} timed out after {policy.fetch_timeout:g} s",
                             param) from exc
    except httpx.HTTPError as exc:
        raise InvalidRequest(f"{param}: fetching the {kind} failed: {type(exc).__name__}", param) from exc
    raise InvalidRequest(f"{param}: the {kind} URL redirects more than {MAX_REDIRECTS} times", param)


async def _capped_body(response: httpx.Response, param: str, max_bytes: int, kind: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise InvalidRequest(f"{param}: {kind} is larger than {max_bytes} bytes", param)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise InvalidRequest(f"{param}: {kind} is larger than {max_bytes} bytes", param)
    return bytes(body)


def _local(url: str, param: str, policy: MediaPolicy, kind: str) -> bytes:
    root = policy.allowed_local_path
    if root is None:
        raise InvalidRequest(f"{param}: local {kind} files are not allowed (the server has no "
                             "--allowed_local_media_path)", param)
    raw = unquote(urlsplit(url).path) if url.lower().startswith("file:") else url
    path = Path(raw)
    if ".." in path.parts:
        raise InvalidRequest(f"{param}: {kind} paths must not contain '..'", param)
    root = root.resolve()
    if not (root / path).is_relative_to(root):
        raise InvalidRequest(f"{param}: {kind} path is outside the allowed folder", param)
    try:
        resolved = (root / path).resolve(strict=True)  # an absolute `path` replaces root here
    except (OSError, RuntimeError) as exc:
        raise InvalidRequest(f"{param}: no such {kind} file", param) from exc
    if not resolved.is_relative_to(root):  # also catches symlinks that point outside
        raise InvalidRequest(f"{param}: {kind} path is outside the allowed folder", param)
    if not resolved.is_file():
        raise InvalidRequest(f"{param}: not a file", param)
    if resolved.stat().st_size > policy.max_bytes(kind):
        raise InvalidRequest(f"{param}: {kind} is larger than {policy.max_bytes(kind)} bytes", param)
    return resolved.read_bytes()


def policy_of(app_state: Any) -> MediaPolicy:
    """The server's media policy (`create_app` stores it; defaults when absent)."""
    return getattr(app_state, "media_policy", None) or MediaPolicy()


async def resolve_embedding_images(inputs: Sequence[Any], policy: MediaPolicy, servable: Any,
                                   model: str) -> list[Any]:
    """`/embeddings` inputs: `{"image", "text"}` items become the servable's image items (a text-only
    item becomes its string); strings and token ids pass through."""
    out: list[Any] = []
    count = 0
    for index, item in enumerate(inputs):
        image = getattr(item, "image", None)
        if not hasattr(item, "image"):
            out.append(item)
            continue
        text = item.text or ""
        if image is None:
            if not text:
                raise InvalidRequest(f"input[{index}] needs an image or a text", f"input[{index}]")
            out.append(text)
            continue
        param = f"input[{index}].image"
        if not getattr(servable, "accepts_images", False):
            raise InvalidRequest(f"Model {model} does not accept images ({param})", param)
        count += 1
        if count > policy.max_images:
            raise InvalidRequest(f"{param}: more than {policy.max_images} images in one request", param)
        pixels = await asyncio.to_thread(decode_chat_image, await fetch_bytes(image, param, policy), param,
                                         policy.max_image_pixels)
        out.append(ImageItem(pixels, text))
    return out
