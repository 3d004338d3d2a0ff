"""Display grid (patient orientation), window presets, overlays and the viewer model, without Qt."""
import itertools

import numpy as np
import pytest

from core.display import DisplayGrid
from core.geometry import Geometry
from core.labels import Label, LabelMap, LabelTable
from core.overlay import HeatMap, label_lut, outline
from core.viewer_model import ViewerModel
from core.volume import Volume, WindowPreset
from core.windows import CT_PRESETS, dragged, presets_for
from tests.conftest import rotation


def _signed_permutations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            d = np.zeros((3, 3))
            for a, m in enumerate(perm):
                d[m, a] = signs[a]
            yield d


@pytest.mark.parametrize("direction", list(_signed_permutations()))
def test_permuted_volumes_show_in_lps_without_copying(direction):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 1000, size=(4, 5, 6)).astype(np.int16)
    geo = Geometry.for_array_shape(arr.shape, (0.5, 0.7, 2.0), (10.0, -3.0, 7.5), direction)
    dg = DisplayGrid.for_geometry(geo)
    disp = dg.to_display(arr)
    assert dg.is_view and np.shares_memory(disp, arr)
    assert np.allclose(dg.grid.direction, np.eye(3))
    for x, y, z in itertools.product(range(dg.grid.size[0]), range(dg.grid.size[1]), range(dg.grid.size[2])):
        world = dg.grid.index_to_world([x, y, z])
        i, j, k = np.rint(geo.world_to_index(world)).astype(int)
        assert disp[z, y, x] == arr[k, j, i]


def test_oblique_volume_is_resampled_in_patient_orientation():
    geo = Geometry((30, 28, 12), (1.0, 1.2, 2.5), (5.0, -4.0, 20.0), rotation(0.3, -0.2, 0.25))
    ijk = np.stack(np.meshgrid(np.arange(30), np.arange(28), np.arange(12), indexing="ij"), -1)
    world = geo.index_to_world(ijk)
    ramp = lambda w: 3.0 * w[..., 0] - 2.0 * w[..., 1] + 1.5 * w[..., 2]  # noqa: E731
    arr = np.transpose(ramp(world), (2, 1, 0)).astype(np.float32)
    dg = DisplayGrid.for_geometry(geo)
    assert not dg.is_view and geo.is_oblique()
    disp = dg.to_display(arr, order=1, fill=np.nan)
    zz, yy, xx = np.nonzero(np.isfinite(disp))
    assert len(zz) > 1000
    w = dg.grid.index_to_world(np.stack([xx, yy, zz], -1))
    inside = np.all((geo.world_to_index(w) > 0.5) & (geo.world_to_index(w) < np.array(geo.size) - 1.5), axis=1)
    np.testing.assert_allclose(disp[zz, yy, xx][inside], ramp(w)[inside], atol=1e-3)
    labels = dg.to_display((arr > 0).astype(np.uint8), order=0)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}


def test_view_planes_and_letters_follow_radiological_convention():
    arr = np.zeros((4, 5, 6), np.int16)
    dg = DisplayGrid.for_geometry(Geometry.for_array_shape(arr.shape, (0.5, 0.7, 2.0)))
    assert dg.take_slice(arr, "axial", 1).shape == (5, 6)
    assert dg.take_slice(arr, "coronal", 1).shape == (4, 6)
    assert dg.take_slice(arr, "sagittal", 1).shape == (4, 5)
    assert dg.plane_spacing("sagittal") == (2.0, 0.7)
    assert list(dg.plane_to_index("coronal", 3, row=2, col=1)) == [1, 3, 2]


def test_ct_presets_and_window_drag():
    ct = Volume.from_array(np.arange(-1000, 1000, dtype=np.int16).reshape(2, 10, 100), modality="CT",
                           window_presets=[WindowPreset("ABDOMEN", 40, 400)])
    names = [p.name for p in presets_for(ct)]
    assert names[0] == "From file (ABDOMEN)" and "Auto" in names and {p.name for p in CT_PRESETS} <= set(names)
    mr = Volume.from_array(np.arange(1000, dtype=np.float32).reshape(10, 10, 10), modality="MR")
    assert [p.name for p in presets_for(mr)] == ["Auto"]
    w = WindowPreset("x", 40, 400)
    wider = dragged(w, dx=50, dy=0, value_span=2000)
    assert wider.width > w.width and wider.center == w.center
    brighter = dragged(w, dx=0, dy=-50, value_span=2000)  # drag up
    assert brighter.center < w.center


def test_a_ct_without_a_window_in_its_file_opens_in_soft_tissue():
    """A CT from NIfTI (no window in the file) opens at abdomen W400/L40, as a PACS opens it, not at
    the percentile range that air makes ~1700 HU wide; a file's window still comes first, and MR
    keeps the percentile range. The report's key images use the same window."""
    from core.viewer_model import ViewerModel
    from export.keyimages import report_window

    a = np.full((8, 30, 30), -1000, np.int16)
    a[:, 5:25, 5:25] = 40
    a[:, 12:18, 12:18] = 700
    model = ViewerModel()
    for modality, presets, expect in (("CT", [], (40, 400)), ("CT", [WindowPreset("W", 50, 350)], (50, 350))):
        vol = Volume.from_array(a, modality=modality, window_presets=presets)
        model.set_volume(vol)
        assert (model.window.center, model.window.width) == expect == (report_window(vol).center, report_window(vol).width)
    mr = Volume.from_array(a.astype(np.float32) + 1000, modality="MR")
    model.set_volume(mr)
    assert model.window.name == "Auto" and model.window.width > 1000


