"""Binary (encoded image) inputs of classic models (OVMS docs/binary_input.md).

A `BYTES` tensor sent to a 4-D numeric input holds one encoded image (JPEG, PNG, anything Pillow
reads) per batch element. Each is decoded to uint8 pixels, 1 channel as grayscale and 3 as RGB,
resized (bilinear) when the input has a static height and width that differ, stacked into a batch
in the input's layout (NHWC unless its `layout` says NCHW, or, without a layout, when only the
second dimension can be the channels), and converted to the input's datatype (pixel values 0-255).
Limits: `max_image_size` (per side, default 4096) before decoding, read from the file header.
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidRequest
from .image_io import decode_pixels, resize_pixels

DEFAULT_MAX_IMAGE_SIZE = 4096


def is_encoded_images(array: np.ndarray, datatype: str, shape: list[int]) -> bool:
    """BYTES data for a 4-D numeric input."""
    return array.dtype.kind in ("S", "O") and datatype != "BYTES" and len(shape) == 4


def channels_first(shape: list[int], layout: str | None) -> bool:
    if layout:
        return layout.upper().startswith("NC")
    return shape[3] not in (1, 3) and shape[1] in (1, 3)


def decode_batch(name: str, array: np.ndarray, datatype: str, shape: list[int], layout: str | None,
                 dtype: np.dtype, max_size: int) -> np.ndarray:
    """The encoded images of `array` as one numeric batch shaped for the input."""
    first = channels_first(shape, layout)
    channels, height, width = (shape[1], shape[2], shape[3]) if first else (shape[3], shape[1], shape[2])
    if channels not in (1, 3, -1):
        raise InvalidRequest(f"Input {name!r}: binary images need 1 or 3 channels; the input has {channels}", name)
    items = [item if isinstance(item, bytes) else str(item).encode() for item in array.reshape(-1)]
    if not items:
        raise InvalidRequest(f"Input {name!r}: no images", name)
    if shape[0] not in (-1, len(items)):
        raise InvalidRequest(f"Input {name!r}: {len(items)} images for a batch of {shape[0]}", name)
    images = []
    for index, data in enumerate(items):
        pixels = decode_pixels(data, f"{name}[{index}]", (max_size, max_size), 1 if channels == 1 else 3)
        if height > 0 and width > 0:
            pixels = resize_pixels(pixels, width, height)
        images.append(pixels)
    if len({image.shape for image in images}) != 1:
        raise InvalidRequest(f"Input {name!r}: images of different sizes {sorted({i.shape[:2] for i in images})} "
                             "for an input with dynamic height/width", name)
    batch = np.stack(images)
    if first:
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch.astype(dtype))
