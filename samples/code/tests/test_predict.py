import pytest

from tidewater import Harbour, high_waters, predict_height


def test_height_at_epoch_is_mean_plus_constituents() -> None:
    h = Harbour.from_table("gull-point")
    assert predict_height(h, 0.0) == pytest.approx(3.05 + 2.02 * -0.5075 + 0.71 * -0.9135, abs=0.01)


def test_two_high_waters_a_day_at_port_anders() -> None:
    h = Harbour.from_table("port-anders")
    assert len(high_waters(h, 0.0, 24.0)) == 2


def test_negative_hours_are_rejected() -> None:
    with pytest.raises(ValueError):
        predict_height(Harbour.from_table("vellmar"), -1)
