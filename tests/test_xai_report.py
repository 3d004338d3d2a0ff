"""The report can show a chosen explanation view with its colour bar, range and meaning."""
import numpy as np

from core.labels import LabelMap, LabelTable, Label
from core.overlay import HeatMap
from core.volume import Volume
from export.heat_image import ExplanationView, heat_key_image
from export.report import ReportInfo, render_report


def _case():
    z, y, x = np.mgrid[:20, :48, :48]
    vol = Volume.from_array((100 * ((x - 24) ** 2 + (y - 24) ** 2 < 300)).astype(np.float32), spacing=(1, 1, 2),
                            modality="MR")
    lm = LabelMap(((x - 24) ** 2 + (y - 24) ** 2 < 100).astype(np.uint8), vol.geometry,
                  LabelTable((Label(1, "Lesion", (60, 120, 255)),)))
    blob = np.exp(-((x - 30) ** 2 + (y - 20) ** 2 + (z - 12) ** 2) / 30.0).astype(np.float32)
    heat = HeatMap.from_values("Grad-CAM (Lesion)", blob, vol.geometry, vmin=0.0, vmax=1.0, threshold=0.1,
                               meaning="Where the network's features raised the label's score.")
    return vol, lm, heat


def _warm(rgb):
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((r > 180) & (b < 120) & (r - b > 80)).sum())  # inferno's orange-yellow end


def test_explanation_view_lies_on_the_maps_peak_in_patient_orientation():
    vol, _lm, heat = _case()
    img = heat_key_image(vol, ExplanationView(heat, "axial"))
    assert img.slice_index == 12 and img.view == "axial" and _warm(img.rgb) > 10
    world = vol.geometry.index_to_world([5, 5, 2])  # a plane far from the blob: nothing shown
    assert _warm(heat_key_image(vol, ExplanationView(heat, "axial", world)).rgb) == 0


def test_report_with_the_explanation_view_and_its_colour_bar(tmp_path):
    from matplotlib.image import imread

    vol, lm, heat = _case()
    plain = render_report(ReportInfo(), vol, lm, [], tmp_path / "plain.png", dpi=60)
    explained = render_report(ReportInfo(explanation=ExplanationView(heat, "coronal")), vol, lm, [],
                              tmp_path / "explained.png", dpi=60)
    a, b = (np.round(imread(p)[..., :3] * 255).astype(np.uint8) for p in (plain, explained))
    assert _warm(b) > _warm(a) + 50  # the map and its bar
    # the colour bar: a tall strip of many distinct colours in the right half of the image block
    height, width = b.shape[:2]
    strip = b[:, int(0.47 * width) + 2]
    assert len({tuple(p) for p in strip}) > 40
