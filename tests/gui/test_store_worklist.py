"""The worklist panel reads the store in the task runner (never on the UI thread), fills itself
when made, hands an opened case on through ``case_opened`` and never supersedes running work."""
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


def test_a_refresh_waits_for_running_work_instead_of_superseding_it(qtbot, bar, tmp_path):
    shutil.copytree(FIXTURES / "store-v1", tmp_path / "store")
    log = []
    bar.start("Loading an image", lambda p, c, part: (time.sleep(0.6), c.check(), "image")[2],
              lambda v: log.append(("load", v)), lambda e: log.append(("load failed", e)))
    panel = WorklistPanel(None, bar)
    qtbot.addWidget(panel)
    panel.root = tmp_path / "store"  # tests set the root after construction: the deferred refresh reads it
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10000)
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
