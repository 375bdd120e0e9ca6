"""Harmonic constituents per harbour.

Each harbour has a mean sea level above chart datum and a few constituents: amplitude (m),
speed (degrees per hour) and phase lag (degrees). The numbers are invented for the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnknownHarbourError(KeyError):
    """Raised when a harbour name is not in HARBOURS."""


@dataclass(frozen=True)
class Constituent:
    name: str
    amplitude_m: float
    speed_deg_per_hour: float
    phase_deg: float


@dataclass(frozen=True)
class Harbour:
    name: str
    mean_level_m: float
    constituents: tuple[Constituent, ...] = field(default_factory=tuple)

    @classmethod
    def from_table(cls, key: str) -> Harbour:
        try:
            return HARBOURS[key]
        except KeyError:
            known = ", ".join(sorted(HARBOURS))
            raise UnknownHarbourError(f"unknown harbour {key!r}; known: {known}") from None


M2 = 28.9841042  # principal lunar semidiurnal
S2 = 30.0  # principal solar semidiurnal
K1 = 15.0410686  # lunisolar diurnal

HARBOURS: dict[str, Harbour] = {
    "port-anders": Harbour(
        "Port Anders",
        mean_level_m=2.41,
        constituents=(
            Constituent("M2", 1.62, M2, 112.0),
            Constituent("S2", 0.54, S2, 148.0),
            Constituent("K1", 0.11, K1, 201.0),
        ),
    ),
    "vellmar": Harbour(
        "Vellmar",
        mean_level_m=1.87,
        constituents=(
            Constituent("M2", 1.21, M2, 97.0),
            Constituent("S2", 0.39, S2, 131.0),
            Constituent("K1", 0.09, K1, 188.0),
        ),
    ),
    "gull-point": Harbour(
        "Gull Point",
        mean_level_m=3.05,
        constituents=(
            Constituent("M2", 2.02, M2, 120.5),
            Constituent("S2", 0.71, S2, 156.0),
        ),
    ),
}
