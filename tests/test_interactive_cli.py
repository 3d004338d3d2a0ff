"""main.py interactive: prompts in LPS mm -> a binary label map on the image's exact grid."""
import json
import subprocess
import sys

import numpy as np
import pytest

from cli.entry import main
from core.volume import Volume
from formats.io import read_image, read_labelmap, write_image, write_labelmap
from tests.conftest import ROOT, rotation


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """An oblique, anisotropic MR-like image with two blobs, written as NIfTI."""
    d = tmp_path_factory.mktemp("interactive")
    rng = np.random.default_rng(5)
    shape = (16, 36, 40)
    zz, yy, xx = np.indices(shape)
    spacing = np.array([0.8, 0.9, 2.5])  # x, y, z
    def mm2(z, y, x):  # squared distance in mm from voxel (z, y, x)
        return ((zz - z) * spacing[2]) ** 2 + ((yy - y) * spacing[1]) ** 2 + ((xx - x) * spacing[0]) ** 2

    obj, other = mm2(8, 17, 12) <= 7.0 ** 2, mm2(8, 18, 30) <= 5.0 ** 2
    img = np.where(obj | other, 300.0, 100.0) + rng.normal(0, 15, shape)
    vol = Volume.from_array(img.astype(np.float32), spacing=tuple(spacing), origin=(-20.5, 11.25, -4.0),
                            direction=rotation(0.3, 0.1, -0.25), modality="MR")
    write_image(vol, d / "image.nii.gz")
    return d, read_image(d / "image.nii.gz"), obj, other


def _write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def _lps(vol, z, y, x):
    return [float(v) for v in vol.geometry.index_to_world([x, y, z])]


def test_round_trip_on_the_image_grid_then_refined(case):
    d, vol, obj, other = case
    prompts = _write(d / "p.json", {"points": [{"lps": _lps(vol, 8, 17, 12), "positive": True}]})
    out = run("interactive", str(d / "image.nii.gz"), str(d / "out.nii.gz"), "--prompts", prompts,
              "--engine", "classical")
    assert out.returncode == 0, out.stderr
    lm = read_labelmap(d / "out.nii.gz")
    assert lm.geometry.same_grid(vol.geometry, tol=1e-4)
    assert set(np.unique(lm.array)) == {0, 1}
    mask = lm.array > 0
    assert 2 * np.sum(mask & obj) / (mask.sum() + obj.sum()) > 0.9
    assert not mask[other].any()
    # the second object added by a click on it, the first kept (--previous, NRRD out)
    more = _write(d / "p2.json", {"points": [{"lps": _lps(vol, 8, 17, 12)}, {"lps": _lps(vol, 8, 18, 30)}]})
    out = run("interactive", str(d / "image.nii.gz"), str(d / "out2.nrrd"), "--prompts", more,
              "--previous", str(d / "out.nii.gz"), "--engine", "classical")
    assert out.returncode == 0, out.stderr
    both = read_labelmap(d / "out2.nrrd")
    assert both.geometry.same_grid(vol.geometry, tol=1e-4)
    assert np.array_equal(both.array[obj] > 0, mask[obj]) and (both.array[other] > 0).mean() > 0.9


@pytest.mark.parametrize("data, words", [
    ("outside", "lies outside the image"),
    ("{broken", "not valid JSON"),
    ({"points": []}, "no prompts"),
    ({"points": [{"lps": [1, 2]}]}, "expected [x, y, z]"),
])
def test_bad_prompts_one_line_and_exit_2(case, data, words, capsys):
    d, vol, _obj, _other = case
    path = d / "bad.json"
    if data == "outside":
        data = {"points": [{"lps": _lps(vol, 8, 17, 12)}, {"lps": _lps(vol, 8, 17, 80)}]}
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    code = main(["interactive", str(d / "image.nii.gz"), str(d / "never.nii.gz"), "--prompts", str(path),
                 "--engine", "classical"])  # in process: the same entry point, without a second start-up
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "bad.json" in lines[0] and words in lines[0]
    assert not (d / "never.nii.gz").exists()


def test_previous_on_another_grid_and_unknown_engine_are_refused(case, tmp_path, capsys):
    d, vol, _obj, _other = case
    from core.labels import LabelMap

    wrong = LabelMap(np.zeros((4, 5, 6), np.uint8), Volume.from_array(np.zeros((4, 5, 6))).geometry)
    write_labelmap(wrong, tmp_path / "wrong.nii.gz")
    prompts = _write(tmp_path / "p.json", {"points": [{"lps": _lps(vol, 8, 17, 12)}]})
    code = main(["interactive", str(d / "image.nii.gz"), str(tmp_path / "o.nii.gz"), "--prompts", prompts,
                 "--previous", str(tmp_path / "wrong.nii.gz")])
    assert code == 2 and "not on the image's grid" in capsys.readouterr().err
    code = main(["interactive", str(d / "image.nii.gz"), str(tmp_path / "o.nii.gz"), "--prompts", prompts,
                 "--engine", "magic"])
    assert code == 2 and "unknown interactive engine 'magic'" in capsys.readouterr().err
    assert not (tmp_path / "o.nii.gz").exists()


def test_nninteractive_says_why_it_is_not_usable_here(case, tmp_path, monkeypatch, capsys):
    """Only the unavailable path runs here: the nnInteractive package (which pins its own PyTorch)
    and its weights are not installed on the test machines."""
    import importlib.util

    from core.errors import DelineateError
    from inference.interactive import nninteractive_engine as nni
    from inference.interactive.engine import engines, make_engine

    assert "nninteractive" in engines()
    installed = importlib.util.find_spec("nnInteractive") is not None
    if installed:
        pytest.skip("nnInteractive is installed here: the unavailable path does not apply")
    monkeypatch.setenv(nni.WEIGHTS_ENV, str(tmp_path / "weights"))
    why = engines()["nninteractive"].available()
    assert why is not None and "nnInteractive package is not installed" in why
    with pytest.raises(DelineateError, match="interactive engine 'nninteractive' is not usable here"):
        make_engine("nninteractive")
    d, vol, _obj, _other = case
    prompts = _write(tmp_path / "p.json", {"points": [{"lps": _lps(vol, 8, 17, 12)}]})
    code = main(["interactive", str(d / "image.nii.gz"), str(tmp_path / "o.nii.gz"), "--prompts", prompts,
                 "--engine", "nninteractive"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not installed" in err[0]


def test_nninteractive_weights_setting(tmp_path, monkeypatch):
    """The weights check on its own (it runs after the package check)."""
    from inference.interactive import nninteractive_engine as nni

    monkeypatch.delenv(nni.WEIGHTS_ENV, raising=False)
    assert nni.WEIGHTS_ENV in nni.weights_problem()
    monkeypatch.setenv(nni.WEIGHTS_ENV, str(tmp_path / "model"))
    assert "does not exist" in nni.weights_problem()
    (tmp_path / "model" / "fold_0").mkdir(parents=True)
    assert "holds no checkpoint" in nni.weights_problem()
    (tmp_path / "model" / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    assert nni.weights_problem() is None
