"""Uploaded image bytes -> RGB arrays, and generated arrays -> PNG bytes (Pillow)."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InvalidRequest


def _open(data: bytes, param: str, max_size: tuple[int, int]) -> Image.Image:
    if not data:
        raise InvalidRequest(f"{param} is empty", param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size  # read from the header: nothing decoded yet
            if width > max_size[0] or height > max_size[1]:
                raise InvalidRequest(
                    f"{param} is {width}x{height}, larger than the maximum resolution "
                    f"{max_size[0]}x{max_size[1]}", param)
            image.load()
    except InvalidRequest:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidRequest(f"{param} is not an image file Pillow can read (PNG, JPEG, WebP ...)", param) from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise InvalidRequest(f"{param} is not a valid image: {exc}", param) from exc
    if width < 1 or height < 1:
        raise InvalidRequest(f"{param} has no pixels", param)
    return image


def decode_image(data: bytes, param: str, max_size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 array [H, W, 3]; transparency is flattened onto black."""
    return np.asarray(_open(data, param, max_size).convert("RGB"), dtype=np.uint8)


def decode_mask(data: bytes, param: str, max_size: tuple[int, int]) -> np.ndarray:
    """A mask as an RGB uint8 array [H, W, 3] where white marks the area to repaint.

    OpenAI's convention (a PNG whose fully transparent pixels mark the area to edit) is honoured
    when the mask has any transparent pixel; otherwise the luminance is used as is (the diffusers
    and OpenVINO GenAI convention: white = repaint).
    """
    image = _open(data, param, max_size)
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA"), dtype=np.uint8)[..., 3]
        if (alpha < 255).any():
            gray = np.where(alpha == 0, 255, 0).astype(np.uint8)
            return np.repeat(gray[..., None], 3, axis=2)
    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def encode_png(pixels: np.ndarray) -> bytes:
    """One generated image [H, W, 3] uint8 -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_pixels(data: bytes, param: str, max_size: tuple[int, int], channels: int) -> np.ndarray:
    """An uint8 array [H, W, channels] (1: grayscale, 3: RGB) of an encoded image (JPEG, PNG ...)."""
    image = _open(data, param, max_size).convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if channels == 1 else pixels


def resize_pixels(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an uint8 [H, W, C] array (C 1 or 3)."""
    if pixels.shape[0] == height and pixels.shape[1] == width:
        return pixels
    squeeze = pixels.shape[2] == 1
    image = Image.fromarray(pixels[..., 0] if squeeze else pixels)
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    return resized[..., None] if squeeze else resized


@dataclass
class ImageItem:
    """One embedding input: an image (RGB uint8 [H, W, 3]) with optional text."""

    image: np.ndarray
    text: str = ""


# Formats accepted as chat image input (Pillow names); GIF and animated WebP give their first frame.
CHAT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


def decode_chat_image(data: bytes, param: str, max_pixels: int) -> np.ndarray:
    """A chat image part's bytes -> an RGB uint8 array [H, W, 3] (first frame of an animation).

    The size is read from the header before anything is decoded, so a decompression bomb (a small
    file that expands to a huge bitmap) is refused without allocating it.
    """
    if not data:
        raise InvalidRequest(f"{param} is empty", param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=CHAT_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidRequest(f"{param} is {width}x{height} = {width * height} pixels, more than the "
                                     f"limit of {max_pixels} pixels", param)
            if width < 1 or height < 1:
                raise InvalidRequest(f"{param} has no pixels", param)
            image.seek(0)
            rgb = image.convert("RGB")  # transparency flattened onto black, palettes expanded
    except InvalidRequest:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidRequest(f"{param} is not a PNG, JPEG, WebP or GIF image", param) from exc
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise InvalidRequest(f"{param} is not a valid image: {exc}", param) from exc
    return np.asarray(rgb, dtype=np.uint8)
