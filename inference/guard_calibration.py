"""Calibrating a model's out-of-distribution envelope (inference.envelope) on in-range held-out
cases of its training generator: the intensity quantiles the network saw, and the highest one-pass
case uncertainty it had, with a margin. Written into the card, so the guard's thresholds travel with
the model. `main.py calibrate-guard MODEL` runs it."""
from __future__ import annotations

from core.progress import no_progress

#: the training recipe of each shipped model (inference.training.recipes)
RECIPE_OF = {"brain-tissue": "brain", "ct-torso-phantom": "ct", "us-lesion-2d": "us"}
SEED = 30_000  # apart from the seeds training (0...) and the cards' held-out metrics (10000, 20000) use


def calibrate_card(card, cases: int = 12, seed: int = SEED, device: str = "cpu", progress=no_progress,
                   cancel=None):
    """The card's envelope measured on ``cases`` held-out generated cases (not saved)."""
    from core.errors import DelineateError
    from core.progress import check
    from inference.envelope import calibrate
    from inference.runner import model_grid, model_input, segment
    from inference.training.recipes import RECIPES

    if card.id not in RECIPE_OF:
        raise DelineateError(f"{card.id}: no training generator is known for it; its envelope stays the "
                             "declared one (modality, dimension, spacing)")
    recipe = RECIPES[RECIPE_OF[card.id]]()
    done = []

    def infer(volume):
        check(cancel)
        progress(len(done) / cases, f"held-out case {len(done) + 1} of {cases}")
        done.append(1)
        return segment(volume, card, device=device)

    volumes = [case[0] for case in recipe.heldout(cases, seed)]
    return calibrate(card, volumes, lambda v: model_input(v, card, model_grid(v, card))[0], infer)
