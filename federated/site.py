"""What a site does in a federation, without Flower: read its approved corrections (train side of
the store's fixed split, mixed with the model's generator as local retraining does), fine-tune the
global parameters locally, score models on its held-out side, and decide - with the same rule as
local retraining (core.promotion) - whether the federated model becomes its default."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from core.errors import DelineateError
from core.progress import CancelToken, ProgressFn, no_progress
from federated import local_training, parameters
from inference.card import Metric, ModelCard


def require_store(store) -> None:
    """A folder that is not there is a typo, not a new empty store (a URL is the store's to check)."""
    from store.location import is_url

    if not is_url(store) and not Path(store).is_dir():
        raise DelineateError(f"{store}: no corrections store there")


class Site:
    def __init__(self, store, model_id: str, version: Optional[str] = None,
                 models_root: Optional[Path] = None) -> None:
        """``store``: the site's corrections store (a folder or a PostgreSQL URL, as everywhere);
        ``models_root``: where this site's registry keeps versions (default: the user's model
        folder); the base model ``model_id`` ``version`` must be known there or shipped."""
        from inference.registry import SHIPPED, Registry, user_models_dir
        from inference.training.from_store import corrections_recipe
        from store.corrections import CorrectionsStore

        self.models_root = Path(models_root) if models_root else user_models_dir()
        self.registry = Registry([SHIPPED, self.models_root])
        self.base = self.registry.get(model_id, version)
        require_store(store)
        with CorrectionsStore(store) as opened:
            self.recipe, self.train_cases, hold = corrections_recipe(opened, self.base)
            self.held = self.recipe.heldout(len(hold), 0)  # read now: the store closes here

    @property
    def n_train(self) -> int:
        return len(self.train_cases)

    def network(self, arrays: Optional[list[np.ndarray]] = None, card: Optional[ModelCard] = None):
        from inference.runner import load_model

        net = load_model(card or self.base, torch.device("cpu"))
        return parameters.load_arrays(net, arrays) if arrays is not None else net

    def dice(self, net, card: Optional[ModelCard] = None) -> np.ndarray:
        """Mean Dice over labels, one value per held-out case (store order)."""
        from inference.training.train import case_dice

        return case_dice(net, card or self.base, self.held).mean(axis=1)

    def fit(self, arrays, iterations: int, lr: float, seed: int, proximal_mu: float = 0.0,
            progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None):
        """(new arrays, scalar metrics) after local fine-tuning from ``arrays``; the metrics include
        the received model's held-out Dice, measured before training."""
        net = self.network(arrays)
        received = float(self.dice(net).mean())
        loss = local_training.fit(net, self.recipe, iterations, lr, seed, proximal_mu, progress, cancel)
        return parameters.to_arrays(net), {"num-examples": self.n_train, "train-loss": loss,
                                           "dice-received": received, "held-out-cases": len(self.held)}

    def decide(self, arrays, version: str, rounds: int, sites: int, strategy: str, min_cases: Optional[int] = None):
        """Score the federated model against this site's current default on its held-out cases;
        keep it as ``version`` in the site's registry, promoted only if better beyond noise.
        Returns (card, scalar metrics for the server)."""
        from core.promotion import MIN_CASES, decide

        current = self.registry.get(self.base.id)
        before = self.dice(self.network(card=current), current)
        net = self.network(arrays)
        after = self.dice(net)
        d = decide(before, after, min_cases=MIN_CASES if min_cases is None else min_cases)
        data = f"{d.n} held-out approved corrections at this site (fixed split)"
        from federated.versions import keep

        card = keep(net, self.base, version, self.models_root, promoted=d.promote, metrics=[
            Metric("Dice mean before (site default)", d.before, data + f", v{current.version}"),
            Metric("Dice mean after", d.after, data),
            Metric("Dice change (paired mean)", d.difference, data),
            Metric("Dice change 95% CI low", d.ci_low, data + ", paired bootstrap"),
            Metric("Dice change 95% CI high", d.ci_high, data + ", paired bootstrap"),
            Metric("Held-out cases", float(d.n), data)],
            training_data=f"{self.base.training_data} Federated fine-tuning ({strategy}, {rounds} rounds, {sites} "
                          f"sites) on each site's approved corrections mixed with the generated data above; no "
                          f"image left a site.",
            notes=f"{self.base.notes} Federated from v{self.base.version} ({strategy}, {rounds} rounds, {sites} "
                  f"sites). At this site against its default v{current.version}: {d.summary()}; "
                  + ("promoted to default." if d.promote else f"NOT promoted: {d.reason}."))
        return card, {"dice-before": d.before, "dice-after": d.after, "dice-change": d.difference,
                      "ci-low": d.ci_low, "ci-high": d.ci_high, "held-out-cases": d.n,
                      "promoted": int(d.promote), "num-examples": d.n}
