"""Federated retraining over Flower's simulation engine (Ray): the deployment's ServerApp and
ClientApp, each simulated node reading the site store its partition-id names. Three sites, 1 round
of 2 local iterations (plumbing, not learning). The aggregated model must be the sites' local
fine-tunings (Site.fit, the seed the ClientApp derives) averaged by their training-case counts, as
FedAvg defines it: the simulation runs the deployment's algorithm, not an approximation of it.
fp32 (DELINEATE_CPU_BF16=0, inherited by Ray's workers); one thread a site, as Ray gives each actor.
One Ray CPU: a single actor runs the sites in turn (one worker start-up instead of two). Measured on the
2-core machine shared with other jobs (load 10): 106 s (131 s with two actors); the simulation alone
took 40 s at load 7."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("ray")

from inference.card import ModelCard  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.test_federated_data import DOMAINS, make_store  # noqa: E402

ITERATIONS, LR, SEED = 2, 5e-4, 3


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    return [make_store(root / kind, kind, n_train=2 + i, n_holdout=4, seed=300 + i) for i, kind in enumerate(DOMAINS)]


def _ray_processes() -> int:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum(("raylet" in line or "gcs_server" in line) for line in out.splitlines())


@pytest.mark.timeout(300)
def test_simulation_keeps_the_fedavg_of_the_sites_local_fine_tunings(tmp_path, stores, monkeypatch):
    import torch

    from federated import parameters
    from federated.simulation import simulate
    from federated.site import Site

    from inference import device as devices

    monkeypatch.setenv("DELINEATE_CPU_BF16", "0")  # the simulated sites' processes
    monkeypatch.setattr(devices, "_FAST_BF16", False)  # this one, which read the CPU's flags already
    summary, models = simulate(stores, tmp_path, {"rounds": 1, "local-iterations": ITERATIONS, "lr": LR,
                                                  "seed": SEED, "timeout": 300.0}, cpus=1)
    assert _ray_processes() == 0  # Ray is shut down afterwards

    # the server kept the aggregated model as a new version: parent, rounds, sites, per-site Dice
    kept = ModelCard.load(Path(summary["folder"]) / "card.json")
    assert Path(summary["folder"]).parent.parent == tmp_path / "server-models"
    assert kept.parent_version == "1.0.0" and kept.version == summary["version"] == "1.1.0-fed"
    assert "FedAvg, 1 rounds, 3 sites" in kept.training_data and not kept.promoted
    names = {m.name for m in kept.metrics}
    assert {f"Site {i} Dice {w}" for i in (1, 2, 3) for w in ("before (its default)", "after")} <= names
    assert summary["rounds"] == 1 and len(summary["sites"]) == 3
    assert all("error" not in s and s["held-out-cases"] == 4 for s in summary["sites"])
    assert sorted(s["store"] for s in summary["sites"]) == sorted(str(Path(s).resolve()) for s in stores)
    # each simulated site decided with its own store and kept the version in its own model folder
    for m in models:
        assert (m / "us-lesion-2d" / "1.1.0-fed" / "card.json").is_file()

    # the same round by hand: each site fine-tunes from the base with the ClientApp's seed, FedAvg
    # weights the results by their training cases (2, 3, 4)
    torch.set_num_threads(1)
    sites = [Site(s, "us-lesion-2d", None, tmp_path / "reference") for s in stores]
    base = parameters.to_arrays(sites[0].network())
    fits = [s.fit(base, ITERATIONS, LR, SEED * 1000 + 1)[0] for s in sites]
    weights = np.array([s.n_train for s in sites], float)
    assert list(weights) == [2, 3, 4]
    expected = [sum(w * f[k] for w, f in zip(weights, fits)) / weights.sum() for k in range(len(base))]
    got = parameters.to_arrays(sites[0].network(card=kept))
    moved = max(float(np.abs(e - b).max()) for e, b in zip(expected, base))
    assert moved > 1e-4  # the round changed the model, so the comparison below means something
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


def test_simulate_on_the_command_line_names_a_missing_store():
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "federated", "simulate", "--store", "/nonexistent/a",
                          "--rounds", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert "/nonexistent/a" in out.stderr and "no corrections store" in out.stderr
