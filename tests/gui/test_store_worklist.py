"""The worklist panel reads the store in a thread of its own (never on the UI thread), fills itself
when made, hands an opened case on through ``case_opened`` and neither waits for nor supersedes
work in the task runner."""
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from app.session import CaseSession  # noqa: E402
from gui.worklist import WorklistPanel  # noqa: E402

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_fills_itself_in_the_worker_and_opens_a_case(qtbot, bar, tmp_path, monkeypatch):
    shutil.copytree(FIXTURES / "store-v2", tmp_path / "store")
    monkeypatch.setenv("DELINEATE_STORE", str(tmp_path / "store"))
    threads = []
    import app.actions.store_cases as store_cases

    real = store_cases.list_cases
    monkeypatch.setattr(store_cases, "list_cases",
                        lambda *a, **k: (threads.append(threading.current_thread()), real(*a, **k))[1])
    session = CaseSession()
    panel = WorklistPanel(session, bar)
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10000)  # no Refresh pressed
    assert threads and threads[0] is not threading.main_thread()
    states = sorted(panel.table.item(r, 0).text() for r in range(2))
    assert states == ["approved", "in review"] and "2 cases" in panel.status.text()
    row = next(r for r in range(2) if panel.table.item(r, 0).text() == "approved")
    with qtbot.waitSignal(panel.case_opened, timeout=10000) as opened:
        panel.open_row(row)
    image, ai, corrected, case_id = opened.args
    assert case_id == panel.cases[row].id and image.metadata["store_case"] == case_id
    assert np.count_nonzero(corrected.array == 2) == 4 and ai.geometry.same_grid(image.geometry)
    # a save announced by the session refreshes the list
    panel.root = tmp_path / "empty"
    with qtbot.waitSignal(panel.refreshed, timeout=10000):
        session.mark_saved(case_id, 2, "approved")
    assert panel.table.rowCount() == 0 and panel.status.text() == "No saved corrections yet"


def test_the_list_neither_waits_for_running_work_nor_supersedes_it(qtbot, bar, tmp_path):
    """At start-up the window opens an image and runs a model: the worklist is read meanwhile."""
    shutil.copytree(FIXTURES / "store-v1", tmp_path / "store")
    log = []
    bar.start("Loading an image", lambda p, c, part: (time.sleep(1.5), c.check(), "image")[2],
              lambda v: log.append(("load", v)), lambda e: log.append(("load failed", e)))
    panel = WorklistPanel(None, bar)
    qtbot.addWidget(panel)
    panel.root = tmp_path / "store"  # tests set the root after construction: the deferred refresh reads it
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10000)
    assert bar.busy and log == []  # listed while the load still runs
    qtbot.waitUntil(lambda: not bar.busy, timeout=10000)
    assert log == [("load", "image")]  # the load was not cancelled


def test_an_unreadable_store_is_reported_in_the_panel(qtbot, bar, tmp_path):
    (tmp_path / "bad" / "cases").mkdir(parents=True)
    (tmp_path / "bad" / "index.sqlite").write_bytes(b"garbage" * 200)
    panel = WorklistPanel(None, bar)
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: not bar.busy and not panel._pending, timeout=10000)
    panel.root = tmp_path / "bad"
    with qtbot.waitSignal(panel.failed, timeout=10000) as failed:
        panel.refresh()
    assert failed.args[0] == "corrections store" and "cannot open the store's index" in panel.status.text()


def test_a_refresh_asked_for_while_one_runs_shows_the_latest_root(qtbot, bar, tmp_path):
    shutil.copytree(FIXTURES / "store-v2", tmp_path / "store")
    panel = WorklistPanel(None, bar)  # reading the (empty) default store
    qtbot.addWidget(panel)
    panel.root = tmp_path / "store"
    with qtbot.waitSignal(panel.refreshed, timeout=10000):
        panel.refresh()
    assert panel.table.rowCount() == 2


def test_a_case_locked_by_someone_else_says_who_and_mine_are_listed_alone(qtbot, bar, tmp_path):
    """Opening a case another reviewer holds shows "locked by ..." in the panel (and the error
    signal), opens nothing and crashes nothing; the table says who holds it and who it is assigned
    to; "Assigned to me" lists the reviewer's cases; an opened case is locked for the reviewer until
    another image replaces it."""
    from store.corrections import CorrectionsStore
    from store.team import CaseLocked

    shutil.copytree(FIXTURES / "store-v2", tmp_path / "store")
    with CorrectionsStore(tmp_path / "store") as st:
        approved, in_review = st.cases("approved")[0].id, st.cases("in_review")[0].id
        st.lock(approved, "dr.other")
        st.assign(in_review, "dr.me")
    session = CaseSession()
    panel = WorklistPanel(session, bar)
    qtbot.addWidget(panel)
    panel.reviewer = lambda: "dr.me"
    panel.root = tmp_path / "store"
    with qtbot.waitSignal(panel.refreshed, timeout=10000):
        panel.refresh()
    rows = {panel.cases[r].id: r for r in range(2)}
    header = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    locked_col, assigned_col = header.index("Locked by"), header.index("Assigned to")
    assert panel.table.item(rows[approved], locked_col).text().startswith("dr.other on ")
    assert panel.table.item(rows[in_review], assigned_col).text() == "dr.me"
    opened = []
    panel.case_opened.connect(lambda *args: opened.append(args))
    with qtbot.waitSignal(panel.failed, timeout=10000) as failed:
        panel.open_row(rows[approved])
    assert isinstance(failed.args[1], CaseLocked) and not opened and panel.held is None
    assert f"Case {approved} is not opened: locked by dr.other on " in panel.status.text()
    with qtbot.waitSignal(panel.refreshed, timeout=10000):
        panel.mine.setChecked(True)
    assert [c.id for c in panel.cases] == [in_review] and "1 case assigned to you" in panel.status.text()
    with qtbot.waitSignal(panel.case_opened, timeout=10000) as got:
        panel.open_row(0)
    image, _ai, _corrected, case_id = got.args
    assert case_id == in_review and panel.held is not None
    with CorrectionsStore(tmp_path / "store") as st:
        assert st.lock_of(in_review).holder == "dr.me"
    session.set_image(image, "", store_case=case_id)  # the window shows it: still held
    assert panel.held is not None
    session.set_image(image, "elsewhere.nii.gz")  # another image: the lock goes
    assert panel.held is None

    def released():
        with CorrectionsStore(tmp_path / "store") as st:
            return st.lock_of(in_review) is None
    qtbot.waitUntil(released, timeout=10000)


def test_the_store_in_the_settings_is_the_default_unless_the_environment_names_one(tmp_path, monkeypatch):
    from PySide6 import QtCore

    from gui.worklist import apply_store_setting
    from store.corrections import default_root

    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    url = "postgresql://dr:pw@db.hospital.local/delineate?files=/mnt/store"
    settings.setValue("store", url)
    monkeypatch.setenv("DELINEATE_STORE", str(tmp_path / "env-store"))
    assert apply_store_setting(settings) == str(tmp_path / "env-store") and default_root() == tmp_path / "env-store"
    monkeypatch.delenv("DELINEATE_STORE")
    assert apply_store_setting(settings) == "postgresql://dr:***@db.hospital.local/delineate?files=/mnt/store"
    assert default_root() == url
