"""The active heat map is shown in the 3D view as iso-surfaces over the segments, switchable, and
follows the active map."""
import numpy as np
import pytest

from core.overlay import HeatMap
from core.viewer_model import ViewerModel
from core.volume import Volume

pytest.importorskip("pytestqt")


def test_active_map_as_iso_surfaces_in_3d(qtbot):
    from gui.app import make_app
    from gui.heat_panel import HeatPanel
    from gui.map3d import iso_codes
    from gui.view3d import View3D

    make_app()
    vol = Volume.from_array(np.zeros((24, 32, 32), np.float32), spacing=(1.0, 1.0, 2.0), modality="MR")
    model = ViewerModel()
    view = View3D(model)
    if not view.available:
        pytest.skip("no display for VTK")
    qtbot.addWidget(view)
    view.resize(200, 200)
    view.show()
    model.set_volume(vol)
    panel = HeatPanel(model)
    qtbot.addWidget(panel)
    panel.attach_3d(view)
    z, y, x = np.mgrid[:24, :32, :32]
    blob = np.exp(-(((x - 10) ** 2 + (y - 16) ** 2) / 40.0 + (z - 12) ** 2 / 10.0)).astype(np.float32)
    heat = HeatMap.from_values("Grad-CAM (CSF)", blob, vol.geometry, vmin=0.0, vmax=1.0, threshold=0.1)
    assert iso_codes(heat) == [128, 204]
    model.add_heatmap(heat)
    actors = panel.map3d.actors
    assert len(actors) == 2
    # the inner (80 %) surface lies within the outer one, both around the blob's centre (x = 10 voxels)
    bounds = [a.GetBounds() for a in actors]
    assert bounds[1][1] - bounds[1][0] < bounds[0][1] - bounds[0][0]
    assert all(b[0] < 10.0 < b[1] for b in bounds)
    panel.in_3d.setChecked(False)
    assert panel.map3d.actors == []
    panel.in_3d.setChecked(True)
    assert len(panel.map3d.actors) == 2
    model.add_heatmap(HeatMap.from_values("Uncertainty", np.zeros_like(blob), vol.geometry, vmin=0.0, vmax=1.0))
    assert panel.map3d.actors == []  # the newest (active) map never reaches its levels: nothing drawn
    view.finalize()
