"""The CT default on thorax-abdomen phantoms drawn by code that shares nothing with its training
generator (tests/ct_torso_phantom.py: other body outline, organ shapes and proportions, vessels,
pancreas, gallbladder, colon, a curved two-plate table), at native grids the runner resamples.

Pinned fp32, one thread, deterministic. Issue 17's bars (mean Dice >= 0.85 over lung, liver,
kidney and bone; lung outside the body < 1 % of the lung) are asserted on ten phantoms (seeds 1-10
at 2 x 2 x 4 mm): v2.2.0 with its card's rules scores 0.869 +- 0.018 (SE 0.006, lowest 0.846), so
the bar is 3.3 standard errors under the mean (at 1.5 x 1.5 x 3 mm, seeds 100-109: 0.865 +- 0.022).
The network alone still calls some table-pad foam beside the body lung and leaves stray kidney-like
pieces; its card's anatomical rules (inference.inside_body, then at most two kidney pieces) remove
them, and both are measured here. The comparison with v1.0.0 runs on the first two. See the README. What v2.x did achieve
over v1.0.0 is asserted plainly, with margins several times the spread between phantoms."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from core.metrics import dice
from inference.registry import Registry
from inference.inside_body import remove_outside_body
from inference.runner import load_model, most_pieces, segment
from tests.ct_torso_phantom import torso

SEEDS = tuple(range(1, 11))
COMPARED = 2  # v1.0.0 runs on the first two


def body_mask(hu: np.ndarray) -> np.ndarray:
    """The patient: the largest connected non-air object, holes (lungs, airways) filled per slice."""
    comp, n = ndimage.label(hu > -400)
    body = comp == 1 + int(np.argmax(ndimage.sum_labels(np.ones_like(comp), comp, range(1, n + 1))))
    return np.stack([ndimage.binary_fill_holes(s) for s in body])


def _row(card, labels, vol, truth):
    scores = {lab.name: dice(labels == lab.value, truth == lab.value) for lab in card.labels}
    lung = labels == 1
    return scores, float((lung & ~body_mask(vol.array)).sum()) / max(int(lung.sum()), 1)


def _measure(card, net, cases):
    """[(Dice per label, lung share outside the body)] of the network alone, and after the card's
    rules when it has them, as the runner applies them (inside_body, then most_pieces; see
    tests/test_inside_body.py and tests/test_most_pieces.py)."""
    alone, ruled = [], []
    for vol, truth in cases:
        labels = segment(vol, card, net=net, device="cpu", inside_body=False).labels.array
        alone.append(_row(card, labels, vol, truth))
        if card.inside_body:
            rule = card.inside_body
            labels = remove_outside_body(labels, vol.array, vol.geometry, rule["labels"], rule["threshold"])[0]
            if card.most_pieces:
                labels = most_pieces(labels, card.most_pieces)[0]
            ruled.append(_row(card, labels, vol, truth))
    return alone, ruled


@pytest.fixture(scope="module")
def results():
    """{version: [(Dice per label, lung fraction outside the body)] per phantom}, both models fp32;
    "network" is the default's network alone, "default" the default with its card's rule."""
    from inference import device

    fast, threads = device._FAST_BF16, torch.get_num_threads()
    device._FAST_BF16 = False  # the fp32 fixture's pinning, for a module-scoped run
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        cases = [torso(np.random.default_rng(seed), spacing=(2.0, 2.0, 4.0), size=(240, 240, 96)) for seed in SEEDS]
        reg = Registry()
        out = {}
        for version in ("1.0.0", None):
            card = reg.get("ct-torso-phantom", version)
            alone, ruled = _measure(card, load_model(card, torch.device("cpu")), cases[:COMPARED] if version else cases)
            if version is None:
                out["network"], out["default"] = alone, ruled
            else:
                out[version] = alone
        return out
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
        device._FAST_BF16 = fast


def _mean(rows):
    return float(np.mean([np.mean(list(scores.values())) for scores, _ in rows]))


def test_the_default_is_the_retrained_model():
    assert Registry().get("ct-torso-phantom").version == "2.2.0"


def test_it_generalises_far_better_than_v1(results):
    """Measured on seeds 1-3 at 2 x 2 x 4 mm: v1.0.0 mean Dice 0.27 / 0.41 / 0.23, v2.0.0 0.75 / 0.73 / 0.68,
    v2.1.0 0.81 / 0.74 / 0.75; v2.2.0 with its card's rules 0.85 / 0.85."""
    new, old = _mean(results["network"][:COMPARED]), _mean(results["1.0.0"])
    assert new >= old + 0.15, (new, old)
    assert new >= 0.65, results["network"]


def test_less_of_the_air_outside_the_body_is_called_lung(results):
    """Share of 'lung' outside the body, seeds 1-3 at 2 x 2 x 4 mm: v1.0.0 0.85 / 0.76 / 0.84, v2.0.0
    0.02 / 0.30 / 0.23, v2.1.0's network 0.02 / 0.31 / 0.29 (0.005-0.18 on ten phantoms at 1.5 x 1.5 x
    3 mm): much less, not yet < 1 %. With its card's rule: none, and lung Dice rises with it."""
    network = np.mean([outside for _s, outside in results["network"][:COMPARED]])
    old = np.mean([outside for _s, outside in results["1.0.0"]])
    assert network < old / 2, (network, old)
    assert all(outside < 0.01 for _s, outside in results["default"]), results["default"]
    for (alone, _), (ruled, _) in zip(results["network"], results["default"]):
        assert ruled["Lung"] >= alone["Lung"] and all(ruled[k] == alone[k] for k in ("Liver", "Bone"))
        assert ruled["Kidney"] >= alone["Kidney"]  # at most two kidneys: only stray pieces go


def test_issue_17_bars(results):
    rows = results["default"]
    assert len(rows) == 10 and all(outside < 0.01 for _s, outside in rows), rows
    assert _mean(rows) >= 0.85, [round(float(np.mean(list(scores.values()))), 3) for scores, _ in rows]
