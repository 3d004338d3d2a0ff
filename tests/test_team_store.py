"""Team work on the store, against a real PostgreSQL started by the tests (tests.pg_server) and on
SQLite alike: two reviewers in two processes never hold the same case; a killed holder's lock
expires and leaves the case intact; the audit trail lists every state change; 20 processes saving
50 corrections each at once lose nothing and the index matches the files."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from app.actions.store_cases import list_cases, release_case, take_case
from core.errors import DelineateError
from core.labels import Label, LabelMap, LabelTable
from core.volume import Volume
from formats.io import read_labelmap
from store.corrections import CorrectionsStore
from store.team import CaseLocked
from tests.conftest import ROOT
from tests.pg_server import ROLE, free_port

TABLE = LabelTable((Label(1, "organ", (200, 100, 60)), Label(2, "lesion", (250, 250, 0))))


def _image(seed: int):
    arr = np.random.default_rng(seed).integers(-100, 200, (16, 16, 16)).astype(np.int16)
    vol = Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), modality="CT")
    ai = LabelMap((arr > 100).astype(np.uint8), vol.geometry, TABLE)
    return vol, ai


def _saved_case(store_root, seed=0) -> str:
    vol, ai = _image(seed)
    with CorrectionsStore(store_root) as st:
        return st.save(vol, ai, ai.copy(), reviewer="dr.ai")[0]


# A reviewer's process: opens the case for editing (app.actions.store_cases.take_case, as the GUI
# does), says what happened, then does what the test writes on its standard input.
_REVIEWER = r"""
import json, sys
sys.path.insert(0, {root!r})
from app.actions.store_cases import release_case, take_case
from core.errors import DelineateError
try:
    case = take_case({case!r}, {who!r}, {store!r}, timeout={timeout})
except DelineateError as exc:
    print(json.dumps({{"refused": str(exc)}}), flush=True)
    sys.exit(0)
print(json.dumps({{"holding": case.case_id}}), flush=True)
for line in sys.stdin:
    if line.strip() == "save":
        from store.corrections import CorrectionsStore
        with CorrectionsStore({store!r}) as st:
            fixed = case.corrected.copy()
            fixed.array[0, 0, 0] = 2
            print(json.dumps({{"saved": st.save(case.image, case.ai, fixed, reviewer={who!r},
                                                lock_token=case.lock.token)}}), flush=True)
    elif line.strip() == "release":
        print(json.dumps({{"released": release_case(case)}}), flush=True)
        break
