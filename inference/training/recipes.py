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


#: each shipped model's default recipe (a version another recipe made is found by ``recipe_for``)
RECIPE_OF = {"brain-tissue": "brain", "ct-torso-phantom": "ct", "us-lesion-2d": "us"}


def recipe_for(model_id: str, version: str | None = None) -> str | None:
    """The name of the recipe that made ``model_id`` at ``version`` (e.g. brain-tissue 2.0.0 is
    brain_head's, not brain's): the recipe of that id and version, else the id's default one."""
    if model_id not in RECIPE_OF:
        return None
    if version is not None:
        for name, make in RECIPES.items():
            r = make()
            if r.id == model_id and r.version == version:
                return name
    return RECIPE_OF[model_id]
