"""The export dialog offers the heat map on screen for the report, on a chosen plane."""
import numpy as np
import pytest

from core.overlay import HeatMap
from core.volume import Volume

pytest.importorskip("pytestqt")


def test_report_option_carries_the_chosen_explanation_view(qtbot, tmp_path):
    from gui.app import make_app
    from gui.export_dialog import ExportDialog

    make_app()
    vol = Volume.from_array(np.zeros((4, 8, 8), np.float32), modality="MR")
    heat = HeatMap.from_values("Uncertainty", np.zeros((4, 8, 8), np.float32), vol.geometry, vmin=0.0, vmax=1.0)
    at = np.array([1.0, 2.0, 3.0])
    dlg = ExportDialog(str(tmp_path), "case-seg", False, explanation=heat, at=at)
    qtbot.addWidget(dlg)
    dlg.format.setCurrentIndex(dlg.format.findData("report"))
    assert not dlg.explain_row.isHidden() and dlg.explain.isChecked() and "Uncertainty" in dlg.explain.text()
    dlg.explain_view.setCurrentText("sagittal")
    chosen = dlg.values()["explanation"]
    assert chosen.heat is heat and chosen.view == "sagittal" and np.array_equal(chosen.world, at)
    dlg.explain.setChecked(False)
    assert dlg.values()["explanation"] is None
    dlg.format.setCurrentIndex(dlg.format.findData("seg"))
    assert dlg.explain_row.isHidden() and dlg.values()["explanation"] is None
    none = ExportDialog(str(tmp_path), "case-seg", False)  # no map on screen: the option is off
    qtbot.addWidget(none)
    assert not none.explain.isEnabled() and none.values()["explanation"] is None
