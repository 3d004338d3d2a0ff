"""The card's anatomical constraint (inference.inside_body): pieces of a label lying outside the
patient go, pieces inside stay voxel for voxel, also where the field of view cuts the body and when
the array's first axis is not the axial one."""
import json

import numpy as np
import pytest

from core.geometry import Geometry
from inference.card import CardError, ModelCard
from inference.inside_body import remove_outside_body
from inference.registry import Registry


def _chest():
    """A hand-drawn chest: a body with two lungs, a foam pad under the back, a table under the pad.
    (hu, labels) [z, y, x]; both the lungs and the pad are labelled 1, another label (2) beside."""
    z, y, x = np.mgrid[0:12, 0:64, 0:64]
    hu = np.full((12, 64, 64), -1000, np.int16)
    labels = np.zeros(hu.shape, np.uint8)
    body = ((x - 32) / 24.0) ** 2 + ((y - 28) / 14.0) ** 2 < 1
    hu[body] = 40
    for cx in (22, 42):
        lung = ((x - cx) / 7.0) ** 2 + ((y - 27) / 8.0) ** 2 < 1
        hu[lung], labels[lung] = -850, 1
    pad = (y >= 43) & (y < 48) & (x >= 2) & (x < 62) & ~body
    hu[pad], labels[pad] = -700, 1
    hu[(y >= 50) & (y < 53) & (x >= 2) & (x < 62)] = 300
    labels[(y >= 20) & (y < 24) & (x >= 30) & (x < 34)] = 2
    return hu, labels, pad


def test_a_pad_called_lung_goes_and_the_lungs_stay():
    hu, labels, pad = _chest()
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    assert removed == int(pad.sum()) > 0
    assert not (out == 1)[pad].any()
    assert np.array_equal(out[~pad], labels[~pad])  # lungs and label 2 untouched


def test_a_pad_joined_to_the_lungs_is_cut_at_the_body_and_the_lungs_stay():
    """The network joins a pad it calls lung to the real lungs through the back (seen on a tryout
    phantom in bf16: 2.4 L of pad kept with the lungs as one piece, 62 % inside). The piece is
    mostly inside, so it stays as a piece; what lies more than CUT_MARGIN_MM outside the body goes."""
    from scipy import ndimage

    from inference.inside_body import CUT_MARGIN_MM

    hu, labels, pad = _chest()
    z, y, x = np.mgrid[0:12, 0:64, 0:64]
    lungs = (labels == 1) & ~pad
    for cx in (21, 42):  # a bridge from each lung down through the back to the pad
        labels[(y >= 27) & (y < 44) & (x >= cx) & (x < cx + 3) & (labels == 0)] = 1
    body = np.stack([ndimage.binary_fill_holes(k > -400) for k in hu])
    piece, n = ndimage.label(labels == 1)
    assert n == 1 and 0.5 < body[piece == 1].mean() < 0.8  # one piece, mostly inside: the piece rule keeps it
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    far = np.stack([ndimage.distance_transform_edt(~b, sampling=(5, 5)) > CUT_MARGIN_MM for b in body])
    assert (out == 1)[lungs].all() and np.array_equal(out[body], labels[body])  # inside, nothing changes
    assert not (out == 1)[far].any() and removed == int(((labels == 1) & far).sum()) > 0.5 * pad.sum()


def test_lungs_cut_by_the_field_of_view_stay():
    hu, labels, pad = _chest()
    hu, labels, pad = hu[:, :, 18:], labels[:, :, 18:], pad[:, :, 18:]  # through the left lung
    assert (labels[:, :, 0] == 1).any() and (hu[:, :, 0] > -400).any()
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    assert np.array_equal(out[~pad], labels[~pad])
    assert removed == int(pad.sum())


def test_a_lung_filling_a_corner_of_a_tight_field_stays():
    """A reconstruction field tighter than the body (as pydicom's CT_small: 85 mm round the spine,
    lung bases in two corners): the lung reaches two edges and no body brackets it on either."""
    hu, labels, _pad = _chest()
    hu, labels = hu[:, 25:43, 20:50], labels[:, 25:43, 20:50]  # the corner sits in the left lung
    assert labels[:, 0, 0].all() and not (hu[:, 0, :3] > -400).any() and not (hu[:, :3, 0] > -400).any()
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    assert removed == 0 and np.array_equal(out, labels)


