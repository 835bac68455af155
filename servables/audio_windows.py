"""Cut long speech into windows the model can take (Whisper: 30 s), preferably where it is quiet."""
from __future__ import annotations

import numpy as np

FRAME = 1600  # 0.1 s at 16 kHz: the resolution at which cut points are chosen


def windows(samples: np.ndarray, rate: int, window_s: float = 30.0, search_s: float = 5.0) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering `samples`, each at most `window_s` long.

    A window longer than the rest ends at the quietest 0.1 s frame of its last `search_s` seconds,
    so that cuts fall between words rather than through them.
    """
    limit = int(window_s * rate)
    search = int(search_s * rate)
    spans: list[tuple[int, int]] = []
    start = 0
    while samples.size - start > limit:
        lo = start + limit - search
        region = samples[lo:start + limit]
        frames = region[: region.size // FRAME * FRAME].reshape(-1, FRAME)
        quietest = int(np.argmin((frames.astype(np.float64) ** 2).mean(axis=1)))
        end = lo + (quietest + 1) * FRAME
        spans.append((start, end))
        start = end
    spans.append((start, samples.size))
    return spans
