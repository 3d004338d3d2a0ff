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


def test_python_m_cli_runs_commands_but_not_the_viewer():
    out = subprocess.run([sys.executable, "-m", "cli", "info", "--samples"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0 and "mni152-t1" in out.stdout
    out = subprocess.run([sys.executable, "-m", "cli", "gui"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.startswith("error: the viewer opens from main.py")


def test_option_lists_are_the_enumerations(capsys):
    from argparse import ArgumentParser

    from app.actions.models import IMPORT_NORMALISATIONS
    from cli.parser import NAMES, build_parser
    from export.case import FORMATS
    from inference.card import DEVICES
    from inference.xai_text import METHODS

    def choices(p: ArgumentParser, dest):
        return tuple(next(a for a in p._actions if a.dest == dest).choices)

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert tuple(sub) == NAMES
    assert choices(sub["export"], "format") == tuple(FORMATS)
    assert choices(sub["import-model"], "norm") == IMPORT_NORMALISATIONS
    assert choices(sub["segment"], "device") == DEVICES == choices(sub["explain"], "device")
    assert choices(sub["explain"], "method") == METHODS
    only = next(a for a in build_parser("info")._actions if a.dest == "command").choices
    assert only["info"]._actions[1:] and not only["export"]._actions[1:]  # the others are names only


def test_import_refusals_are_one_line(tmp_path, monkeypatch, capsys):
    import main

    monkeypatch.setenv("DELINEATE_MODELS", str(tmp_path / "models"))
    assert main.main(["import-model", "torchscript", str(tmp_path / "m.pt"), "--id", "x"]) == 2
    assert capsys.readouterr().err == "error: torchscript import needs an id, a patch size and a modality\n"
    assert main.main(["import-model", "onnx", str(tmp_path / "m.onnx"), "--id", "x", "--modality", "CT",
                      "--labels", "liver"]) == 2
    assert capsys.readouterr().err.startswith("error: labels are VALUE=NAME pairs")
    assert not (tmp_path / "models").exists()