"""


def _reviewer(store_root, case_id, who, timeout=120.0):
    code = _REVIEWER.format(root=str(ROOT), case=case_id, who=who, store=str(store_root), timeout=timeout)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "DELINEATE_DECODE_IN_PROCESS": "1"})


def _said(proc) -> dict:
    line = proc.stdout.readline()
    assert line, f"the reviewer's process said nothing (exit {proc.wait()})"
    return json.loads(line)


def test_two_reviewers_in_two_processes_never_hold_the_same_case(store_root):
    """dr.a opens the case in another process; dr.b (this process) is told who holds it."""
    case_id = _saved_case(store_root)
    a = _reviewer(store_root, case_id, "dr.a")
    try:
        assert _said(a) == {"holding": case_id}
        with pytest.raises(CaseLocked) as refused:
            take_case(case_id, "dr.b", store_root)
        assert f"case {case_id} is locked by dr.a on " in str(refused.value)
        assert "break the lock with a reason" in str(refused.value) and refused.value.info.pid == a.pid
        # the worklist shows who holds it; a save by someone else is refused, the holder's goes in
        (listed,) = list_cases(store_root)
        assert listed.locked_by.startswith("dr.a on ")
        vol, ai = _image(0)
        with CorrectionsStore(store_root) as st, pytest.raises(CaseLocked, match="locked by dr.a"):
            st.save(vol, ai, ai.copy(), reviewer="dr.b")
        a.stdin.write("save\n")
        a.stdin.flush()
        assert _said(a) == {"saved": [case_id, 2]}
        a.stdin.write("release\n")
        a.stdin.flush()
        assert _said(a) == {"released": True}
        assert a.wait(30) == 0
    finally:
        a.kill()
    case = take_case(case_id, "dr.b", store_root)  # released: the second reviewer gets it now
    assert case.corrected.array[0, 0, 0] == 2 and release_case(case)
    with CorrectionsStore(store_root) as st:
        assert st.lock_of(case_id) is None and st.latest(case_id)["n"] == 2 and st.check() == []
        assert [(e["action"], e["actor"]) for e in st.audit(case_id)] == [
            ("created", "dr.ai"), ("locked", "dr.a"), ("saved", "dr.a"), ("unlocked", "dr.a"),
            ("locked", "dr.b"), ("unlocked", "dr.b")]


def _killed_holder(store_root, case_id, timeout, host=None, hold=None):
    """dr.a opens the case in another process, saves a correction, holds it (by default longer than
    its timeout: only the heartbeat keeps it), and is killed -9. ``host``: the lock's host is made
    that one (a workstation elsewhere, whose processes this one cannot see)."""
    a = _reviewer(store_root, case_id, "dr.a", timeout=timeout)
    try:
        assert _said(a) == {"holding": case_id}
        if host:
            with CorrectionsStore(store_root) as st:
                st.index.execute("UPDATE locks SET host = ? WHERE case_id = ?", (host, case_id))
        a.stdin.write("save\n")
        a.stdin.flush()
        assert _said(a) == {"saved": [case_id, 2]}
        time.sleep(2.5 * timeout if hold is None else hold)
        with CorrectionsStore(store_root) as st:
            assert st.lock_of(case_id).holder == "dr.a"
        os.kill(a.pid, signal.SIGKILL)
        assert a.wait(10) == -signal.SIGKILL
    finally:
        a.kill()
    return time.monotonic()


def _intact(st, case_id):
    image, ai, fixed = st.load(case_id)
    assert fixed.array[0, 0, 0] == 2 and st.latest(case_id)["n"] == 2 and st.check() == []


def test_a_killed_holders_lock_expires_and_the_case_is_intact(store_root):
    """kill -9 of a process on another workstation holding a case: the lock is refused to others
    until it expires (its timeout after the last heartbeat), then taken over; the case reads back
    whole."""
    timeout = 1.5
    case_id = _saved_case(store_root)
    killed = _killed_holder(store_root, case_id, timeout, host="ws-elsewhere")
    with CorrectionsStore(store_root) as st:
        with pytest.raises(CaseLocked, match="locked by dr.a on ws-elsewhere"):
            st.lock(case_id, "dr.b")
        vol, ai = _image(0)
        with pytest.raises(CaseLocked):
            st.save(vol, ai, ai.copy(), reviewer="dr.b")
        while st.lock_of(case_id) is not None:
            assert time.monotonic() - killed < timeout + 5, "the dead holder's lock never expired"
            time.sleep(0.1)
        expired_after = time.monotonic() - killed
        token = st.lock(case_id, "dr.b")
        assert st.lock_of(case_id).holder == "dr.b" and expired_after <= timeout + 1
        _intact(st, case_id)
        assert [e["action"] for e in st.audit(case_id)][-2:] == ["lock expired", "locked"]
        assert "dr.a on ws-elsewhere" in st.audit(case_id)[-2]["detail"]
        assert "stopped renewing" in st.audit(case_id)[-2]["detail"]
        st.unlock(case_id, token)


def test_a_lock_whose_process_died_on_this_host_is_taken_over_at_once(store_root):
    """The same on the holder's own host: its process is known to be gone, so a restart reopens
    the case at once instead of waiting for the timeout."""
    case_id = _saved_case(store_root)
    _killed_holder(store_root, case_id, timeout=30.0, hold=0.5)
    with CorrectionsStore(store_root) as st:
        token = st.lock(case_id, "dr.b", timeout=600)
        assert st.lock_of(case_id).holder == "dr.b"
        _intact(st, case_id)
        assert "its process is gone" in st.audit(case_id)[-2]["detail"]
        st.unlock(case_id, token)


def test_the_audit_trail_lists_every_state_change(store_root):
    vol, ai = _image(1)
    fixed = ai.copy()
    with CorrectionsStore(store_root) as st:
        case_id, _ = st.save(vol, ai, fixed, reviewer="dr.a")
        st.assign(case_id, "dr.b", actor="lead")
        token = st.lock(case_id, "dr.b")
        fixed.array[1, 1, 1] = 2
        st.save(vol, ai, fixed, reviewer="dr.b", state="in_review", lock_token=token)
        st.set_state(case_id, "approved", actor="dr.b", lock_token=token)
        assert st.unlock(case_id, token) and not st.unlock(case_id, token)
        st.lock(case_id, "dr.c")
        with pytest.raises(DelineateError, match="needs a reason"):
            st.break_lock(case_id, "lead", " ")
        assert st.break_lock(case_id, "lead", "dr.c went home with it open").holder == "dr.c"
        st.set_state(case_id, "rejected", "leak into the bowel", actor="lead")
        st.assign(case_id, "", actor="lead")
        trail = st.audit(case_id)
        other = st.save(_image(2)[0], ai, ai.copy(), reviewer="dr.d")[0]
        assert [e["case_id"] for e in st.audit()] == [case_id] * len(trail) + [other]
    got = [(e["action"], e["actor"], e["old_state"], e["new_state"]) for e in trail]
    assert got == [("created", "dr.a", None, "in_review"), ("assigned", "lead", "in_review", "in_review"),
                   ("locked", "dr.b", "in_review", "in_review"), ("saved", "dr.b", "in_review", "in_review"),
                   ("state", "dr.b", "in_review", "approved"), ("unlocked", "dr.b", "approved", "approved"),
                   ("locked", "dr.c", "approved", "approved"), ("lock broken", "lead", "approved", "approved"),
                   ("state", "lead", "approved", "rejected"), ("assigned", "lead", "rejected", "rejected")]
    assert trail[1]["detail"] == "nobody -> dr.b" and trail[-1]["detail"] == "dr.b -> nobody"
    assert trail[3]["detail"] == "correction 2" and "dr.c went home with it open" in trail[7]["detail"]
    assert trail[8]["detail"] == "leak into the bowel"
    import socket

    assert {e["host"] for e in trail} == {socket.gethostname()} and all(e["login"] for e in trail)
    assert [e["at"] for e in trail] == sorted(e["at"] for e in trail) and trail[0]["at"].endswith("+00:00")


def test_the_worklist_of_cases_assigned_to_me(store_root):
    ids = [_saved_case(store_root, seed) for seed in range(4)]
    with CorrectionsStore(store_root) as st:
        st.assign(ids[0], "dr.a")
        st.assign(ids[2], "dr.a")
        st.assign(ids[3], "dr.b")
        st.set_state(ids[2], "approved")
    assert {c.id for c in list_cases(store_root, assignee="dr.a")} == {ids[0], ids[2]}
    assert [c.id for c in list_cases(store_root, state="approved", assignee="dr.a")] == [ids[2]]
    assert [c.assignee for c in list_cases(store_root, assignee="dr.b")] == ["dr.b"]
    assert list_cases(store_root, assignee="nobody") == []


# 20 savers forked from one process that imported everything once; each saves 50 corrections,
# spread over 4 images (so they contend for the same cases' numbering), marking the correction
# (saver k, save i) by one voxel set to 2 at flat index k * SAVES + i.
SAVERS, SAVES, IMAGES = 20, 50, 4
_SAVERS = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
os.environ["DELINEATE_DECODE_IN_PROCESS"] = "1"
import numpy as np
from tests.test_team_store import _image
from store.corrections import CorrectionsStore
import formats.io, formats.nifti, formats.itk_formats, store.source_meta, core.metrics, surface_distance  # noqa
import nibabel, SimpleITK, scipy.ndimage  # noqa
if {store!r}.startswith("postgresql://"):
    import psycopg, store.backend_postgres  # noqa
started = time.perf_counter()
pids = []
for k in range({savers}):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with CorrectionsStore({store!r}) as st:
                for i in range({saves}):
                    vol, ai = _image((k + i) % {images})
                    ai.array[:] = 0  # no label in common: no surface distances, the saves' slow part
                    fixed = ai.copy()
                    fixed.array.flat[k * {saves} + i] = 2
                    st.save(vol, ai, fixed, reviewer=f"saver-{{k}}", edits={{"saver": k, "i": i}})
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    pids.append(pid)
codes = [os.waitpid(pid, 0)[1] for pid in pids]
print(json.dumps({{"codes": codes, "seconds": time.perf_counter() - started}}))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def shm_store_root(request):
    """Like store_root, with the files on tmpfs where there is one (as the test server's database
    is): this test measures the store's concurrency, not the disk's fsync."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    files = Path(tempfile.mkdtemp(prefix="delineate-store-", dir=shm))
    if request.param == "sqlite":
        yield files
    else:
        server = request.getfixturevalue("pg_server")
        yield server.url(server.fresh(), files)
    shutil.rmtree(files, ignore_errors=True)


