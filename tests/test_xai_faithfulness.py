"""Faithfulness of the saliency maps on the bundled MNI152 T1 (a crop of it, so each test takes
seconds) and on generated ultrasound: mass inside the brain, deletion curves against random
deletion, window seams, and maps that do not depend on the machine's precision."""
import numpy as np
import pytest
import torch

from core.volume import Volume
from inference import device as devices
from inference.registry import Registry
from inference.runner import load_model, segment
from inference.xai import explain
from inference.xai_checks import (brain_mask, deletion_curves, insertion_curves, mass_inside, mass_near, region_first,
                                  seam_ratio)
from tests.test_xai import _us_case


def _crop(volume, start_zyx, size_zyx):
    (z, y, x), (nz, ny, nx) = start_zyx, size_zyx
    g = volume.geometry
    return Volume.from_array(np.ascontiguousarray(volume.array[z:z + nz, y:y + ny, x:x + nx]), spacing=g.spacing,
                             origin=g.index_to_world((x, y, z)), direction=g.direction, modality="MR")


@pytest.fixture(scope="module")
def brain():
    """Brain model and a 110 x 124 x 160 mm crop of the MNI152 T1 through the ventricles (two
    overlapping windows on the model's 2 mm grid, so there is a window border to look for), with
    the model's own segmentation in fp32.

    The model is the default's tissue network alone (brain-tissue v1.1.0). The default (v3.0.0)
    runs that network inside the brain v2.0.0 finds; on the whole template that region holds 99.7 %
    of the brain, so its input is the template's, but on this crop (the brain cut on four sides)
    v2.0.0 finds only 76 % of it: the masking, not the maps, then decides the deletion curves
    (deleting at random fell below deleting everything). The maps explain the same network."""
    from formats import samples
    from formats.io import read_image

    card = Registry().get("brain-tissue", "1.1.0")
    net = load_model(card, torch.device("cpu"))
    vol = _crop(read_image(samples.path("mni152-t1")), (40, 50, 18), (110, 124, 160))
    was = devices._FAST_BF16
    devices._FAST_BF16 = False
    try:
        labels = segment(vol, card, net=net, device="cpu").labels.array
    finally:
        devices._FAST_BF16 = was
    return card, net, vol, labels


@pytest.fixture(scope="module")
def maps(brain):
    """Explanations by (method, label), made once per module: the mass and deletion tests share them."""
    card, net, vol, labels = brain
    made = {}

    def get(method, label):
        if (method, label) not in made:
            made[method, label] = explain(vol, card, label, method, roi=labels == label, net=net, device="cpu",
                                          ig_steps=4)
        return made[method, label]

    return get


@pytest.mark.parametrize("method", ["gradcam", "occlusion", "ig"])
def test_mass_inside_the_brain_near_the_segment_and_no_seams(brain, maps, method):
    """The template is skull-stripped: outside the brain there is nothing the network could use.
    Before (Gaussian-averaged windows, activations not referred to an empty image) Grad-CAM of
    white matter put 84 % of its mass outside the brain on the whole template. Measured on this
    crop (CSF, grey, white matter): inside the brain Grad-CAM 0.91 0.80 0.89, occlusion 1.00 1.00
    1.00, IG 1.00 1.00 1.00 (all must reach 0.7); within 5 mm of the segment Grad-CAM 0.90 0.84
    0.94, occlusion 0.73 0.99 0.78, IG 0.71 0.96 0.78 (>= 0.6); seam ratio Grad-CAM 0.89 1.05 0.82,
    occlusion 0.94 1.03 0.90, IG 1.06 1.00 0.86 (<= 1.2). Occlusion with brain-tissue 3.0.0 (the same
    network inside the region v2.0.0 finds, 76 % of this crop's brain): inside 1.00 1.00 1.00, within
    5 mm 0.64 0.95 0.72, seam 1.05 0.94 1.05, the same maps with DELINEATE_CPU_BF16=0 and =1. Before
    (each 36 mm block's drop spread evenly over it): 0.40 0.94 0.64 within 5 mm, a blocky map."""
    card, net, vol, labels = brain
    inside = brain_mask(vol)
    for label in (1, 2, 3):
        roi = labels == label
        e = maps(method, label)
        assert mass_inside(e.values, inside) >= 0.7, (method, label, mass_inside(e.values, inside))
        assert mass_near(e.values, roi, vol.geometry.spacing, 5.0) >= 0.6, (method, label)
        assert seam_ratio(e, card) <= 1.2, (method, label, seam_ratio(e, card))


def test_maps_do_not_depend_on_the_machines_precision(brain, monkeypatch):
    """Explanations run in fp32 whatever the segmentation uses: with bf16 autocast on or off the
    same region gives the same map (the lead measured ultrasound Grad-CAM mass near the lesion of
    0.27 in fp32 against 1.00 in bf16 before)."""
    card, net, vol, labels = brain
    maps = []
    for fast in (False, True):
        monkeypatch.setattr(devices, "_FAST_BF16", fast)
        maps.append(explain(vol, card, 3, "gradcam", roi=labels == 3, net=net, device="cpu").values)
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)