@pytest.mark.parametrize("padding", [-1024, -3024])
def test_lungs_cut_by_a_reconstruction_circle_stay_and_the_pad_inside_it_goes(padding):
    """A patient wider than the scanner's reconstruction circle, padding written outside it: the
    lungs open onto the padding, not onto air round the patient (a large patient lost both lungs to
    the rule before). Found on the CT card's out-of-range case 2 (bodies 1.35-1.5x)."""
    hu, labels, pad = _chest()
    z, y, x = np.mgrid[0:12, 0:64, 0:64]
    outside = (x - 37) ** 2 + (y - 30) ** 2 > 20 ** 2  # cuts the left side of the chest
    hu[outside], labels[outside], pad = padding, 0, pad & ~outside
    lungs = (labels == 1) & ~pad
    assert pad.any() and (lungs & np.roll(outside, 1, axis=2)).any()  # a lung reaches the circle
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    assert removed == int(pad.sum())
    assert np.array_equal(out[~pad], labels[~pad])


def test_arms_at_the_edge_of_the_field_do_not_close_the_pad_under_them():
    """Arms beside the body, cut by the field of view, with the pad running under them to the edge."""
    hu, labels, pad = _chest()
    z, y, x = np.mgrid[0:12, 0:64, 0:64]
    for cx in (4, 59):
        arm = ((x - cx) / 20.0) ** 2 + ((y - 42) / 6.0) ** 2 < 1  # against the body, beside the pad
        hu[arm], labels[arm], pad[arm] = 40, 0, False
    assert (hu[:, 40, :] > -400).all()  # arm, body, arm: one object across the whole field
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    assert removed == int(pad.sum()) and not (out == 1)[pad].any()
    assert np.array_equal(out[~pad], labels[~pad])


def test_the_axial_axis_comes_from_the_direction():
    """Stored with the head-foot axis last in the array (sagittal slices): the same pieces go."""
    hu, labels, pad = _chest()
    hu_t, lab_t = hu.transpose(2, 1, 0).copy(), labels.transpose(2, 1, 0).copy()
    # index x (array axis 2) runs head-foot, index z (array axis 0) runs right-left
    g = Geometry((12, 64, 64), (5, 5, 5), (0, 0, 0), np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float))
    out, removed = remove_outside_body(lab_t, hu_t, g, [1], -400)
    assert removed == int(pad.sum())
    assert np.array_equal(out.transpose(2, 1, 0)[~pad], labels[~pad])


def test_nothing_to_remove_returns_the_labels_as_they_are():
    hu, labels, pad = _chest()
    labels[pad] = 0
    out, removed = remove_outside_body(labels, hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), [1], -400)
    assert removed == 0 and np.array_equal(out, labels)


def test_the_ct_default_declares_it_and_a_bad_rule_is_refused(tmp_path):
    from inference.training.recipes import RECIPES
    from inference.training.train import _card

    card = Registry().get("ct-torso-phantom", None)
    assert card.inside_body["labels"] == [1] and "chest wall" in card.inside_body["why"]
    assert _card(RECIPES["ct"]()).inside_body == card.inside_body  # the next CT version keeps it
    d = card.to_dict()
    d["inside_body"] = {"labels": [7], "threshold": -400}
    with pytest.raises(CardError, match="inside_body"):
        ModelCard.from_dict(json.loads(json.dumps(d)))


def test_the_runner_applies_the_cards_rule(fp32):
    """segment() on the drawn chest equals the network alone followed by the rule, and says how much
    it removed (whatever the network makes of so coarse an image)."""
    from core.volume import Volume
    from inference.runner import segment

    hu, _labels, _pad = _chest()
    vol = Volume(hu, Geometry.for_array_shape(hu.shape, (5, 5, 5)), modality="CT")
    card = Registry().get("ct-torso-phantom", None)
    alone = segment(vol, card, device="cpu", inside_body=False)
    ruled = segment(vol, card, device="cpu")
    expected, removed = remove_outside_body(alone.labels.array, hu, vol.geometry, [1], -400)
    assert np.array_equal(ruled.labels.array, expected)
    assert ruled.removed_outside_body == removed and alone.removed_outside_body == 0
