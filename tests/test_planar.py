"""2D images and cine loops without a window: what the readers say the file does not give (pixel
size, orientation), the frame rate, areas instead of volumes, pixels instead of mm, cine steps."""
import numpy as np
import pydicom
import pytest
from PIL import Image

from core.cine import DEFAULT_FPS, Cine
from core.labels import LabelMap, LabelTable
from core.measurements import Measurement, text, values
from core.planar import area_text, plane_view, segment_sizes, size_heading
from core.statistics import segment_statistics
from core.volume import Volume
from export.keyimages import key_images
from export.report import _table_rows
from formats import samples
from formats.dicom.load import _frame_time_ms
from formats.io import read_image, write_image


def _png(path, **kw):
    Image.fromarray(np.full((30, 40), 90, np.uint8)).save(path, **kw)
    return read_image(path)


def test_png_spacing_known_only_from_a_real_resolution(tmp_path):
    v = _png(tmp_path / "a.png", dpi=(254, 254))
    assert v.spacing_known and not v.orientation_known and np.allclose(v.spacing[:2], 0.1)
    v = _png(tmp_path / "b.png")
    assert not v.spacing_known and not v.orientation_known and np.allclose(v.spacing, 1.0)
    v = _png(tmp_path / "c.png", dpi=(72, 72))  # what Qt and editors write: a screen's, not a measurement
    assert not v.spacing_known
    write_image(v, tmp_path / "d.png")  # our own PNG keeps saying what the original did not know
    again = read_image(tmp_path / "d.png")
    assert not again.spacing_known and not again.orientation_known
    ct = Volume.from_array(np.zeros((1, 8, 8), np.uint16), spacing=(0.5, 0.5, 2), modality="CT")
    write_image(ct, tmp_path / "ct.png")
    back = read_image(tmp_path / "ct.png")
    assert back.spacing_known and back.orientation_known and np.allclose(back.spacing, (0.5, 0.5, 2))


def test_dicom_flags_and_frame_rate():
    us2 = read_image(samples.path("us-2frame"))
    assert us2.is_cine and us2.is_planar and us2.spacing_known and not us2.orientation_known
    assert us2.frame_time_ms is None and np.allclose(us2.spacing[:2], 0.2622878766, atol=1e-6)  # regions: cm -> mm
    one = read_image(samples.path("us-rgb"))  # no PixelSpacing, no ultrasound regions
    assert one.is_2d and not one.is_cine and not one.spacing_known and not one.orientation_known
    ct = read_image(samples.path("ct-small"))
    assert ct.is_2d and ct.spacing_known and ct.orientation_known and plane_view(ct.geometry) == "axial"
    ct2 = read_image(samples.path("ct-enhanced"))  # frames with positions are slices, not a loop
    assert ct2.geometry.size[2] == 2 and not ct2.is_cine and not ct2.is_planar and ct2.orientation_known
    assert ct2.frame_time_ms is None


@pytest.mark.parametrize("tags, ms", [({"FrameTime": "40"}, 40.0), ({"CineRate": "20"}, 50.0),
                                      ({"RecommendedDisplayFrameRate": "10"}, 100.0),
                                      ({"FrameTime": "0", "CineRate": "25"}, 40.0),
                                      ({"FrameTime": "abc"}, None), ({"CineRate": "0"}, None), ({}, None)])
def test_frame_time_from_the_header(tags, ms):
    assert _frame_time_ms(tags) == (pytest.approx(ms) if ms else None)  # read with .get, as from a Dataset
    ds = pydicom.Dataset()
    for k, v in tags.items():
        if v.isdigit():
            setattr(ds, k, v)
    assert _frame_time_ms(ds) == (pytest.approx(ms) if ms else None) or "abc" in tags.values()


def test_cine_steps_loop_and_rate():
    c = Cine(3)
    assert c.fps == DEFAULT_FPS and c.interval_ms == 40
    assert [c.step(k) for k in range(3)] == [1, 2, 0] and c.step(0, -1) == 2
    c.loop = False
    assert c.step(2) is None and c.step(0, -1) is None and c.step(1) == 2
    c.set_fps(1000)
    assert c.fps == 120.0
    vol = Volume.from_array(np.zeros((4, 5, 6), np.uint8), metadata={"frames_are_time": True}, frame_time_ms=20.0)
    assert Cine.for_volume(vol).fps == 50.0 and Cine.for_volume(vol).frames == 4


def _loop(spacing_known=True):
    return Volume.from_array(np.zeros((3, 10, 12), np.uint8), spacing=(0.5, 0.4, 1.0), modality="US",
                             metadata={"frames_are_time": True}, spacing_known=spacing_known, orientation_known=False)


