"""A card's anatomical count (``most_pieces``): a label keeps only its n largest connected pieces (a
body has two kidneys at most); other labels and the kept pieces are untouched voxel for voxel, and a
malformed rule is refused when the card is read."""
import json

import numpy as np
import pytest

from inference.card import CardError, ModelCard
from inference.registry import Registry
from inference.runner import most_pieces


def test_the_largest_pieces_stay_and_the_rest_go():
    labels = np.zeros((10, 40, 40), np.uint8)
    labels[2:8, 5:15, 5:15] = 3     # right kidney
    labels[2:8, 5:14, 25:35] = 3    # left kidney
    labels[4:5, 30:32, 30:32] = 3   # a stray piece in the bowel
    labels[0:2, 30:40, 0:10] = 1    # another label, in two pieces, not in the rule
    labels[8:10, 30:40, 0:10] = 1
    out, removed = most_pieces(labels, {"labels": {"3": 2}})
    assert removed == 4 and not out[4, 30:32, 30:32].any()
    keep = np.ones(labels.shape, bool)
    keep[4:5, 30:32, 30:32] = False
    assert np.array_equal(out[keep], labels[keep])
    same, none = most_pieces(out, {"labels": {"3": 2}})
    assert none == 0 and same is out


def test_a_bad_rule_is_refused(tmp_path):
    card = Registry().get("ct-torso-phantom")
    d = card.to_dict()
    for bad in ({"labels": {"9": 2}}, {"labels": {"3": 0}}, {"labels": []}, {"why": "x"}):
        d["most_pieces"] = bad
        (tmp_path / "card.json").write_text(json.dumps(d))
        with pytest.raises(CardError, match="most_pieces"):
            ModelCard.load(tmp_path / "card.json")
