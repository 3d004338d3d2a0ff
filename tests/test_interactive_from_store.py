"""The promptable network's learning loop: approved corrections in the store -> objects cut out as the
engine sees them -> a fine-tuned version written with its parent, data and held-out comparison,
used by the engine only when promoted. Pinned fp32, one thread (the ``fp32`` fixture)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.labels import Label, LabelMap, LabelTable  # noqa: E402
from core.volume import Volume  # noqa: E402
from inference.interactive import net_model  # noqa: E402
from inference.interactive.from_store import objects, retrain, scene_of  # noqa: E402
from store.corrections import CorrectionsStore  # noqa: E402

TABLE = LabelTable((Label(1, "Cyst", (200, 100, 60)), Label(2, "Nodule", (60, 200, 90))))


def _case(rng, flat=False):
    """An image with two objects a physician kept (labels 1 and 2) and a stray one-voxel stroke."""
    shape = (1, 80, 96) if flat else (24, 40, 48)
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    img = rng.normal(100, 8, shape).astype(np.float32)
    cz = 0 if flat else 12
    cyst = ((z - cz) / 6.0) ** 2 + ((y - 20) / 8.0) ** 2 + ((x - 15) / 7.0) ** 2 < 1
    nodule = ((z - cz) / 5.0) ** 2 + ((y - 20) / 6.0) ** 2 + ((x - 34 - rng.integers(0, 6)) / 5.0) ** 2 < 1
    img[cyst] -= 50
    img[nodule] += 60
    labels = np.zeros(shape, np.uint8)
    labels[cyst], labels[nodule] = 1, 2
    labels[0, 0, 0] = 2  # a stray click of the brush: not an object
    vol = Volume.from_array(img, spacing=(0.5, 0.5, 1.0) if flat else (1.0, 1.0, 2.0), modality="US" if flat else "MR")
    return vol, LabelMap(labels, vol.geometry, TABLE), cyst


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = CorrectionsStore(tmp_path_factory.mktemp("store"), holdout_fraction=0.5)
    rng = np.random.default_rng(3)
    sides = {"train": 0, "holdout": 0}
    while min(sides.values()) < 1 or sum(sides.values()) < 3:
        vol, fixed, _cyst = _case(rng, flat=sum(sides.values()) % 3 == 2)
        ai = LabelMap(np.zeros_like(fixed.array), vol.geometry, TABLE)
        case_id, _n = s.save(vol, ai, fixed, reviewer="scripted", model_id="promptable-net", state="approved")
        sides[next(c.split for c in s.cases() if c.id == case_id)] += 1
    yield s
    s.close()


def test_objects_are_each_labels_largest_piece_on_one_side_of_the_split(store):
    train, held = objects(store, "train"), objects(store, "holdout")
    approved = {c.id: c.split for c in store.cases("approved")}
    assert len(train) == 2 * sum(v == "train" for v in approved.values())
    assert len(held) == 2 * sum(v == "holdout" for v in approved.values())
    for case in train + held:
        assert case.truth.sum() > 30 and not case.truth[0, 0, 0]  # the stray stroke is no object
        assert case.name.split()[-1] in ("Cyst", "Nodule")


def test_an_object_is_cut_out_as_the_engine_sees_it():
    rng = np.random.default_rng(0)
    vol, fixed, cyst = _case(rng)
    from inference.interactive.benchmark import Case

    case = Case("x", "cyst", vol, cyst)
    for _ in range(5):
        s = scene_of(case, rng)
        assert s.image.shape == s.target.shape == (48, 48, 48)
        side = np.ptp(np.argwhere(s.target), axis=0).max() + 1
        assert 0.25 * 48 <= side <= 0.8 * 48, side  # the object fills 1/3-3/4 of the region
        assert s.image[s.target].mean() < s.image[~s.target].mean() - 30  # the dark cyst is where the mask is
    flat = Case("x", "cyst", *_case(rng, flat=True)[::2])
    s = scene_of(flat, rng)
    assert s.image.shape == s.target.shape == (1, 64, 64) and s.target.any()
    ct = Volume.from_array(np.where(cyst, 3000.0, -3024.0).astype(np.float32), spacing=(1, 1, 2), modality="CT")
    s = scene_of(Case("x", "metal", ct, cyst), rng)
    assert s.image.min() >= net_model.CT_CLIP[0] and s.image.max() <= net_model.CT_CLIP[1]


def test_fine_tuning_writes_a_version_the_engine_uses_only_when_promoted(store, tmp_path, fp32, monkeypatch):
    monkeypatch.setenv("DELINEATE_MODELS", str(tmp_path / "models"))
    shipped = net_model.shipped_folder()
    card = retrain(store, steps=2, store_share=1.0, min_cases=100, log=lambda m: None)
    folder = tmp_path / "models" / net_model.MODEL_ID / card["version"]
    assert card["folder"] == str(folder) and (folder / "model.safetensors").is_file()
    written = json.loads((folder / net_model.CARD_NAME).read_text())
    assert written["parent_version"] == json.loads((shipped / net_model.CARD_NAME).read_text())["version"]
    assert "objects of approved physician corrections" in written["training_data"]
    m = {x["name"]: x["value"] for x in written["metrics"]}
    assert m["Held-out objects"] == len(objects(store, "holdout"))
    assert 0 <= m["DSC AUC before (parent)"] <= 1 and 0 <= m["DSC AUC after"] <= 1
    assert written["promoted"] is False and "NOT promoted" in written["limits"]  # too few to tell (min_cases)
    assert net_model.shipped_folder() == shipped  # kept, not used
    # the same version marked promoted (as a run that beat its parent is) becomes the engine's network
    written["promoted"] = True
    (folder / net_model.CARD_NAME).write_text(json.dumps(written))
    assert net_model.shipped_folder() == folder
    again = retrain(store, steps=1, store_share=1.0, log=lambda m: None)
    assert again["version"] != card["version"] and again["parent_version"] == card["version"]


def test_the_cli_fine_tunes_from_the_store(store, tmp_path, monkeypatch, capsys, fp32):
    from cli.entry import main as cli_main

    monkeypatch.setenv("DELINEATE_MODELS", str(tmp_path / "models"))
    assert cli_main(["train", "--from-store", "--base", "promptable-net", "--store", str(store.root),
                     "--iterations", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "held-out DSC AUC" in out and "NOT used" in out
    assert any((tmp_path / "out" / net_model.MODEL_ID).glob("*/model.safetensors"))


def test_an_empty_side_of_the_split_is_a_clear_error(tmp_path):
    from core.errors import DelineateError

    with CorrectionsStore(tmp_path / "empty") as empty:
        with pytest.raises(DelineateError, match="both sides of the split"):
            retrain(empty, steps=1, log=lambda m: None)
