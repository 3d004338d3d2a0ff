"""One explanation at a time, a panel that follows the newest layer, a colour bar and a legend."""
import numpy as np
import pytest

from core.overlay import HeatMap
from core.viewer_model import ViewerModel
from core.volume import Volume

pytest.importorskip("pytestqt")


def _model_with_two_maps():
    vol = Volume.from_array(np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8), modality="MR")
    model = ViewerModel()
    model.set_volume(vol)
    ramp = np.linspace(0, 1, vol.array.size, dtype=np.float32).reshape(vol.array.shape)
    first = HeatMap.from_values("Grad-CAM (CSF)", ramp, vol.geometry, vmin=0.0, vmax=1.0, meaning="first map")
    second = HeatMap.from_values("Occlusion (CSF)", 1 - ramp, vol.geometry, vmin=0.0, vmax=1.0, meaning="second map")
    return model, first, second


def _shown(heat) -> bool:
    return bool(heat.lut(np.zeros((256, 3), np.uint8))[:, 3].any())


def test_newest_map_is_active_and_alone_until_asked_otherwise():
    model, first, second = _model_with_two_maps()
    model.add_heatmap(first)
    model.add_heatmap(second)
    assert model.active_heatmap() is second and _shown(second) and not _shown(first)
    model.set_active_heatmap(first.name)
    assert _shown(first) and not _shown(second)
    model.set_one_heatmap(False)
    assert _shown(first) and _shown(second)
    model.set_one_heatmap(True)
    model.remove_heatmap(first.name)
    assert model.active_heatmap() is second and _shown(second)


def test_panel_follows_the_newest_layer_and_shows_its_scale(qtbot):
    from gui.app import make_app
    from gui.heat_panel import HeatPanel

    make_app()
    model, first, second = _model_with_two_maps()
    panel = HeatPanel(model)
    qtbot.addWidget(panel)
    model.add_heatmap(first)
    model.add_heatmap(second)
    assert panel.layer.currentText() == second.name
    panel.opacity.setValue(20)  # acts on the newest map, not the one shown before
    assert second.opacity == pytest.approx(0.2) and first.opacity == pytest.approx(0.6)
    assert not panel.colorbar.pixmap().isNull() and panel.colorbar.pixmap().width() == 256
    assert "second map" in panel.legend.text() and "0 " in panel.scale.text() and "1" in panel.scale.text()
    bar = panel.colorbar.pixmap().toImage()
    panel.threshold.setValue(128)  # below the threshold the bar is dimmed, as the views hide it
    dimmed = panel.colorbar.pixmap().toImage()
    assert bar.pixelColor(10, 5) != dimmed.pixelColor(10, 5) and bar.pixelColor(250, 5) == dimmed.pixelColor(250, 5)
    panel.layer.setCurrentIndex(0)
    assert model.active_heat == first.name and _shown(first) and not _shown(second)
    assert "first map" in panel.legend.text()
    panel.one.setChecked(False)
    assert _shown(first) and _shown(second)
