"""The worklist drives the day (issue 20 item 4), in the real window: it is filled at start (no
Refresh), its rows say what each case is (study, year, modality, model, state, reviewer, last
saved; no patient identifier is stored), they filter and sort, and Next case saves the open case
and opens the next row as shown."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6 import QtCore  # noqa: E402

from core.labels import Label, LabelMap, LabelTable  # noqa: E402
from core.volume import Volume  # noqa: E402

TABLE = LabelTable((Label(1, "liver", (200, 100, 60)), Label(2, "tumour", (250, 250, 0))))
STUDIES = (("CT ABDOMEN", "2021", "approved", "dr.a"), ("MR BRAIN", "2019", "in_review", "dr.b"),
           ("CT CHEST", "2023", "ai_draft", "dr.c"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Three small cases in a store that $DELINEATE_STORE names before the window is made."""
    from store.corrections import CorrectionsStore

    root = tmp_path / "store"
    with CorrectionsStore(root) as st:
        for seed, (study, year, state, reviewer) in enumerate(STUDIES):
            vol = Volume.from_array(np.random.default_rng(seed).integers(0, 100, (4, 16, 16)).astype(np.int16),
                                    spacing=(1.0, 1.0, 2.0), modality=study[:2])
            ai = LabelMap(np.zeros((4, 16, 16), np.uint8), vol.geometry, TABLE)
            ai.array[1:3, 4:10, 4:10] = 1
            st.save(vol, ai, ai.copy(), reviewer=reviewer, model_id="phantom", model_version="1.0", state=state,
                    source_meta={"modality": study[:2], "study_description": study, "study_year": year})
    monkeypatch.setenv("DELINEATE_STORE", str(root))
    return root


def _rows(panel, column):
    from gui.worklist import COLUMNS

    col = COLUMNS.index(column)
    return [panel.table.item(r, col).text() for r in range(panel.table.rowCount()) if not panel.table.isRowHidden(r)]


def test_filled_at_start_filter_sort_and_next_case_saves_and_opens_the_next_row(qtbot, store, window):
    from core.editing import brush
    from gui.worklist import COLUMNS
    from store.corrections import CorrectionsStore

    panel = window.worklist
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=10000)  # nobody pressed Refresh
    assert sorted(_rows(panel, "Study")) == sorted(s[0] for s in STUDIES)
    row = _rows(panel, "Study").index("MR BRAIN")
    assert [_rows(panel, c)[row] for c in ("Study year", "Modality", "Model", "State", "Reviewer")] == \
        ["2019", "MR", "phantom 1.0", "in review", "dr.b"]
    assert len(_rows(panel, "Last saved")[row]) == len("2026-01-01 12:00")
    # sort by a click on the header (again: the other way round), filter by text and by state
    header = panel.table.horizontalHeader()
    header.sectionClicked.emit(COLUMNS.index("Study"))
    assert _rows(panel, "Study") == ["CT ABDOMEN", "CT CHEST", "MR BRAIN"]
    header.sectionClicked.emit(COLUMNS.index("Study"))
    assert _rows(panel, "Study") == ["MR BRAIN", "CT CHEST", "CT ABDOMEN"]
    panel.filter.setText("ct ")
    assert _rows(panel, "Study") == ["CT CHEST", "CT ABDOMEN"] and "2 of 3 cases" in panel.status.text()
    panel.state.setCurrentIndex(panel.state.findData("approved"))
    assert _rows(panel, "Study") == ["CT ABDOMEN"]
    panel.state.setCurrentIndex(0)
    panel.filter.clear()
    header.sectionClicked.emit(COLUMNS.index("Study year"))  # 2019, 2021, 2023
    ids = panel.visible_ids()
    assert _rows(panel, "Study") == ["MR BRAIN", "CT ABDOMEN", "CT CHEST"]

    # nothing open: Next case opens the first row
    window.settings.setValue("reviewer", "dr.next")
    with qtbot.waitSignal(window.loaded, timeout=20000):
        qtbot.mouseClick(panel.next_button, QtCore.Qt.MouseButton.LeftButton)
    assert window.session.store_case == ids[0]
    # an edit, then Next case (its shortcut's action): the edit is saved, the next row opens
    lm = window.session.labelmap
    window.session.apply(brush(lm, (8, 8, 2), 1.5, 2))
    painted = lm.array.copy()
    assert (painted == 2).any()
    assert window.actions_by_id["next_case"].shortcut().toString() == "Ctrl+Right"
    window.actions_by_id["next_case"].trigger()
    qtbot.waitUntil(lambda: window.session.store_case == ids[1] and not window.tasks.busy, timeout=20000)
    # said before the next case opened, about this step: it stays over the next case
    assert window.statusBar().currentMessage() == f"Saved correction 2 of case {ids[0]} (in review)"
    with CorrectionsStore(store) as st:
        saved = st.latest(ids[0])
        case = st.case(ids[0])
        _img, _ai, fixed = st.load(ids[0])
        assert st.latest(ids[1])["n"] == 1
    assert saved["n"] == 2 and saved["reviewer"] == "dr.next" and saved["state"] == "in_review"
    assert case.model_id == "phantom" and case.reviewer == "dr.next"  # a reopened case keeps its model
    np.testing.assert_array_equal(fixed.array, painted)
    qtbot.waitUntil(lambda: "dr.next" in _rows(panel, "Reviewer"), timeout=10000)  # the list was read again
    # no edit: nothing to save, the next row opens; past the end nothing happens
    with qtbot.waitSignal(window.loaded, timeout=20000):
        panel.step(1)
    assert window.session.store_case == ids[2]
    assert panel.step(1) is None and panel.status.text() == "No next case in the list"
    window.actions_by_id["next_case"].trigger()  # Ctrl+Right with the Segments tab in front: the status bar says it
    assert window.statusBar().currentMessage().startswith("No next case in the list: the open case stays open")
    with qtbot.waitSignal(window.loaded, timeout=20000):
        window.actions_by_id["previous_case"].trigger()
    assert window.session.store_case == ids[1]
    with CorrectionsStore(store) as st:
        assert st.latest(ids[1])["n"] == 1 and st.latest(ids[2])["n"] == 1


