"""Tide prediction: the sum of cosine constituents around the mean level."""

from __future__ import annotations

import math

from .tables import Harbour

# Predictions further out than this drift too far from the (fictional) observations.
MAX_HOURS = 24 * 366


def predict_height(harbour: Harbour, hours: float) -> float:
    """Height above chart datum, in metres, `hours` after the harbour's reference epoch."""
    if not 0 <= hours <= MAX_HOURS:
        raise ValueError(f"hours must be between 0 and {MAX_HOURS}, got {hours}")
    height = harbour.mean_level_m
    for c in harbour.constituents:
        height += c.amplitude_m * math.cos(math.radians(c.speed_deg_per_hour * hours - c.phase_deg))
    return round(height, 3)


def high_waters(harbour: Harbour, start: float, end: float, step: float = 0.1) -> list[tuple[float, float]]:
    """Local maxima of the predicted height between `start` and `end` hours: (hour, height) pairs."""
    if step <= 0:
        raise ValueError("step must be positive")
    samples = []
    t = start
    while t <= end:
        samples.append((round(t, 3), predict_height(harbour, t)))
        t += step
    return [
        samples[i]
        for i in range(1, len(samples) - 1)
        if samples[i - 1][1] < samples[i][1] >= samples[i + 1][1]
    ]
