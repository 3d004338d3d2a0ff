"""The statistics export of a 2D image gives areas only, for the corrected mask and for the AI's
draft alike (a flat image has no volume); a 3D image keeps ml for both."""
import csv
import io

import numpy as np
import pytest

from core.labels import LabelMap, LabelTable
from core.statistics import segment_statistics
from core.volume import Volume, luminance
from export.case import statistics_text


def _planar(spacing_known=True):
    vol = Volume.from_array(np.full((1, 40, 50), 90, np.uint8), spacing=(0.2, 0.2, 1.0), modality="US",
                            spacing_known=spacing_known)
    table = LabelTable.from_names(["Lesion", "Segment 2"])
    ai = np.zeros((1, 40, 50), np.uint8)
    ai[0, 5:15, 5:20] = 1  # 150 px in the draft
    fixed = ai.copy()
    fixed[0, 5:15, 20:25] = 1  # the reviewer grew it to 200 px
    fixed[0, 30:34, 30:35] = 2  # and added a segment the draft never had: 20 px
    return vol, LabelMap(fixed, vol.geometry, table), LabelMap(ai, vol.geometry, table)


def _csv_rows(rows):
    return list(csv.DictReader(io.StringIO(statistics_text(rows, ".csv"))))


def test_a_2d_image_has_areas_for_the_mask_and_the_draft_and_no_volume():
    vol, fixed, ai = _planar()
    lesion, added = segment_statistics(vol, fixed, ai)
    assert lesion["area_px"] == 200 and lesion["area_mm2"] == pytest.approx(8.0)
    assert lesion["ai_area_px"] == 150 and lesion["ai_area_mm2"] == pytest.approx(6.0)
    assert added["added_by_reviewer"] and added["ai_area_px"] == 0 and added["ai_area_mm2"] == 0
    for row in _csv_rows([lesion, added]):
        assert row["volume_ml"] == "" and row["ai_volume_ml"] == ""
    px_vol, px_fixed, px_ai = _planar(spacing_known=False)
    row = segment_statistics(px_vol, px_fixed, px_ai)[0]
    assert (row["area_px"], row["ai_area_px"]) == (200, 150)
    assert row["area_mm2"] is None and row["ai_area_mm2"] is None and row["ai_volume_ml"] is None


def test_a_volume_keeps_ml_for_the_mask_and_the_draft():
    vol = Volume.from_array(np.zeros((4, 10, 10), np.int16), spacing=(1.0, 1.0, 2.0), modality="CT")
    ai = np.zeros((4, 10, 10), np.uint8)
    ai[1:3, 2:7, 2:7] = 1  # 50 voxels of 2 mm³
    fixed = ai.copy()
    fixed[3, 2:7, 2:7] = 1
    table = LabelTable.from_names(["liver"])
    (row,) = segment_statistics(vol, LabelMap(fixed, vol.geometry, table), LabelMap(ai, vol.geometry, table))
    assert row["volume_ml"] == pytest.approx(0.15) and row["ai_volume_ml"] == pytest.approx(0.1)
    assert row["ai_voxels"] == 50 and row["area_px"] is None and row["ai_area_px"] is None


def test_a_colour_image_reads_the_luminance_of_each_segment():
    """A colour image (H&E tile, colour Doppler frame) gets its segments' mean, SD, min and max of
    the luminance, as its ROI statistics do, instead of no intensity columns at all."""
    rgb = np.zeros((1, 20, 30, 3), np.uint8)
    rgb[0, :, :15] = (200, 40, 120)  # a pink stain on the left half
    rgb[0, :, 15:] = (20, 20, 220)   # blue on the right
    vol = Volume.from_array(rgb, spacing=(0.5, 0.5, 1.0), modality="SM")
    assert vol.is_color
    arr = np.zeros((1, 20, 30), np.uint8)
    arr[0, 5:10, 5:25] = 1  # 50 px on each colour
    (row,) = segment_statistics(vol, LabelMap(arr, vol.geometry, LabelTable.from_names(["region"])))
    pink, blue = luminance(np.array([200, 40, 120])), luminance(np.array([20, 20, 220]))
    assert row["unit"] == "luminance"
    assert row["mean"] == pytest.approx((pink + blue) / 2) and row["sd"] == pytest.approx(abs(pink - blue) / 2)
    assert (row["min"], row["max"]) == pytest.approx((min(pink, blue), max(pink, blue)))
