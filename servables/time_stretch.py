"""Change the tempo of speech without changing its pitch: WSOLA (waveform-similarity overlap-add).

Verhelst and Roelands, "An overlap-add technique based on waveform similarity (WSOLA) for high
quality time-scale modification of speech", ICASSP 1993. Frames of 30 ms are taken from the input
every `hop * speed` samples and overlap-added every `hop` samples; each frame is shifted by up to
`tolerance` samples to the position that best continues the previous one (cross-correlation), so
pitch periods line up and no phasing is heard.
"""
from __future__ import annotations

import numpy as np


def stretch(samples: np.ndarray, speed: float, rate: int) -> np.ndarray:
    """`samples` played `speed` times as fast (0.25 .. 4), same pitch; about len/speed samples long."""
    if speed == 1.0 or samples.size == 0:
        return samples
    frame = max(16, int(0.03 * rate))
    hop = frame // 2
    tolerance = frame // 4
    window = np.hanning(frame).astype(np.float32)
    target_len = int(round(samples.size / speed))
    padded = np.pad(samples.astype(np.float32), (tolerance, frame + 2 * tolerance + int(hop * speed)))
    frames = max(1, int(np.ceil(target_len / hop)))
    out = np.zeros(frames * hop + frame, dtype=np.float32)
    norm = np.zeros_like(out)
    start = 0  # input position (unpadded) of the previous frame
    for k in range(frames):
        nominal = int(k * hop * speed)
        if k:
            natural = padded[start + hop + tolerance:start + hop + tolerance + frame]  # what would continue it
            region = padded[nominal:nominal + frame + 2 * tolerance]  # candidates nominal-tol .. nominal+tol
            if region.size < frame + 2 * tolerance:
                break
            shift = int(np.argmax(np.correlate(region, natural, mode="valid"))) - tolerance
            start = max(0, nominal + shift)
        segment = padded[start + tolerance:start + tolerance + frame]
        if segment.size < frame:
            break
        out[k * hop:k * hop + frame] += segment * window
        norm[k * hop:k * hop + frame] += window
    out /= np.maximum(norm, 1e-3)
    return out[:target_len]
