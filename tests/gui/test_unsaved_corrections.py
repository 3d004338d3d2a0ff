"""Unsaved corrections are never thrown away without asking (issue: opening another image dropped
them silently). In the real window: every way of replacing the open case (File > Open, recent files,
the worklist's double-click; drag and drop and PACS retrieve go through the same open_path) and
closing the window ask "Save the corrections to <case> before <doing>?" when the physician edited
the mask; Cancel keeps everything, Discard goes on, Save stores the correction (in review) and then
goes on. An untouched model draft is not asked about. The question is answered by the
``unsaved_answers`` fixture (tests/gui/conftest.py) instead of a modal box."""
import numpy as np
import pytest

from core.labels import LabelMap, LabelTable
from core.volume import Volume

pytest.importorskip("pytestqt")


@pytest.fixture
def images(tmp_path, monkeypatch):
    from formats.io import write_image

    monkeypatch.setenv("DELINEATE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("DELINEATE_RECOVERY", str(tmp_path / "recovery" / "case.npz"))
    paths = []
    for name, seed in (("first.nii.gz", 1), ("second.nii.gz", 2)):
        arr = np.random.default_rng(seed).integers(0, 200, (6, 24, 28)).astype(np.int16)
        write_image(Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), modality="MR"), tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths


def _open(qtbot, window, path):
    with qtbot.waitSignal(window.loaded, timeout=30000):
        window.opener.open_path(path)
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)


def _paint(window):
    """A brush dab through the Edit panel, as a click on the axial view makes."""
    panel = window.edit_panel
    if window.model.labelmap is None:
        panel.new_segment()
    panel.tool.setCurrentText("Paint")
    panel.on_view("axial", np.array([12.0, 10.0, 3.0]), "click")
    assert window.session.has_unsaved_edits()
    return window.model.labelmap.array.copy()


def test_opening_another_image_asks_cancel_keeps_discard_drops_save_stores(qtbot, images, window,
                                                                          unsaved_answers):
    from app.session import ReviewSaved
    from gui import dialogs
    from store import recovery
    from store.corrections import CorrectionsStore

    first, second = images
    window.settings.setValue("reviewer", "dr.unsaved")
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)  # the worklist's first read
    _open(qtbot, window, first)
    vol = window.session.volume  # an untouched draft (as a model puts up) is not asked about
    draft = LabelMap(np.zeros(vol.geometry.shape_zyx, np.uint8), vol.geometry, LabelTable.from_names(["Lesion"]))
    draft.array[2:4, 5:9, 5:9] = 1
    window.session.set_labelmap(draft)
    _open(qtbot, window, second)
    assert unsaved_answers.asked == [] and window.session.source == second

    # Cancel: nothing opens, nothing is lost
    painted = _paint(window)
    unsaved_answers.append(dialogs.CANCEL)
    window.opener.open_path(first)
    qtbot.wait(200)
    assert unsaved_answers.asked == [("second.nii.gz", "opening first.nii.gz")]
    assert window.session.source == second and not window.tasks.busy
    np.testing.assert_array_equal(window.model.labelmap.array, painted)
    assert window.session.has_unsaved_edits()

    # Discard, from the recent-files menu: the other image opens, the crash copy goes too
    window.autosaver.autosave(wait=True)
    assert recovery.pending() is not None
    unsaved_answers.append(dialogs.DISCARD)
    action = next(a for a in window.recent_menu.actions() if a.text() == first)
    with qtbot.waitSignal(window.loaded, timeout=30000):
        action.trigger()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    assert len(unsaved_answers.asked) == 2 and window.session.source == first
    assert window.model.labelmap is None and recovery.pending() is None

    # Save: the correction is stored (in review: leaving a case never approves it), then it opens
    painted = _paint(window)
    saved = []
    window.session.subscribe(ReviewSaved, saved.append)
    unsaved_answers.append(dialogs.SAVE)
    window.opener.open_path(second)
    qtbot.waitUntil(lambda: window.session.source == second and not window.tasks.busy, timeout=30000)
    assert unsaved_answers.asked[-1] == ("first.nii.gz", "opening second.nii.gz") and len(saved) == 1
    with CorrectionsStore(window.worklist.root) as st:
        assert st.latest(saved[0].case_id)["state"] == "in_review"
        _image, _ai, corrected = st.load(saved[0].case_id)
    np.testing.assert_array_equal(corrected.array, painted)

    # the worklist's double-click asks too (its Next case saves without asking, as before)
    window.worklist.refresh()
    qtbot.waitUntil(lambda: window.worklist.table.rowCount() == 1, timeout=20000)
    _paint(window)
    unsaved_answers.append(dialogs.CANCEL)
    window.worklist.table.cellDoubleClicked.emit(0, 0)
    qtbot.wait(200)
    assert unsaved_answers.asked[-1] == ("second.nii.gz", f"opening case {saved[0].case_id}")
    assert window.session.source == second and window.session.store_case is None and not window.tasks.busy


def test_closing_with_unsaved_corrections_asks(qtbot, images, window, unsaved_answers):
    from gui import dialogs

    window.settings.setValue("reviewer", "dr.unsaved")
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    _open(qtbot, window, images[0])
    painted = _paint(window)
    unsaved_answers.append(dialogs.CANCEL)
    window.close()
    assert unsaved_answers.asked == [("first.nii.gz", "closing Delineate")]
    assert window.isVisible()
    np.testing.assert_array_equal(window.model.labelmap.array, painted)
    unsaved_answers.append(dialogs.SAVE)  # saved in the worker, then it closes
    window.close()
    assert window.isVisible()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30000)
    assert not window.session.has_unsaved_edits() and window.session.store_case is not None
    assert len(unsaved_answers.asked) == 2  # the close after the save had nothing left to ask about


def test_a_model_run_or_a_segmentation_file_over_edits_asks_first(qtbot, images, window, unsaved_answers, tmp_path):
    """Both replace the edited mask with a new history that cannot undo back to the edits."""
    from gui import dialogs
    from inference.registry import Registry

    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    _open(qtbot, window, images[0])
    painted = _paint(window)
    card = Registry().get("brain-tissue")
    unsaved_answers.extend([dialogs.CANCEL, dialogs.CANCEL])
    window.cases.run_model(card)
    window.opener.open_segmentation(str(tmp_path / "other_mask.nii.gz"))
    qtbot.wait(200)
    assert unsaved_answers.asked == [("first.nii.gz", f"running {card.name} over them"),
                                     ("first.nii.gz", "loading other_mask.nii.gz over them")]
    assert not window.tasks.busy and window.session.has_unsaved_edits()
    np.testing.assert_array_equal(window.model.labelmap.array, painted)
