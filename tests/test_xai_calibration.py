"""Per-model calibration on held-out generated cases: reliability bins and ECE that agree with the
voxels they came from, case uncertainty against Dice, recorded in the card and plotted."""
import json

import numpy as np
import pytest

from inference.card import ModelCard
from inference.registry import Registry
from inference.xai_calibration import _bins, _ece, measure, plot, spearman


def test_ece_of_known_bins():
    top = np.array([0.95] * 10 + [0.55] * 10)
    hit = np.array([1] * 9 + [0] + [1] * 5 + [0] * 5, bool)  # 90 % right at 0.95, 50 % at 0.55
    assert _ece(*_bins(top, hit)) == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    assert spearman([0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.85, 0.5]) == pytest.approx(-0.8)


def test_measured_on_held_out_cases_recorded_in_the_card_and_plotted(tmp_path):
    card = Registry().get("us-lesion-2d")
    cal = measure(card, cases=3)
    assert len(cal["uncertainty_dice"]) == 3 and sum(cal["voxels"]) > 1000
    assert all(0 <= u <= 1 and 0 <= d <= 1 for u, d in cal["uncertainty_dice"])
    n = np.asarray(cal["voxels"], float)
    acc, conf = np.asarray(cal["accuracy"]), np.asarray(cal["confidence"])
    assert cal["ece"] == pytest.approx(float(np.sum(n / n.sum() * np.abs(acc - conf))), abs=1e-3)
    assert 0 <= cal["ece_all_voxels"] <= cal["ece"] + 1e-6  # easy background dilutes it
    shown = n > 0
    edges = np.arange(10) / 10
    assert np.all((conf[shown] >= edges[shown] - 1e-6) & (conf[shown] <= edges[shown] + 0.1 + 1e-6))
    card.calibration = cal
    d = json.loads(json.dumps(card.to_dict()))
    assert ModelCard.from_dict(d).calibration == cal
    plot(cal, "test", tmp_path / "cal.png")
    assert (tmp_path / "cal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
