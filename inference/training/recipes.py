"""The shipped default models: what they are trained on and how (see each generator's docstring)."""
from __future__ import annotations

import torch

from inference.training.train import Recipe, volume_case


def brain() -> Recipe:
    from inference.training.recipe_brain import brain as recipe

    return recipe()


def _np_rng(rng: torch.Generator):
    import numpy as np

    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))


def ct() -> Recipe:
    from inference.runner import normalise
    from inference.training.synth_ct import LABELS, Phantom, native_grid, training_patch

    spacing, patch = [3.0, 3.0, 4.0], [32, 64, 64]  # patch is (z, y, x) like the arrays
    norm = {"kind": "ct_window", "low": -1000.0, "high": 1500.0}

    def sample(rng):
        hu, labels = training_patch(_np_rng(rng), patch[::-1], spacing)
        return normalise(hu, norm), labels

    def heldout(n, seed):
        import numpy as np

        rng = np.random.default_rng(seed)
        cases = []
        for _ in range(n):
            grid = native_grid(rng)
            hu, labels = Phantom(rng).render(grid)
            cases.append(volume_case(hu, labels, grid, LABELS, "CT"))
        return cases

    return Recipe(
        id="ct-torso-phantom", version="1.0.0", name="CT thorax-abdomen (lung / liver / kidney / bone), phantom-trained",
        architecture="UNet", parameters={"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1},
        spatial_dims=3, modality="CT", patch_size=patch, spacing=spacing, labels=LABELS,
        normalisation=norm, iterations=800, batch=4, lr=2e-3,
        training_data=("Generated only: analytic thorax-abdomen phantoms (elliptic body with subcutaneous fat "
                       "-100 HU, soft tissue 40 HU, lungs -850 HU, liver 45-110 HU, kidneys 25-180 HU, spine "
                       "350/900 HU, ribs 650 HU) with random size, position, in-plane rotation, diaphragm "
                       "height, organ shapes and noise (4-25 HU), rendered at 3 x 3 x 4 mm. Held-out cases "
                       "use random native spacings (1.2-1.8 mm in-plane, 1.5-5 mm slices)."),
        notes=("Phantom shapes are simple ellipsoids and cylinders; real anatomy (vessels, bowel, heart, "
               "contrast phases, pathology, metal) was never seen."),
        sample=sample, heldout=heldout)


def us() -> Recipe:
    from inference.training.recipe_us import us as recipe

    return recipe()


RECIPES = {"brain": brain, "ct": ct, "us": us}