@pytest.fixture(scope="module")
def controls(brain):
    """Per label, the deletion ratio of deleting the segment's own blocks first (``region_first``):
    what the measure can show at all for that region."""
    card, net, vol, labels = brain
    return {label: deletion_curves(vol, card, net, None, labels == label, FRACTIONS, order=region_first(
        vol, card, labels == label), label=label, randoms=RANDOMS)["ratio"] for label in (1, 2, 3)}


FRACTIONS = (0, 0.1, 0.25, 0.5, 1)
RANDOMS = 3  # random orders averaged: one order moved Grad-CAM's white-matter ratio by 0.04


@pytest.mark.parametrize("method", ["gradcam", "occlusion", "ig"])
def test_deleting_the_salient_blocks_first_beats_random_deletion(brain, maps, controls, method):
    """Deletion curve (Petsiuk et al.): blurring away (32 mm Gaussian, ``deleted_image``) the 8 mm
    blocks a faithful map ranks first must lower the label's probability in the region faster than
    blurring random blocks: the curve's area above the all-deleted level at most 0.8 x that of
    random deletion, for every tissue. The check is valid for a label only where deleting the
    segment itself first beats random deletion (the control; measured on this crop, CSF, grey,
    white matter: -1.03 0.28 0.68); where it does not, the test fails saying so.

    Measured, three random orders averaged (the same with DELINEATE_CPU_BF16=0 and =1): Grad-CAM
    -0.91 0.72 0.76, occlusion -0.85 0.20 0.38 (v1.1.0; 64 mm blocks, each block's drop placed by the voxels'
    first-order shares; 36 mm blocks -0.78 0.22 0.39), IG -0.97 0.28 0.45 (one order, seeds 0 / 1:
    Grad-CAM white matter 0.76 / 0.72). Occlusion with each block's drop spread evenly over it: 36 mm
    blocks 0.61 0.49 0.54, 44 mm 0.66 0.48 0.59 here but CSF 0.80 with the brain-tissue 2.0.0
    candidate, 32 mm 0.23 0.40 0.30 but 13x one inference on the whole template.
    Before: raw areas (no floor) at an 8 mm blur, where grey matter kept 0.63 of its 0.80
    probability with everything deleted and not even the control beat random (0.97, white matter
    1.04); occlusion with 64 mm blocks filled with the window's mean: 0.76-0.90 0.98-1.00 0.46-0.49
    at 32 mm (its blocks too coarse to rank 8 mm deletion blocks)."""
    card, net, vol, labels = brain
    for label in (1, 2, 3):
        assert controls[label] < 1, (f"deletion check invalid for label {label}: deleting the segment itself first "
                                     f"does not beat random deletion (ratio {controls[label]:.2f})")
        d = deletion_curves(vol, card, net, maps(method, label), labels == label, FRACTIONS, randoms=RANDOMS)
        assert d["ratio"] <= 0.8, (method, label, d["ratio"], d["salient_curve"], d["random_curve"])


INSERTION_LABELS = (1, 2)  # CSF and grey matter: where putting the segment itself back first beats chance


@pytest.fixture(scope="module")
def insertion_controls(brain):
    """Per label, the insertion ratio of putting the segment's own blocks back first."""
    card, net, vol, labels = brain
    return {label: insertion_curves(vol, card, net, None, labels == label, FRACTIONS, order=region_first(
        vol, card, labels == label), label=label, randoms=RANDOMS)["ratio"] for label in INSERTION_LABELS}


@pytest.mark.parametrize("method", ["occlusion", "ig"])
def test_putting_the_salient_blocks_back_first_beats_random_insertion(brain, maps, insertion_controls, method):
    """Insertion curve (Petsiuk et al.), deletion's mirror: from the image with every block blurred
    away, put back the blocks the map ranks first; the label's probability in the region must rise
    faster than when random blocks are put back (ratio of the areas above the all-deleted level),
    by at least half of what putting the segment itself back first gains over chance (the control:
    bar = 1 + (control - 1) / 2). It judges where the control says it can: CSF 4.09, grey matter
    1.46-1.54 over seeds 0-3 (bars 2.5 and 1.23-1.27); white matter 0.99-1.03, no better than
    chance, so white matter is judged by deletion only. Measured on this crop, seeds 0-3: occlusion
    CSF 4.52, grey matter 1.36-1.43 (white matter 1.15-1.20); IG 4.58, 1.39-1.46 (1.09-1.14); a
    random map (3 draws) CSF 1.15-1.30, grey matter 1.08-1.11, so a bar of 1 would pass it.

    Grad-CAM is not asserted: it passes for CSF (4.47) but ranks grey and white matter below chance
    (0.92, 0.84), with every layer and reference tried (the 1/4-resolution layer 0.97 / 0.81; no
    reference activation 1.38 / 0.98 but CSF 0.82 and a seam of 1.80); its description in the app
    says so. On the whole template CSF passes for all three (2.20-2.25, control 2.26) and grey
    matter cannot be judged (partly restored images score below the all-blurred one)."""
    card, net, vol, labels = brain
    for label in INSERTION_LABELS:
        control = insertion_controls[label]
        assert control > 1.2, (f"insertion check invalid for label {label}: putting the segment back first "
                               f"does not beat chance ({control:.2f})")
        d = insertion_curves(vol, card, net, maps(method, label), labels == label, FRACTIONS, randoms=RANDOMS)
        assert d["ratio"] >= 1 + (control - 1) / 2, (method, label, d["ratio"], control, d["salient_curve"],
                                                      d["random_curve"])
