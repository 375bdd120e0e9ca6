"""`python -m tidewater.cli HARBOUR HOURS [--feet]`: print one predicted height."""

from __future__ import annotations

import argparse
import sys

from .predict import predict_height
from .tables import Harbour, UnknownHarbourError
from .units import format_height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tidewater")
    parser.add_argument("harbour", help="e.g. port-anders, vellmar, gull-point")
    parser.add_argument("hours", type=float, help="hours after the reference epoch")
    parser.add_argument("--feet", action="store_true", help="print feet instead of metres")
    args = parser.parse_args(argv)
    try:
        harbour = Harbour.from_table(args.harbour)
        height = predict_height(harbour, args.hours)
    except (UnknownHarbourError, ValueError) as exc:
        print(f"tidewater: {exc}", file=sys.stderr)
        return 2
    print(format_height(height, "ft" if args.feet else "m"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
