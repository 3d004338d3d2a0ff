import json
import subprocess
import sys

import numpy as np

from formats.io import read_image
from tests.conftest import ROOT


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0 and "info" in out.stdout and "convert" in out.stdout


def test_info_on_samples():
    out = run("info", "mni152-t1", "--json")
    d = json.loads(out.stdout)
    assert d["size_xyz"] == [197, 233, 189] and d["modality"] == "MR" and d["orientation"] == "RAS"
    out = run("info", "dicomdir-study")
    assert out.returncode == 0 and "series/stacks in" in out.stdout and "Routine Brain" in out.stdout
    out = run("info", "--samples")
    assert "us-cine" in out.stdout


def test_convert_sample_and_bad_input(tmp_path):
    out = run("convert", "ct-slice", str(tmp_path / "ct.nrrd"))
    assert out.returncode == 0, out.stderr
    v = read_image(tmp_path / "ct.nrrd")
    assert v.array.min() < -1000 and v.array.shape == (1, 512, 512)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"garbage")
    out = run("info", str(bad))
    assert out.returncode == 2 and "bad.nii.gz" in out.stderr and "Traceback" not in out.stderr


def test_convert_labels_keeps_table(tmp_path, labels_on):
    from formats.io import read_labelmap, write_labelmap

    write_labelmap(labels_on, tmp_path / "l.nii.gz")
    out = run("convert", "--labels", str(tmp_path / "l.nii.gz"), str(tmp_path / "l.seg.nrrd"))
    assert out.returncode == 0, out.stderr
    back = read_labelmap(tmp_path / "l.seg.nrrd")
    assert back.table == labels_on.table and np.array_equal(back.array, labels_on.array)
