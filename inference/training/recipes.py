"""The shipped default models: what they are trained on and how (see each generator's docstring)."""
from __future__ import annotations

from inference.training.train import Recipe


def brain() -> Recipe:
    from inference.training.recipe_brain import brain as recipe

    return recipe()


def brain_head() -> Recipe:
    from inference.training.recipe_brain import brain_head as recipe

    return recipe()


def ct() -> Recipe:
    from inference.training.recipe_ct import ct as recipe

    return recipe()


def us() -> Recipe:
    from inference.training.recipe_us import us as recipe

    return recipe()


RECIPES = {"brain": brain, "brain_head": brain_head, "ct": ct, "us": us}
