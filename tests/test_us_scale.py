"""The ultrasound default holds up at any pixel count: its card names a pixel size (0.3 mm), the
runner brings every 2D image to it, and the model was trained over 0.08-0.6 mm native pixels.
Judged on tests/us_phantom.py (independent of the training generator: other lesion shapes, speckle
model, gains and grey maps), a 40-60 mm field of view imaged at 128-800 px, hypo-, anechoic and
hyperechoic lesions, and on the issue's own case (the training generator at 480 px).

Pinned fp32 (``fp32`` fixture). Measured on 10 other phantom seeds per size (100-109, kinds cycled):
lesion Dice 128 px 0.944 +- 0.087 (one case 0.70: the lesion found, small false positives in a
washed-out power-law image at 0.45 mm pixels), 256 px 0.962 +- 0.021, 480 px 0.968 +- 0.022, 800 px
0.971 +- 0.013 (mean +- SD of single cases). The test averages 6 cases per size, whose SD is about
0.035 at 128 px and under 0.01 above: the bar (0.85, from issue 17) lies 2.7 SDs under the mean at
128 px and more than 10 above it."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.metrics import dice
from core.volume import Volume
from inference.registry import Registry
from inference.runner import load_model, model_grid, segment
from inference.training.synth_us import LABELS, PIXEL_MM, image
from tests.us_phantom import phantom

KINDS = ("hypo", "hyper", "cyst")


@pytest.fixture(scope="module")
def us_model():
    card = Registry().get("us-lesion-2d")
    return card, load_model(card, torch.device("cpu"))


def _dice(card, net, img, mask, pixel_mm):
    vol = Volume.from_array(img[None], spacing=(pixel_mm, pixel_mm, 1.0), modality="US")
    return dice(segment(vol, card, net=net, device="cpu").labels.array[0] == 1, mask == 1)


@pytest.mark.parametrize("size", [128, 256, 480, 800])
def test_lesion_dice_at_every_pixel_count(us_model, fp32, size):
    card, net = us_model
    scores = []
    for seed in range(1, 7):
        img, mask, px = phantom(np.random.default_rng([size, seed]), size, kind=KINDS[seed % 3])
        scores.append(_dice(card, net, img, mask, px))
    assert np.mean(scores) >= 0.85, (size, scores)


def test_the_generators_own_image_at_480_px(us_model, fp32):
    """The case issue 17 reports: one 38.4 mm field (128 px at 0.3 mm in training) at 480 px."""
    card, net = us_model
    scores = [_dice(card, net, *image(np.random.default_rng(seed), 480, pixel_mm=38.4 / 480), 38.4 / 480)
              for seed in (0, 1, 2)]
    assert np.mean(scores) >= 0.85, scores


def test_a_2d_card_with_a_pixel_size_resamples_in_plane_only_then():
    card = Registry().get("us-lesion-2d")
    assert card.spacing[:2] == [PIXEL_MM, PIXEL_MM]
    assert [lab.name for lab in card.labels] == [lab.name for lab in LABELS]
    vol = Volume.from_array(np.zeros((1, 480, 360), np.uint8), spacing=(0.08, 0.08, 1.0), origin=(5, -3, 2))
    g = model_grid(vol, card)
    assert g.size == (97, 129, 1) and np.allclose(g.spacing, [0.3, 0.3, 1.0])  # 28.7 x 38.3 mm at 0.3 mm
    assert np.allclose(g.origin, vol.geometry.origin) and np.allclose(g.direction, vol.geometry.direction)
    native = replace(card, spacing=None)
    assert model_grid(vol, native).same_grid(vol.geometry)  # no pixel size in the card: the image's grid
