"""Measurements on 2D images: an ROI on a PNG without a pixel size reads px² (an area, not a
length), and an ROI on a colour ultrasound reads the luminance's statistics and says so."""
import numpy as np
import pytest

from core.measurements import MEASUREMENT_COLUMNS, Measurement, luminance, measurements_csv, row, text, values
from core.volume import Volume


def _ellipse(cx=20.0, cy=15.0, a=6.0, b=4.0) -> Measurement:
    return Measurement("ellipse", ((cx, cy, 0.0), (cx + a, cy, 0.0), (cx, cy + b, 0.0)))


def test_an_roi_without_a_pixel_size_reads_square_pixels():
    png = Volume.from_array(np.full((30, 40), 90, np.uint8), spacing_known=False)
    first = text(_ellipse(), values(_ellipse(), png)).split("\n")[0]
    assert first == f"{np.pi * 24:.0f} px²"
    ruler = Measurement("ruler", ((0, 0, 0), (3, 4, 0)))
    assert text(ruler, values(ruler, png)) == "5.0 px"  # a length stays in px


def test_an_roi_on_a_colour_ultrasound_reads_the_luminance():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    us = Volume.from_array(rgb[np.newaxis], spacing=(0.5, 0.5, 1.0), modality="US")
    assert us.is_color
    m = _ellipse(10.0, 7.5, 3.0, 2.0)  # mm: the same pixels as below
    v = values(m, us)
    yy, xx = np.mgrid[0:30, 0:40]
    inside = ((xx - 20) / 6.0) ** 2 + ((yy - 15) / 4.0) ** 2 <= 1
    y = rgb[inside].astype(float) @ [0.299, 0.587, 0.114]
    assert v["voxels"] == inside.sum() and v["of"] == "luminance"
    assert v["mean"] == pytest.approx(y.mean()) and v["sd"] == pytest.approx(y.std())
    assert (v["min"], v["max"]) == pytest.approx((y.min(), y.max()))
    shown = text(m, v)
    assert "luminance mean" in shown and f"{y.mean():.1f} ± {y.std():.1f}" in shown
    # a grey pixel's luminance is its grey value: RGB of a B-mode image reads as the grey one did
    assert luminance(np.array([[77, 77, 77, 255]], np.uint8)) == pytest.approx([77.0])
    csv = measurements_csv([row(m, us)])
    assert "of" in MEASUREMENT_COLUMNS and ",luminance," in csv.splitlines()[1]
