"""The loop, end to end on generated data: the default ultrasound model makes systematic errors on
a shifted domain (hyperechoic lesions only) -> scripted "physician" corrections are approved into
the store -> retrain -> held-out Dice rises, the new version is registered and promoted. A run on
corrupted corrections is registered but not promoted."""
import shutil

import numpy as np
import pytest

from core.labels import LabelMap
from core.volume import Volume
from inference.registry import SHIPPED, Registry
from inference.runner import segment
from inference.training.from_store import retrain
from inference.training.synth_us import image
from store.corrections import CorrectionsStore


@pytest.fixture
def shifted_store(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(SHIPPED / "us-lesion-2d", models / "us-lesion-2d")
    reg = Registry([models])
    base = reg.get("us-lesion-2d")
    store = CorrectionsStore(tmp_path / "store")
    rng = np.random.default_rng(7)
    n_train = n_hold = 0
    while n_train < 10 or n_hold < 6:
        img, truth = image(rng, hyperechoic=True)
        vol = Volume.from_array(img[None], spacing=(0.3, 0.3, 1.0), modality="US")
        ai = segment(vol, base, device="cpu").labels
        fixed = LabelMap(truth[None].astype(np.uint8), vol.geometry, base.labels)  # the physician's correction
        case_id, _n = store.save(vol, ai, fixed, reviewer="scripted", model_id=base.id, model_version=base.version,
                                 state="approved")
        split = next(c.split for c in store.cases() if c.id == case_id)
        n_train, n_hold = n_train + (split == "train"), n_hold + (split == "holdout")
    yield store, reg, base, models
    store.close()


def test_corrections_retrain_improve_and_promote(shifted_store):
    store, reg, base, models = shifted_store
    card = retrain(store, base, models, iterations=300, versions=[c.version for c in reg.versions(base.id)],
                   log=lambda m: None)
    metrics = {m.name: m.value for m in card.metrics}
    assert metrics["Dice mean after"] > metrics["Dice mean before (parent)"] + 0.01, metrics
    assert card.promoted and card.parent_version == base.version and card.version == "1.1.0"
    assert Registry([models]).get("us-lesion-2d").version == "1.1.0"  # the new default
    assert "approved physician corrections" in card.training_data


def test_a_worse_run_is_kept_but_not_promoted(shifted_store):
    store, reg, base, models = shifted_store
    card = retrain(store, base, models, iterations=60, versions=[c.version for c in reg.versions(base.id)],
                   log=lambda m: None, corrupt=lambda x, y: (x, np.zeros_like(y)))  # labels wiped: a broken run
    assert not card.promoted and "NOT promoted" in card.notes
    assert Registry([models]).get("us-lesion-2d").version == base.version
    assert Registry([models]).get("us-lesion-2d", card.version).version == card.version  # kept
