""""Next region" walks the uncertain regions: each is outlined on the views whose slice crosses
it (with its rank), every view zooms to it, and the panel says its rank, volume and score."""
import numpy as np
import pytest

from app.session import CaseSession
from core.volume import Volume
from inference.xai import uncertain_regions

pytest.importorskip("pytestqt")


def test_next_region_outlines_zooms_and_describes(qtbot):
    from gui.app import make_app
    from gui.explain_panel import ExplainPanel
    from gui.slice_view import SliceView

    make_app()
    # anisotropic and flipped along x: the box must still land on the region's voxels
    vol = Volume.from_array(np.zeros((30, 60, 60), np.float32), spacing=(1.0, 1.0, 2.5), modality="MR",
                            direction=np.diag([-1.0, 1.0, 1.0]))
    session = CaseSession()
    session.set_image(vol)
    unc = np.zeros(vol.array.shape, np.float32)
    unc[10:20, 5:25, 30:50] = 0.9  # the bigger region ranks first
    unc[2:6, 40:50, 5:15] = 0.8
    regions = uncertain_regions(unc, 0.5, min_voxels=9, spacing_xyz=vol.geometry.spacing)
    assert [r["rank"] for r in regions] == [1, 2]
    views = {v: SliceView(session.viewer, v) for v in ("axial", "coronal", "sagittal")}
    for v in views.values():
        qtbot.addWidget(v)
        v.resize(300, 300)
        v.show()
    panel = ExplainPanel(session, shell=None)
    qtbot.addWidget(panel)
    panel.attach(views)
    panel._show_regions(regions)
    panel.next_region()
    assert "Region 1/2" in panel.info.text() and "mL" in panel.info.text() and "score" in panel.info.text()
    model = session.viewer
    for name, view in views.items():
        rect = panel.nav.rect_of(name)
        assert rect is not None, name  # the crosshair sits in the region: every slice crosses it
        # the outline encloses the region's voxels (scene = display index x plane spacing)
        r_axis, c_axis = model.display.plane_axes(name)
        sr, sc = model.display.plane_spacing(name)
        for z, y, x in [(10, 5, 30), (19, 24, 49)]:
            ijk = model.display.grid.world_to_index(vol.geometry.index_to_world([x, y, z]))
            assert rect.contains(QtCore_point(ijk[c_axis] * sc, ijk[r_axis] * sr)), (name, z, y, x)
        shown = view.viewbox.viewRect()
        assert shown.contains(rect) and shown.width() < 3.5 * max(rect.width(), rect.height(), 40 / 3.5), name
    panel.next_region()
    assert "Region 2/2" in panel.info.text()
    model.scroll("axial", 15)  # off the second region's slices: no outline on the axial view
    assert panel.nav.rect_of("axial") is None
    panel._show_regions([])
    assert all(panel.nav.rect_of(n) is None for n in views)


def QtCore_point(x, y):
    from PySide6 import QtCore

    return QtCore.QPointF(x, y)
