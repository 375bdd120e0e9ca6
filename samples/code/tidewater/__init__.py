"""tidewater: tide heights for the (fictional) harbours of the Kessel Sound."""

from .predict import high_waters, predict_height
from .tables import HARBOURS, Constituent, Harbour

__all__ = ["HARBOURS", "Constituent", "Harbour", "high_waters", "predict_height"]
__version__ = "0.3.1"