def test_twenty_concurrent_savers_lose_nothing(shm_store_root, capsys):
    store_root = shm_store_root
    code = _SAVERS.format(root=str(ROOT), store=str(store_root), savers=SAVERS, saves=SAVES, images=IMAGES)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * SAVERS, done.stderr[-3000:]
    checked = time.perf_counter()
    images = [_image(s)[0].array for s in range(IMAGES)]
    with CorrectionsStore(store_root) as st:
        cases = st.cases()
        assert len(cases) == IMAGES and st.check() == []  # every indexed file there, no file unindexed
        seen = set()
        for case in cases:
            image = st.load(case.id)[0]
            (which,) = [s for s in range(IMAGES) if np.array_equal(image.array, images[s])]
            rows = st.index.query("SELECT n, edits, fixed_file FROM corrections WHERE case_id = ? ORDER BY n",
                                  (case.id,))
            assert [r["n"] for r in rows] == list(range(1, len(rows) + 1))  # numbered without a gap or a repeat
            for r in rows:
                mark = json.loads(r["edits"])
                assert (mark["saver"] + mark["i"]) % IMAGES == which and (mark["saver"], mark["i"]) not in seen
                seen.add((mark["saver"], mark["i"]))
                fixed = read_labelmap(st.root / "cases" / case.id / r["fixed_file"], image, isolate=False)
                # the file holds exactly what that save wrote
                assert np.flatnonzero(fixed.array == 2).tolist() == [mark["saver"] * SAVES + mark["i"]]
        assert len(seen) == SAVERS * SAVES
    with capsys.disabled():
        print(f"\n{SAVERS} savers x {SAVES} saves ({st.index.kind}): {result['seconds']:.1f} s saving "
              f"({SAVERS * SAVES / result['seconds']:.0f} saves/s), {time.perf_counter() - checked:.1f} s checking")


