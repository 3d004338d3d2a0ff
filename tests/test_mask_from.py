"""A card's ``mask_from`` (inference.mask_from): the network sees only the region another model
finds, its labels stop there, the region is worked out once per image content, and a card that
asks for it wrongly is refused. fp32 (the fp32 fixture)."""
import json

import numpy as np
import pytest
from scipy import ndimage

from core.volume import Volume
from inference import mask_from
from inference.card import CardError, ModelCard
from inference.registry import Registry
from inference.runner import model_grid, model_input, segment


def _ball_head():
    """A drawn head at 2 mm: bright 'brain' ball inside a darker shell and a bright rim (skin)."""
    z, y, x = np.mgrid[0:48, 0:56, 0:48]
    r = np.sqrt(((x - 24) / 20.0) ** 2 + ((y - 28) / 24.0) ** 2 + ((z - 24) / 20.0) ** 2)
    rng = np.random.default_rng(0)
    img = np.where(r < 0.75, 110.0 + 30 * (np.sin(x / 2.0) > 0), np.where(r < 0.9, 20.0, np.where(r < 1.0, 160.0, 0.0)))
    return Volume.from_array((img + rng.normal(0, 3, img.shape)).clip(0).astype(np.float32), spacing=(2, 2, 2), modality="MR")


def test_the_network_sees_and_labels_only_the_region(fp32):
    vol, card = _ball_head(), Registry().get("brain-tissue")
    assert card.mask_from and card.mask_from["version"] == "2.0.0"
    region = mask_from.region(vol, card.mask_from)
    assert 0 < region.sum() < region.size
    outer = segment(vol, Registry().get("brain-tissue", "2.0.0")).labels.array > 0
    grown = ndimage.distance_transform_edt(~outer, sampling=(2, 2, 2)) <= card.mask_from["margin_mm"]
    assert np.array_equal(region, ndimage.binary_fill_holes(grown))
    labels = segment(vol, card).labels.array
    assert labels[region].any() and not labels[~region].any()
    masked = mask_from.masked(vol, card.mask_from)
    assert not masked.array[~region].any() and np.array_equal(masked.array[region], vol.array[region])
    # explanations and the guard take the same input as the run
    grid = model_grid(vol, card)
    assert np.array_equal(model_input(vol, card, grid), model_input(masked, Registry().get("brain-tissue", "1.1.0"), grid))


def test_the_region_is_reused_until_the_voxels_change(fp32):
    vol, rule = _ball_head(), Registry().get("brain-tissue").mask_from
    first = mask_from.region(vol, rule)
    assert mask_from.region(vol, rule) is first  # the guard and explanations ask again
    vol.array[:] = np.flip(vol.array, axis=1)  # another time point swapped in place
    assert mask_from.region(vol, rule) is not first


@pytest.mark.parametrize("rule, message", [({"model": "brain-tissue", "version": "2.0.0", "margin_mm": -1}, "mask_from"),
                                           ({"model": "brain-tissue", "margin_mm": 2}, "mask_from")])
def test_a_wrong_rule_is_refused(rule, message):
    d = json.loads(json.dumps(Registry().get("brain-tissue").to_dict()))
    d["mask_from"] = rule
    with pytest.raises(CardError, match=message):
        ModelCard.from_dict(d)


def test_the_model_dialog_says_what_runs_before_and_after_the_network():
    from gui.model_dialog import card_text

    reg = Registry()
    brain, ct = card_text(reg.get("brain-tissue")), card_text(reg.get("ct-torso-phantom"))
    assert "Region first:</b> inside what brain-tissue v2.0.0 finds, grown 2 mm" in brain
    assert "After the network:</b> A lung lies inside the chest wall" in ct
    assert "After the network:</b> A body has two kidneys at most" in ct
    assert "Region first" not in ct and "After the network" not in brain