def test_next_case_keeps_an_approved_case_approved(qtbot, store, window):
    from core.editing import brush
    from store.corrections import CorrectionsStore

    panel = window.worklist
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=10000)
    approved = next(c.id for c in panel.cases if c.state == "approved")
    window.settings.setValue("reviewer", "dr.next")
    with qtbot.waitSignal(window.loaded, timeout=20000):
        panel.open_case(approved)
    window.session.apply(brush(window.session.labelmap, (8, 8, 2), 1.5, 2))
    # the list is newest-saved first: the approved case is last when its save fell in an earlier
    # second than the others' (a loaded machine), and then the neighbour is the previous row
    delta = 1 if panel.neighbour(1) is not None else -1
    target = panel.neighbour(delta)
    assert target is not None and target != approved
    panel.step(delta)
    qtbot.waitUntil(lambda: window.session.store_case == target and not window.tasks.busy, timeout=20000)
    with CorrectionsStore(store) as st:
        assert st.latest(approved)["state"] == "approved" and st.case(approved).state == "approved"


def test_a_failed_save_keeps_the_case_open_with_its_edits(qtbot, store, window, tmp_path):
    from core.editing import brush

    panel = window.worklist
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=10000)
    window.settings.setValue("reviewer", "dr.next")
    first = panel.cases[0].id
    with qtbot.waitSignal(window.loaded, timeout=20000):
        panel.open_case(first)
    window.session.apply(brush(window.session.labelmap, (8, 8, 2), 1.5, 2))
    edited = window.session.labelmap.array.copy()
    (tmp_path / "not-a-folder").write_text("a file where the store's folder should be")
    panel.root = tmp_path / "not-a-folder"  # the save cannot be written there
    assert panel.step(1) is not None
    qtbot.waitUntil(lambda: window._last_error is not None and not window.tasks.busy, timeout=20000)
    assert window.session.store_case == first and window.cases.unsaved()
    np.testing.assert_array_equal(window.session.labelmap.array, edited)


def test_what_counts_as_unsaved(qtbot, store, window):
    """Next case saves only what changed: an undo then another edit is a change though the number
    of edits is the same; undoing and redoing back to the saved mask is not; a measurement is."""
    from app.actions import measuring
    from core.editing import brush
    from core.measurements import Measurement

    panel = window.worklist
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=10000)
    window.settings.setValue("reviewer", "dr.next")
    with qtbot.waitSignal(window.loaded, timeout=20000):
        panel.open_case(panel.cases[0].id)
    s, cc = window.session, window.cases
    assert not cc.unsaved()  # as the store has it
    s.apply(brush(s.labelmap, (8, 8, 2), 1.5, 2))
    assert cc.unsaved()
    done = []
    cc.save_then(lambda: done.append(True))
    qtbot.waitUntil(lambda: done == [True], timeout=20000)
    assert not cc.unsaved()
    s.undo()
    assert cc.unsaved()
    s.redo()
    assert not cc.unsaved()  # back to what was saved
    s.undo()
    s.apply(brush(s.labelmap, (4, 4, 1), 1.5, 1))  # as many edits as were saved, but another mask
    assert cc.unsaved()
    cc.save_then(lambda: done.append(True))
    qtbot.waitUntil(lambda: done == [True, True], timeout=20000)
    measuring.add(s, Measurement("ruler", ((0.0, 0.0, 0.0), (5.0, 0.0, 0.0))))
    assert cc.unsaved()
