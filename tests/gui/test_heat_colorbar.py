"""Every slice view showing a map carries its colour bar (name, range, meaning), also in its
screenshot; the bar follows which maps are shown."""
import numpy as np
import pytest

from core.overlay import HeatMap
from core.viewer_model import ViewerModel
from core.volume import Volume

pytest.importorskip("pytestqt")


def _box_colours(image, box):
    pixels = [image.pixelColor(x, y).getRgb()[:3] for x in range(box.left() + 8, box.right() - 8, 4)
              for y in range(box.top() + 18, box.top() + 26, 2)]
    return {tuple(p) for p in pixels}


def test_each_view_shows_the_shown_maps_colour_bar_in_its_screenshot(qtbot):
    from gui.app import make_app
    from gui.slice_view import SliceView

    make_app()
    vol = Volume.from_array(np.zeros((20, 40, 40), np.float32), modality="MR")  # black: any colour is the bar
    model = ViewerModel()
    model.set_volume(vol)
    views = [SliceView(model, v) for v in ("axial", "coronal", "sagittal")]
    for v in views:
        qtbot.addWidget(v)
        v.resize(360, 360)
        v.show()
    qtbot.waitExposed(views[0])
    assert all(not v.heat_bar.boxes() for v in views)
    zeros = np.zeros(vol.array.shape, np.float32)  # nothing above the threshold: only the bar is coloured
    first = HeatMap.from_values("Grad-CAM (CSF)", zeros, vol.geometry, vmin=0.0, vmax=1.0, threshold=0.1,
                                meaning="Where the network's features raised the score. Relative.")
    second = HeatMap.from_values("Uncertainty", zeros, vol.geometry, vmin=0.0, vmax=1.0, colormap="viridis")
    model.add_heatmap(first)
    for v in views:
        boxes = v.heat_bar.boxes()
        assert len(boxes) == 1
        colours = _box_colours(v.screenshot(), boxes[0])
        assert len(colours) > 5 and any(r > 150 and b < 100 for r, g, b in colours)  # inferno's warm end
    model.add_heatmap(second)  # one map at a time: the bar is the new map's
    shot = views[0].screenshot()
    (box,) = views[0].heat_bar.boxes()
    assert any(g > 150 and r < 150 for r, g, b in _box_colours(shot, box))  # viridis' green-yellow end
    model.set_one_heatmap(False)  # stacked maps: a bar each
    assert len(views[0].heat_bar.boxes()) == 2
    model.toggle_heatmaps()  # all faded out: no bar
    assert views[0].heat_bar.boxes() == []


def test_the_bar_is_drawn_once_and_redrawn_when_its_map_changes(qtbot, monkeypatch):
    """A slice change repaints each view: the bar is blended from its cached image, not laid out
    again; a new threshold draws it anew."""
    from gui import colorbar_item
    from gui.app import make_app

    make_app()
    drawn = []
    real = colorbar_item._bar_image
    monkeypatch.setattr(colorbar_item, "_bar_image", lambda *a: drawn.append(a[0].threshold) or real(*a))
    vol, model, view = _axial_view(qtbot, (20, 40, 40))
    heat = HeatMap.from_values("Grad-CAM", np.zeros(vol.array.shape, np.float32), vol.geometry, vmin=0.0, vmax=1.0,
                               threshold=0.1)
    model.add_heatmap(heat)
    view.screenshot()
    assert drawn == [0.1]
    for k in (3, 4, 5):
        model.set_cursor_index(np.array([20, 20, k]))
        view.screenshot()
    assert drawn == [0.1]
    heat.threshold = 0.5
    model.notify("heatmaps")
    colours = _box_colours(view.screenshot(), view.heat_bar.boxes()[0])
    assert drawn == [0.1, 0.5] and len(colours) > 5


def test_the_meaning_is_wrapped_whole_under_the_bar(qtbot):
    """Every explanation's meaning fits its bar in full, wrapped (it was one elided line:
    "Normalised predictive en..."), and the box grows with its lines."""
    from app.actions.explaining import LEGENDS
    from gui.app import make_app
    from gui.colorbar_item import BAR_HEIGHT, LINE, first_sentence, meaning_lines

    make_app()
    for method, text in LEGENDS.items():
        lines = meaning_lines(text)
        assert " ".join(lines) == first_sentence(text) and 1 < len(lines) <= 4, (method, lines)
    vol, model, view = _axial_view(qtbot, (10, 30, 30))
    model.add_heatmap(HeatMap.from_values("Uncertainty", np.zeros(vol.array.shape, np.float32), vol.geometry,
                                          meaning=LEGENDS["uncertainty"]))
    (box,) = view.heat_bar.boxes()
    assert box.height() == BAR_HEIGHT + LINE * len(meaning_lines(LEGENDS["uncertainty"]))
    assert box.top() >= 0 and box.bottom() < view.graphics.viewport().height() - 30


def _axial_view(qtbot, shape):
    """(volume, viewer model, a shown 360 px axial view) of an empty MR volume."""
    from gui.slice_view import SliceView

    vol = Volume.from_array(np.zeros(shape, np.float32), modality="MR")
    model = ViewerModel()
    model.set_volume(vol)
    view = SliceView(model, "axial")
    qtbot.addWidget(view)
    view.resize(360, 360)
    view.show()
    qtbot.waitExposed(view)
    return vol, model, view
