"""Delineate as an installed application: the wheel installs into a fresh venv and its ``delineate``
command works from another folder without the checkout; the log file holds versions and errors but
no patient data.

The wheel test takes about a minute on 2 cores (it segments the sample twice). Set
DELINEATE_SKIP_PACKAGING=1 to skip it; it is reported as skipped, never passed."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from core.volume import Volume
from formats.dicom.write import write_series
from tests.conftest import ROOT

CANARY = "CANARY"


def _env(tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELINEATE_") and k != "PYTHONPATH"}
    env.update(DELINEATE_STORE=str(tmp / "store"), DELINEATE_MODELS=str(tmp / "models"),
               DELINEATE_RECOVERY=str(tmp / "recovery.npz"), DELINEATE_LOG_DIR=str(tmp / "logs"),
               DELINEATE_CPU_BF16="0", **extra)
    return env


def _requirements() -> list[str]:
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def test_the_distribution_depends_on_what_requirements_txt_pins():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == _requirements()
    assert project["scripts"]["delineate"] == project["gui-scripts"]["delineate-gui"] == "main:main"


def _mr_phantom() -> Volume:
    z, y, x = np.mgrid[0:12, 0:40, 0:36]
    head = ((x - 18) / 15.0) ** 2 + ((y - 20) / 17.0) ** 2 + ((z - 6) / 8.0) ** 2 < 1
    arr = np.where(head, 300, 0).astype(np.int16)
    arr[head & (((x - 18) / 8.0) ** 2 + ((y - 20) / 9.0) ** 2 < 1)] = 500
    return Volume.from_array(arr, spacing=(2.0, 2.0, 3.0), origin=(-36.0, -40.0, 0.0), modality="MR")


def test_the_log_holds_versions_and_errors_but_no_patient_data(tmp_path):
    series = tmp_path / f"{CANARY}^PATIENT_MR"  # exports often name folders after the patient
    write_series(_mr_phantom(), series, patient_name=f"{CANARY}^PATIENT", patient_id=f"{CANARY}-ID",
                 series_description=f"{CANARY} head")
    env = _env(tmp_path)
    seg = subprocess.run([sys.executable, str(ROOT / "main.py"), "segment", str(series), str(tmp_path / "out.nii.gz")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert seg.returncode == 0, seg.stderr[-2000:]
    (series / "notes.dcm").write_text("not DICOM")
    bad = subprocess.run([sys.executable, str(ROOT / "main.py"), "info", str(series / "notes.dcm")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and CANARY in bad.stderr  # the user is told which file...
    text = (tmp_path / "logs" / "delineate.log").read_text()
    assert "start segment" in text and "versions: python" in text and "torch" in text
    assert "ERROR" in text and "info: FormatError: <path>.dcm" in text
    assert CANARY.lower() not in text.lower()  # ...the log never names it


@pytest.mark.skipif(os.environ.get("DELINEATE_SKIP_PACKAGING") == "1", reason="DELINEATE_SKIP_PACKAGING=1")
def test_the_wheel_installs_into_a_fresh_venv_and_runs_from_another_folder(tmp_path):
    src = tmp_path / "src"  # a copy: setuptools' build/ must not carry stale files into the wheel
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", "tests", "bench", "docs"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "wheels"), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheels").glob("delineate-*.whl"))

    venv = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # third-party packages from the dev venv (offline), after the venv's own: no checkout on the path
    (Path(site) / "dev-venv-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                           str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _env(tmp_path, QT_QPA_PLATFORM="offscreen")
    where = subprocess.run([str(py), "-c", "import main, core, cli, gui, resources, inference.registry as r, "
                            "formats.samples as s; print(main.__file__, resources.__file__, r.SHIPPED, s.INDEX)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    for path in where.stdout.split():
        assert Path(path).resolve().is_relative_to(venv.resolve()) and Path(path).exists(), path

    delineate = str(venv / "bin" / "delineate")
    info = subprocess.run([delineate, "info", "mni152-t1"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert info.returncode == 0 and "MR" in info.stdout, info.stderr[-2000:]
    seg = subprocess.run([delineate, "segment", "mni152-t1", "out.nii.gz"], cwd=work, env=env, capture_output=True,
                         text=True, timeout=300)
    assert seg.returncode == 0, seg.stderr[-2000:]
    import nibabel as nib

    labels = np.asarray(nib.load(work / "out.nii.gz").dataobj)
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3}

    test = subprocess.run([delineate, "--selftest"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-2000:]
    assert "6/6 checks passed" in test.stdout and "FAIL" not in test.stdout
    assert str(venv) in test.stdout  # the summary names the installed interpreter
    assert (venv / "bin" / "delineate-gui").exists()


def test_paths_in_logged_messages_keep_only_their_suffix():
    from app.logs import scrub
    from core.errors import FormatError

    exc = FormatError("/data/DOE JOHN/CT 2/IM0001.dcm", "not a DICOM file")
    assert scrub(str(exc), [exc.path]) == "<path>.dcm: not a DICOM file"
    assert scrub(r"C:\Users\DOE^JOHN\scan.nii.gz: truncated") == "<path>.nii.gz: truncated"
    assert scrub("cannot write 'out/DOE_JOHN/mask.seg.nrrd' (disk full)") == "cannot write '<path>.seg.nrrd' (disk full)"
    assert scrub("model brain-tissue v1.1.0 on cpu") == "model brain-tissue v1.1.0 on cpu"