def test_areas_not_volumes_on_planar_images():
    vol = _loop()
    lab = np.zeros((3, 10, 12), np.uint8)
    lab[0, :2, :5] = 1  # 10 pixels on frame 1
    lab[2, :5, :6] = 1  # 30 pixels on frame 3: the largest
    lm = LabelMap(lab, vol.geometry, LabelTable.from_names(["lesion", "empty"]))
    row, empty = segment_statistics(vol, lm)
    assert row["volume_ml"] is None and row["area_px"] == 30 and row["area_frame"] == 3
    assert row["area_mm2"] == pytest.approx(30 * 0.2)
    assert empty["area_px"] == 0 and empty.get("area_frame") is None
    assert segment_sizes(vol, lab, [1, 2], frame=0) == {1: "2.0 mm²", 2: "0.0 mm²"}
    assert area_text(1000, vol) == "2.00 cm²" and size_heading(vol) == "Area (frame 1)"
    assert size_heading(vol, 2) == "Area (frame 3)"  # a loop's area is the shown frame's: the heading says which
    one = Volume.from_array(np.zeros((1, 10, 12), np.uint8), spacing=(0.5, 0.4, 1.0), orientation_known=False)
    assert one.is_planar and size_heading(one) == "Area"  # one frame: nothing to name
    head, rows = _table_rows([row, empty])
    assert head[1] == "Area (mm²)" and rows[0][1] == "6.0"
    px = _loop(spacing_known=False)
    row = segment_statistics(px, LabelMap(lab, px.geometry, LabelTable.from_names(["lesion"])))[0]
    assert row["area_mm2"] is None and row["area_px"] == 30
    assert _table_rows([row])[0][1] == "Area (px²)" and segment_sizes(px, lab, [1], 2) == {1: "30 px²"}
    assert size_heading(px, 1) == "Area (px², frame 2)"
    # a 3D image without a pixel size: voxel counts, no ml
    vol3 = Volume.from_array(np.zeros((3, 10, 12), np.uint8), spacing_known=False)
    row = segment_statistics(vol3, LabelMap(lab, vol3.geometry, LabelTable.from_names(["lesion"])))[0]
    assert row["volume_ml"] is None and row["area_px"] is None and _table_rows([row])[0][1] == "Voxels"
    assert size_heading(vol3) == "Voxels" and segment_sizes(vol3, lab, [1]) == {1: "40"}


def test_measurements_read_pixels_when_the_pixel_size_is_unknown():
    px = _loop(spacing_known=False)
    ruler = Measurement("ruler", ((0, 0, 0), (3, 4, 0)))
    assert text(ruler, values(ruler, px)) == "5.0 px" and text(ruler, values(ruler)) == "5.0 mm"
    ellipse = Measurement("ellipse", ((5, 5, 0), (8, 5, 0), (5, 7, 0)))
    assert text(ellipse, values(ellipse, px)).startswith("19 px")


def test_key_image_of_a_loop_is_its_frame_without_patient_letters():
    vol = _loop()
    lab = np.zeros((3, 10, 12), np.uint8)
    lab[2, 2:5, 3:6] = 1
    (img,) = key_images(vol, LabelMap(lab, vol.geometry, LabelTable.from_names(["lesion"])))
    assert img.view == "axial" and img.slice_index == 2 and img.letters == ("", "", "", "")
    assert img.rgb.shape[:2] == (10, 12)


def test_store_keeps_what_the_file_did_not_say(tmp_path):
    from store.corrections import CorrectionsStore

    vol = _loop(spacing_known=False)
    vol.frame_time_ms = 40.0
    lab = LabelMap(np.zeros((3, 10, 12), np.uint8), vol.geometry, LabelTable.from_names(["lesion"]))
    with CorrectionsStore(tmp_path / "store") as store:
        case_id, _n = store.save(vol, lab, lab, state="in_review")
        image, _ai, _fixed = store.load(case_id)
    assert image.is_cine and not image.spacing_known and not image.orientation_known
    assert image.frame_time_ms == 40.0


def test_the_guard_says_when_the_file_gives_no_pixel_size():
    from app.actions import guard
    from inference.registry import Registry

    card = Registry().get("us-lesion-2d")
    img = Volume.from_array(np.full((1, 64, 64), 80, np.uint8), modality="US", spacing_known=False)
    assert any("gives no pixel size" in w and "0.3 mm pixels" in w for w in guard.check_image(img, card))
    img.spacing_known = True
    assert not any("pixel size" in w for w in guard.check_image(img, card))


def test_report_of_a_loop_gives_frames_areas_and_no_orientation():
    from matplotlib.text import Text

    from export.report import ReportInfo, report_figures

    vol = _loop()
    lab = np.zeros((3, 10, 12), np.uint8)
    lab[2, :5, :6] = 1
    lm = LabelMap(lab, vol.geometry, LabelTable.from_names(["lesion"]))
    figs = report_figures(ReportInfo(), vol, lm, segment_statistics(vol, lm))
    text = "\n".join(t.get_text() for fig in figs for t in fig.findobj(Text))
    assert "12×10 pixels, 3 frames" in text and "orientation not given" in text and "0.5 × 0.4 mm" in text
    assert "frame 3" in text and "slice" not in text  # the key image is the lesion's largest frame


def test_size_text_of_an_object():
    from core.planar import size_text

    assert size_text(30, _loop()) == "6.0 mm²" and size_text(30, _loop(spacing_known=False)) == "30 px²"
    vol3 = Volume.from_array(np.zeros((2, 3, 4), np.uint8), spacing=(1, 1, 2))
    assert size_text(500, vol3) == "1.00 ml"
    vol3.spacing_known = False
    assert size_text(500, vol3) == "500 voxels"


def test_a_coronal_slice_is_shown_in_the_coronal_view():
    from core.display import DisplayGrid
    from core.planar import plane_name

    # index axes: i -> L, j -> S (rows), k -> A (one slice): a coronal image of a CT
    direction = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)
    vol = Volume.from_array(np.zeros((1, 20, 30), np.int16), spacing=(0.7, 0.7, 3), direction=direction)
    assert vol.is_2d and plane_view(vol.geometry) == "coronal" and plane_name(vol) == "Image (coronal)"
    grid = DisplayGrid.for_geometry(vol.geometry)
    assert grid.n_slices("coronal") == 1 and grid.n_slices("axial") == 20
