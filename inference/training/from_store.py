"""Retrain a model on the physicians' approved corrections (the human-in-the-loop step).

Fine-tunes from the current model on the store's training-side cases, mixed with the model's own
generated data when its recipe is known (so it does not forget), evaluates before and after on the
store's held-out side (a split fixed per case, so rounds compare), and registers a new version
whose card records the parent, the data and both figures. It is promoted - becomes the default -
only if it beats its parent on the held-out corrections by more than noise can explain (a paired
bootstrap interval of the per-case Dice change lies above zero, over enough cases: core.promotion)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from core.errors import DelineateError
from core.promotion import MIN_CASES, decide
from core.progress import CancelToken, ProgressFn, no_progress
from core.resample import resample
from inference.card import Metric, ModelCard
from inference.registry import next_minor_version
from inference.runner import load_model, model_grid, model_input, to_model_axes
from inference.training.recipes import recipe_for
from inference.training.train import Recipe, case_dice, train



def corrections_recipe(store, base: ModelCard, mix_generated: float = 0.5) -> tuple[Recipe, list, list]:
    """A Recipe whose samples come from approved train-side corrections (and the base recipe's
    generator), plus the (train, holdout) case lists."""
    approved = store.cases("approved")
    train_cases = [c for c in approved if c.split == "train"]
    hold_cases = [c for c in approved if c.split == "holdout"]
    if not train_cases or not hold_cases:
        raise DelineateError(f"retraining needs approved corrections on both sides of the split "
                             f"(train {len(train_cases)}, held-out {len(hold_cases)})")
    prepared = []
    for c in train_cases:
        image, _ai, fixed = store.load(c.id)
        grid = model_grid(image, base)
        x = to_model_axes(model_input(image, base, grid), base)[0]
        y = resample(fixed.array, image.geometry, grid, order=0)
        y = y[0] if base.spatial_dims == 2 else to_model_axes(y[None].astype(np.float32), base)[0].astype(np.uint8)
        prepared.append((x, y))
    generated = None
    recipe = recipe_for(base.id, base.version)
    if recipe is not None and mix_generated > 0:
        from inference.training.recipes import RECIPES

        generated = RECIPES[recipe]()

    def sample(rng: torch.Generator):
        if generated is not None and torch.rand(1, generator=rng).item() < mix_generated:
            return generated.sample(rng)
        x, y = prepared[int(torch.randint(0, len(prepared), (1,), generator=rng))]
        return x, y

    def heldout(_n, _seed):
        out = []
        for c in hold_cases:
            image, _ai, fixed = store.load(c.id)
            out.append((image, fixed))
        return out

    recipe = Recipe(id=base.id, version=base.version, name=base.name, architecture=base.architecture,
                    parameters=base.parameters, spatial_dims=base.spatial_dims, modality=base.modality,
                    patch_size=list(base.patch_size), labels=base.labels, normalisation=base.normalisation,
                    training_data=base.training_data, sample=sample, heldout=heldout, spacing=base.spacing,
                    orientation=base.orientation, iterations=200, batch=4 if base.spatial_dims == 2 else 2,
                    lr=5e-4, notes=base.notes, inside_body=base.inside_body, mask_from=base.mask_from,
                    most_pieces=base.most_pieces)
    return recipe, train_cases, hold_cases


def retrain(store, base: ModelCard, out_root: Path, iterations: int = 200, progress: ProgressFn = no_progress,
            cancel: Optional[CancelToken] = None, log: Callable[[str], None] = print,
            corrupt: Optional[Callable] = None, versions: Optional[list[str]] = None,
            min_cases: int = MIN_CASES, seed: int = 1) -> ModelCard:
    """Fine-tune ``base`` on the store's approved corrections; returns the new (maybe unpromoted) card.
    ``corrupt`` (tests) may alter training samples to simulate a bad run."""
    recipe, train_cases, hold_cases = corrections_recipe(store, base)
    if corrupt is not None:
        inner = recipe.sample
        recipe.sample = lambda rng: corrupt(*inner(rng))
    held = recipe.heldout(len(hold_cases), 0)
    before = case_dice(load_model(base, torch.device("cpu")), base, held)
    version = next_minor_version(base.version, versions or [])
    card = train(recipe, out_root, iterations, seed=seed, heldout_cases=0, progress=progress,
                 cancel=cancel, log=log, parent=base, version=version, lr=recipe.lr)
    after = case_dice(load_model(card, torch.device("cpu")), card, held)
    decision = decide(before.mean(axis=1), after.mean(axis=1), min_cases=min_cases)
    data = f"{len(hold_cases)} held-out approved corrections in the store (fixed split)"
    card.metrics = [Metric("Dice mean before (parent)", decision.before, data),
                    Metric("Dice mean after", decision.after, data),
                    Metric("Dice change (paired mean)", decision.difference, data),
                    Metric("Dice change 95% CI low", decision.ci_low, data + ", paired bootstrap"),
                    Metric("Dice change 95% CI high", decision.ci_high, data + ", paired bootstrap"),
                    Metric("Held-out cases", float(decision.n), data)] + [
        Metric(f"Dice {lab.name}", float(after[:, i].mean()), data) for i, lab in enumerate(base.labels)]
    card.training_data = (f"{base.training_data} Fine-tuned on {len(train_cases)} approved physician corrections "
                          f"from the Delineate store" + (" mixed 1:1 with the generated data above." if
                                                        recipe_for(base.id) else "."))
    card.promoted = decision.promote
    card.notes += (f" Retrained from v{base.version}: {decision.summary()}; "
                   + ("promoted to default." if card.promoted else f"NOT promoted: {decision.reason}."))
    card.save(card.folder)
    log(f"[{card.id}] v{card.version}: {decision.summary()}; "
        f"{'promoted' if card.promoted else 'not promoted: ' + decision.reason}")
    return card
