"""Calibrating a model's out-of-distribution envelope (inference.envelope) on in-range held-out
cases of its training generator: the intensity quantiles the network saw, and the highest one-pass
case uncertainty it had, with a margin. Written into the card, so the guard's thresholds travel with
the model. `main.py calibrate-guard MODEL` runs it."""
from __future__ import annotations

from core.progress import no_progress

SEED = 30_000  # apart from the seeds training (0...) and the cards' held-out metrics (10000, 20000) use


def calibrate_card(card, cases: int = 12, seed: int = SEED, device: str = "cpu", progress=no_progress,
                   cancel=None):
    """The card's envelope measured on ``cases`` held-out generated cases (not saved)."""
    from core.errors import DelineateError
    from core.progress import check
    from inference.envelope import calibrate, run_and_measure
    from inference.training.recipes import RECIPES, recipe_for

    recipe = recipe_for(card.id, card.version)
    if recipe is None:
        raise DelineateError(f"{card.id}: no training generator is known for it; its envelope stays the "
                             "declared one (modality, dimension, spacing)")
    volumes = [case[0] for case in RECIPES[recipe]().heldout(cases, seed)]

    def measured():
        for n, volume in enumerate(volumes):
            check(cancel)
            progress(n / cases, f"held-out case {n + 1} of {cases}")
            yield run_and_measure(volume, card, device=device)

    return calibrate(card, measured())