def test_the_readme_url_over_tcp_and_clear_errors(pg_server, tmp_path):
    """The README's URL form (user:password@host:port/db?files=...) works; a wrong password, a wrong
    port, no files= or an unmounted share are one clear line each, within seconds, the password
    never shown."""
    import main

    files = tmp_path / "share"
    files.mkdir()
    url = pg_server.url(pg_server.fresh(), files, tcp=True)
    assert main.main(["store", "migrate", "--url", url]) == 0
    _saved_case(url)
    with CorrectionsStore(url) as st:
        assert st.index.kind == "postgresql" and st.schema_version() == 3 and len(st.cases()) == 1
        assert (files / "cases" / st.cases()[0].id / "image.nii.gz").is_file()
    # a reviewer with a role of their own, a member of the store's role (README)
    member = "dr_" + url.split("/")[3].split("?")[0][-6:]  # roles are cluster-wide: one per test database
    pg_server.admin(f"CREATE ROLE {member} LOGIN; GRANT {ROLE} TO {member}")
    db = url.split("/")[3].split("?")[0]
    with CorrectionsStore(pg_server.url(db, files).replace(f"//{ROLE}@", f"//{member}@")) as st:
        assert st.save(*_image(9), _image(9)[1].copy(), reviewer=member)[1] == 1 and len(st.cases()) == 2
        assert st.audit()[-1]["actor"] == member
    bad = [(url.replace(":not-a-secret@", ":wrong@"), "password authentication failed"),
           (url.replace(f":{pg_server.port}/", f":{free_port()}/"), "cannot connect to the team store"),
           (url.split("?")[0], r"needs \?files=/shared/folder"),
           (url.replace(f"files={files}", "files=relative/path"), "must be an absolute path"),
           (url.replace(f"files={files}", f"files={tmp_path / 'not-mounted'}"), r"is the share mounted here\?")]
    for wrong, why in bad:
        started = time.monotonic()
        with pytest.raises(DelineateError, match=why) as err:
            CorrectionsStore(wrong)
        assert time.monotonic() - started < 10 and "not-a-secret" not in str(err.value) and "wrong@" not in str(err.value)
    assert not (tmp_path / "not-mounted").exists()


def test_a_folder_store_never_imports_psycopg(tmp_path):
    code = ("import sys; from store.corrections import CorrectionsStore; import app.actions.store_cases as s; "
            f"CorrectionsStore({str(tmp_path / 'store')!r}).close(); s.list_cases({str(tmp_path / 'store')!r}); "
            "assert 'psycopg' not in sys.modules, 'psycopg imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_cli_assigns_breaks_a_lock_and_prints_the_trail(store_root, capsys):
    import main

    case_id = _saved_case(store_root)
    with CorrectionsStore(store_root) as st:
        st.lock(case_id, "dr.c")
    assert main.main(["store", "assign", case_id, "dr.a", "--by", "lead", "--store", str(store_root)]) == 0
    assert main.main(["store", "info", "--store", str(store_root)]) == 0
    assert f"locked by dr.c on " in capsys.readouterr().out
    with pytest.raises(SystemExit):  # --reason is required
        main.main(["store", "break-lock", case_id, "--store", str(store_root)])
    assert main.main(["store", "break-lock", case_id, "--reason", "left for the day", "--by", "lead",
                      "--store", str(store_root)]) == 0
    assert main.main(["store", "audit", case_id, "--store", str(store_root)]) == 0
    out = capsys.readouterr().out
    assert "broke the lock of dr.c" in out and "nobody -> dr.a" in out and "left for the day" in out
    assert [line.split()[2] for line in out.splitlines()[-4:]] == ["created", "locked", "assigned", "lock"]
