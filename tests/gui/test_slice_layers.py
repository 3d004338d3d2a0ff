"""What the slice views draw stays exact while they draw it faster (issue 20 item 6): sagittal
planes served from blocks of neighbouring planes equal the volume's, also after an edit in place,
a replaced array or a flipped axis; the image and overlay layers refill their buffers."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def test_plane_blocks_give_the_planes_of_any_array():
    from gui.plane_cache import PlaneBlocks

    a = np.arange(4 * 5 * 21, dtype=np.int16).reshape(4, 5, 21)
    blocks = PlaneBlocks(width=8)
    for arr in (a, a[::-1], a[:, ::-1], a[:, :, ::-1], a.astype(np.uint8)):
        for i in [3, 4, 20, 0, 9, 15, 16]:  # within a block, the next, the partial last one, back
            np.testing.assert_array_equal(blocks.plane("x", arr, i), arr[:, :, i])
    b = a.copy()
    blocks.plane("b", b, 2)
    b[:, :, 2] += 1  # edited in place: served stale until forgotten, as the views do on "labels"
    blocks.forget("b")
    np.testing.assert_array_equal(blocks.plane("b", b, 2), b[:, :, 2])
    c = b + 7  # a new array under the same name is gathered afresh
    np.testing.assert_array_equal(blocks.plane("b", c, 2), c[:, :, 2])


def _phantom():
    """A CT with two segments and a heat map, 60x96x102 (the last sagittal block is partial)."""
    from core.labels import LabelMap, LabelTable
    from core.overlay import HeatMap
    from core.volume import Volume

    z, y, x = np.mgrid[:60, :96, :102]
    body = ((y - 48) / 40.0) ** 2 + ((x - 50) / 44.0) ** 2 < 1
    bone = ((y - 70) / 8.0) ** 2 + ((x - 50) / 8.0) ** 2 < 1
    arr = (np.where(bone, 700, np.where(body, 40, -1000)) + (x * 7 + y * 3 + z) % 23).astype(np.int16)
    vol = Volume.from_array(arr, spacing=(1.0, 1.0, 2.5), modality="CT")
    lm = LabelMap((body.astype(np.uint8) + bone).astype(np.uint8), vol.geometry, LabelTable.from_names(["body", "spine"]))
    heat = HeatMap.from_values("blob", np.exp(-((y - 40) ** 2 + (x - 60) ** 2) / 300.0).astype(np.float32),
                               vol.geometry, 0.0, 1.0, threshold=0.2)
    return vol, lm, heat


def test_sagittal_view_shows_the_planes_and_edits(window):
    from core.windows import levels

    vol, lm, _heat = _phantom()
    window.session.set_image(vol, "phantom")
    window.session.set_labelmap(lm)
    model, sag = window.model, window.views["sagittal"]
    for step in (0, 1, 1, 9, -3, 60, -1):  # up to the last, partial block and back
        model.scroll("sagittal", step)
        k = model.slice_index("sagittal")
        np.testing.assert_array_equal(sag.image_item.source, model.image[:, :, k])
        np.testing.assert_array_equal(sag.label_item.source, model.labels[:, :, k])
    lut = sag._window_lut.table(model.image.dtype, *levels(model.window))
    np.testing.assert_array_equal(sag.image_item._pixels, lut[model.image[:, :, k].view(np.uint16)])
    # a label edit in place on the shown plane reaches the view (its block is not served stale)
    k = model.slice_index("sagittal")
    box = (slice(10, 20), slice(30, 40), slice(k, k + 1))
    lm.array[box] = 2
    model.labels_changed(box)
    np.testing.assert_array_equal(sag.label_item.source, model.labels[:, :, k])
    assert (sag.label_item.source[10:20, 30:40] == 2).all()


def test_labels_and_one_heat_map_are_composed_into_one_layer_as_blended_before(window):
    """With segments and one heat map shown, the label layer holds labels over the heat map (one
    gather and one blend less); over the image it gives the pixels the two layers gave, within one
    level of rounding, and hiding the map brings the labels alone back."""
    from core.render2d import premultiplied

    vol, lm, heat = _phantom()
    window.session.set_image(vol, "phantom")
    window.session.set_labelmap(lm)
    window.model.add_heatmap(heat)
    model = window.model
    for name, view in window.views.items():
        model.scroll(name, 3)
        k = model.slice_index(name)
        take = {"axial": lambda a: a[k], "coronal": lambda a: a[:, k], "sagittal": lambda a: a[:, :, k]}[name]
        labels, codes = take(model.labels), take(model.heat_display(heat))
        item = view.heat_items[0]
        assert view._composed_heat() == 0 and not item.isVisible() and item.qimage is None
        np.testing.assert_array_equal(item.source, codes)
        np.testing.assert_array_equal(view.label_item.source, labels)
        grey = (view.image_item._pixels & 0xFF).astype(np.int64)
        heat_argb, label_argb = view._heat_tables[0][codes].astype(np.int64), view.label_table[labels].astype(np.int64)
        composed = view.label_item._pixels.astype(np.int64)

        def over(src, below, shift):
            return ((src >> shift) & 0xFF) + (below * (255 - (src >> 24)) + 127) // 255

        assert (composed >> 24).max() > 0 and (heat_argb >> 24).max() > 0  # both layers show here
        for shift in (0, 8, 16):
            two = over(label_argb, over(heat_argb, grey, shift), shift)
            assert np.abs(over(composed, grey, shift) - two).max() <= 1, (name, shift)
    heat.opacity = 0.0
    model.heatmap_changed()
    axial = window.views["axial"]
    np.testing.assert_array_equal(axial.label_item._pixels, axial.label_table[axial.label_item.source])