def test_label_lut_outline_and_heat_map():
    table = LabelTable((Label(1, "a", (255, 0, 0)), Label(2, "b", (0, 255, 0))))
    lut = label_lut(table, hidden={2}, opacity=0.5)
    assert tuple(lut[1]) == (255, 0, 0, 128) and lut[2, 3] == 0 and lut[0, 3] == 0
    plane = np.zeros((6, 6), np.uint8)
    plane[1:5, 1:5] = 1
    ring = outline(plane)
    assert ring[1, 1] == 1 and ring[2, 2] == 0 and ring[0, 0] == 0
    geo = Geometry((4, 3, 2))
    values = np.linspace(-1, 3, 24).reshape(2, 3, 4)
    heat = HeatMap.from_values("saliency", values, geo, threshold=1.0)
    assert heat.codes.dtype == np.uint8 and heat.vmin == -1 and heat.vmax == 3
    assert abs(heat.value_of(int(heat.codes[1, 2, 3])) - 3.0) < 1e-6
    hl = heat.lut(np.zeros((256, 3), np.uint8))
    first_visible = int(np.argmax(hl[:, 3] > 0))
    assert abs(heat.value_of(first_visible) - 1.0) < (4 / 255) and hl[255, 3] > 0


def test_viewer_model_crosshair_is_shared_in_world_coordinates(oblique_ct, labels_on):
    model = ViewerModel()
    events = []
    for e in ("image", "cursor", "window", "labels", "segments", "heatmaps"):
        model.subscribe(e, lambda e=e: events.append(e))
    model.set_volume(oblique_ct)
    model.set_labelmap(labels_on)
    target = oblique_ct.geometry.index_to_world([5, 6, 3])
    model.set_cursor_world(target)
    assert np.linalg.norm(model.cursor_world() - target) <= np.linalg.norm(model.display.grid.spacing) / 2 + 1e-9
    probe = model.probe()
    assert probe["index"] is not None
    i, j, k = probe["index"]
    assert probe["value"] == float(oblique_ct.array[k, j, i])
    assert probe["label"] == (1, "Liver")
    n = len(events)
    model.set_cursor_world(target)  # no change, no event
    model.set_window(model.window)
    assert len(events) == n
    before = model.slice_index("axial")
    model.scroll("axial", 2)
    assert model.slice_index("axial") == before + 2 and model.slice_index("coronal") == model.cursor[1]
    model.set_visible(1, False)
    assert model.label_lut()[1, 3] == 0 and events[-1] == "segments"
    heat = HeatMap.from_values("u", np.ones(oblique_ct.geometry.shape_zyx), oblique_ct.geometry)
    model.add_heatmap(heat)
    assert model.heat_display(heat).shape == model.image.shape
    bad = LabelMap(np.zeros((2, 2, 2), np.uint8), Geometry((2, 2, 2)))
    with pytest.raises(Exception, match="grid"):
        model.set_labelmap(bad)


def test_argb_rendering_of_planes_and_overlays():
    from core.render2d import WindowLut, codes_argb, image_argb, premultiplied

    plane = np.array([[-1000, 0], [80, 3000]], np.int16)
    lut = WindowLut()
    argb = image_argb(plane, -160, 240, lut)
    grey = argb & 0xFF
    assert list(grey.ravel()) == [0, 102, 153, 255] and np.all(argb >> 24 == 255)
    np.testing.assert_array_equal(image_argb(plane.astype(np.float32), -160, 240, lut), argb)
    u16 = np.array([[0, 65535]], np.uint16)
    assert list((image_argb(u16, 0, 65535, lut) & 0xFF).ravel()) == [0, 255]
    rgb = np.zeros((1, 1, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    assert image_argb(rgb, 0, 1, lut)[0, 0] == 0xFF0A141E
    table = premultiplied(np.array([[0, 0, 0, 0], [255, 0, 0, 128]], np.uint8))
    assert table[1] == (128 << 24) | (128 << 16)
    codes = np.array([[0, 1], [1, 7]], np.uint8)
    out = codes_argb(codes, table)
    assert out[0, 0] == 0 and out[0, 1] == table[1] and out[1, 1] == 0  # unknown code: transparent


def test_label_change_box_limits_which_views_redraw(oblique_ct, labels_on):
    model = ViewerModel()
    model.set_volume(Volume.from_array(np.zeros((10, 20, 30), np.int16)))
    model.set_labelmap(LabelMap(np.zeros((10, 20, 30), np.uint8), model.volume.geometry))
    model.set_cursor_index([5, 5, 5])
    seen = []
    model.subscribe("labels", lambda: seen.append({v: model.slice_touched(v) for v in ("axial", "coronal", "sagittal")}))
    model.labels_changed((slice(5, 6), slice(10, 15), slice(20, 25)))  # z = 5 only, y 10-14, x 20-24
    assert seen[-1] == {"axial": True, "coronal": False, "sagittal": False}
    model.labels_changed()
    assert all(seen[-1].values())


def test_new_segment_colour_stands_apart():
    """A new segment's colour is far (CIELAB) from every colour already used, never a near-grey."""
    from core.labels import _lab, distinct_color

    ct = [(90, 180, 230), (200, 100, 60), (220, 190, 60), (241, 214, 145)]  # the CT model's labels
    taken = list(ct)
    for _ in range(4):
        new = distinct_color(taken)
        gap = np.linalg.norm(_lab([new]) - _lab(taken), axis=1).min()
        assert gap > 25 and np.ptp(new) > 60, (new, gap)
        taken.append(new)
    assert len(set(taken)) == len(taken)
