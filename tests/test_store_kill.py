"""The store under SIGKILL: a child process forks savers and kills each at a random moment of its
saves, 100 times; afterwards the index is intact, every listed case reads back, the litter of the
killed saves is reported by check() (never listed as a case) and removed by repair(). On both
backends (SQLite, and a PostgreSQL started by the tests: tests.pg_server)."""
import json
import subprocess
import sys
import time

import numpy as np

from store.corrections import CorrectionsStore
from tests.conftest import ROOT

KILLS = 100

# Imports once, then forks a saver per round (milliseconds, not a fresh interpreter) and kills it
# after a random delay spanning a few saves; nothing native runs in this process before forking.
_KILLER = r"""
import json, os, random, signal, sys, time
sys.path.insert(0, {root!r})
os.environ["DELINEATE_DECODE_IN_PROCESS"] = "1"
import numpy as np
from core.labels import Label, LabelMap, LabelTable
from core.volume import Volume
from store.corrections import CorrectionsStore
# loaded before forking, so each saver starts saving at once
import formats.io, formats.nifti, formats.itk_formats, store.source_meta, core.metrics, surface_distance  # noqa
import nibabel, SimpleITK, scipy.ndimage  # noqa
if {store!r}.startswith("postgresql://"):
    import psycopg, store.backend_postgres  # noqa

TABLE = LabelTable((Label(1, "organ", (200, 100, 60)), Label(2, "lesion", (250, 250, 0))))

def saver(store_dir, seed, images=12):
    rng = np.random.default_rng(seed)
    store = CorrectionsStore(store_dir)
    while True:
        image_seed = int(rng.integers(0, images))  # a few images: new cases and new versions of old ones
        arr = np.random.default_rng(image_seed).integers(-100, 200, (16, 16, 16)).astype(np.int16)
        vol = Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), modality="CT")
        ai = LabelMap((arr > 100).astype(np.uint8), vol.geometry, TABLE)
        fixed = ai.copy()
        fixed.array[rng.integers(0, 16, 3).tolist()[0]] = 2
        store.save(vol, ai, fixed, reviewer="r", model_id="m", model_version="1")

if {kills} == 0:  # save until killed: repair() runs meanwhile in the test
    print("saving", flush=True)
    saver({store!r}, 0, images=1000)
random.seed({seed})
store_dir, stats = {store!r}, {{"kills": 0, "corrections_after_kill": []}}
for k in range({kills}):
    pid = os.fork()
    if pid == 0:
        try:
            saver(store_dir, k)
        finally:
            os._exit(1)
    # every fourth kill within 5 ms of the fork, before its first save can commit: saves of these tiny
    # cases take milliseconds now, and the uniform delays alone left too few kills amid a first save
    time.sleep(random.uniform(0.0, {max_delay} if k % 4 else 0.005))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    stats["kills"] += 1
    with CorrectionsStore(store_dir) as st:  # opened after the fork: no connection crosses it
        assert st.index.integrity() == [], k
        stats["corrections_after_kill"].append(st.index.one("SELECT COUNT(*) AS n FROM corrections")["n"])
print(json.dumps(stats))
"""


def test_hundred_sigkills_during_saves(store_root, tmp_path):
    started = time.perf_counter()
    store_dir = tmp_path / "store"  # the files; the index is in store_root
    CorrectionsStore(store_root).close()
    code = _KILLER.format(root=str(ROOT), store=str(store_root), seed=0, kills=KILLS, max_delay=0.3)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["kills"] == KILLS
    counts = stats["corrections_after_kill"]
    assert counts[-1] > 20 and np.count_nonzero(np.diff([0] + counts) == 0) > 5  # kills landed between and amid saves

    killed_s = time.perf_counter() - started
    store = CorrectionsStore(store_root)
    assert store.index.integrity() == []
    cases = store.cases()
    folders = {p.name for p in (store_dir / "cases").iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert {c.id for c in cases} <= folders
    n_corrections = 0
    for case in cases:  # every listed case and every correction of it reads back
        image, ai, fixed = store.load(case.id)
        assert image.modality == "CT" and image.array.shape == (16, 16, 16)
        assert fixed.array.shape == image.array.shape and set(np.unique(fixed.array)) <= {0, 1, 2}
        for n in range(1, store.latest(case.id)["n"] + 1):
            store.load(case.id, n)
            n_corrections += 1
    assert n_corrections == counts[-1]
    litter = [p for p in store.check() if not p.startswith("missing") and not p.startswith("index")]
    assert litter == store.check() and litter  # killed saves leave litter only, never a missing or broken record
    orphan_folders = [p for p in litter if p.startswith("unreferenced folder")]
    assert len(folders) - len(cases) == len(orphan_folders)  # orphan folders are never counted as cases
    removed = store.repair()
    assert len(removed) == len(litter) and store.check() == []
    assert len(store.cases()) == len(cases)
    print(f"{KILLS} kills in {killed_s:.1f} s, checked in {time.perf_counter() - started - killed_s:.1f} s: {len(cases)} cases, {n_corrections} corrections committed, "
          f"{len(litter)} litter items removed by repair ({len(orphan_folders)} orphan case folders)")
    store.close()


def test_repair_never_touches_a_save_in_progress(store_root):
    """repair() in a loop while another process saves: no committed correction ever points to a
    file that repair removed."""
    store = CorrectionsStore(store_root)
    code = _KILLER.format(root=str(ROOT), store=str(store_root), seed=0, kills=0, max_delay=0)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saving"
        end, repairs = time.perf_counter() + 4.0, 0
        while time.perf_counter() < end:
            store.repair()
            repairs += 1
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    store.repair()  # the killed saver's litter
    assert store.check() == [] and repairs > 20
    cases = store.cases()
    assert len(cases) > 5
    for case in cases:
        store.load(case.id)
    store.close()
