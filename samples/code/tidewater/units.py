"""Unit conversions used by the command line."""

FEET_PER_METRE = 3.28084


def to_feet(metres: float) -> float:
    return round(metres * FEET_PER_METRE, 2)


def format_height(metres: float, unit: str = "m") -> str:
    if unit == "m":
        return f"{metres:.2f} m"
    if unit == "ft":
        return f"{to_feet(metres):.2f} ft"
    raise ValueError(f"unit must be 'm' or 'ft', not {unit!r}")
