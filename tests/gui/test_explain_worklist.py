"""The worklist can put the cases the model doubted most first (case uncertainty, saved with each
correction), so review starts where it is most needed."""
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_most_uncertain_first(qtbot, bar, tmp_path, monkeypatch):
    from gui.worklist import COLUMNS, WorklistPanel

    shutil.copytree(FIXTURES / "store-v2", tmp_path / "store")  # two cases: uncertainty 0.1 and 0.2
    monkeypatch.setenv("DELINEATE_STORE", str(tmp_path / "store"))
    panel = WorklistPanel(None, bar)
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10000)
    col = COLUMNS.index("Uncertainty")
    with qtbot.waitSignal(panel.refreshed, timeout=10000):
        panel.by_uncertainty.setChecked(True)
    assert [panel.table.item(r, col).text() for r in range(2)] == ["0.200", "0.100"]
    assert [c.uncertainty for c in panel.cases] == [0.2, 0.1]  # rows still open their own case
