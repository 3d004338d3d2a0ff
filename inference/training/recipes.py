"""The shipped default models: what they are trained on and how (see each generator's docstring)."""
from __future__ import annotations

from functools import lru_cache

import torch

from inference.training.train import Recipe, volume_case


@lru_cache(maxsize=1)
def _brain_data():
    from inference.training.synth_brain import BrainData

    return BrainData(spacing=2.0)


def brain() -> Recipe:
    from inference.training.synth_brain import LABELS, NORMALISATION

    def sample(rng):
        return _brain_data().sample(rng, synthetic=0.3)

    def heldout(n, seed, synthetic=0.0):
        rng = torch.Generator().manual_seed(seed)
        d = _brain_data()
        return [volume_case(*d.sample(rng, synthetic=synthetic), d.grid, LABELS, "MR") for _ in range(n)]

    def synthetic_contrast(net, card):
        from inference.card import Metric
        from inference.training.train import evaluate

        from core.metrics import dice
        from inference.runner import segment
        from inference.training.synth_brain import template_labels

        scores = evaluate(net, card, heldout(4, 20_000, synthetic=1.0))
        out = [Metric("Dice mean, random tissue contrasts", sum(scores.values()) / len(scores),
                      "4 held-out generated cases with random per-tissue intensities (seed 20000)")]
        t1, truth = template_labels()
        seg = segment(t1, card, net=net, device="cpu")
        data = ("the MNI152 T1 template itself at 1 mm, through the runner (the training source, not "
                "held-out: checks the real-image path - resampling, zero background)")
        out += [Metric(f"Dice {lab.name}, template", dice(seg.labels.array == lab.value, truth == lab.value), data)
                for lab in card.labels]
        return out

    def on_real_mr(net, card):
        import numpy as np

        from formats import samples
        from formats.io import read_image
        from inference.runner import segment

        parts = []
        for name in ("mr-enhanced", "mr-small"):
            vol = read_image(samples.path(name))
            seg = segment(vol, card, net=net, device="cpu")
            head = vol.array > np.percentile(vol.array, 20)
            lab = seg.labels.array
            frac = {lab_.name: float(np.mean(lab[head] == lab_.value)) for lab_ in card.labels}
            parts.append(f"{name} ({samples.describe(name)['description']}, {vol.geometry.size[0]}x"
                         f"{vol.geometry.size[1]}x{vol.geometry.size[2]}): of the brighter 80 % of voxels "
                         + ", ".join(f"{k} {100 * v:.0f} %" for k, v in frac.items())
                         + f", background {100 * float(np.mean(lab[head] == 0)):.0f} %")
        return ("Checked on real MR from pydicom-data (no ground truth, so no Dice): " + "; ".join(parts)
                + ". These are not skull-stripped: scalp, skull and neck get tissue labels, and very thick "
                  "slices fall outside the 2 mm training regime; inspect and correct before any use.")

    return Recipe(
        id="brain-tissue", version="1.0.0", name="Brain MRI tissue (CSF / grey / white matter)",
        architecture="UNet", parameters={"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1},
        spatial_dims=3, modality="MR", patch_size=[64, 64, 64], spacing=[2.0, 2.0, 2.0], labels=LABELS,
        normalisation=NORMALISATION, iterations=2000, batch=2, crops_per_sample=2,
        training_data=("Generated only: the MNI152 2009a symmetric T1 template and its grey/white-matter "
                       "probability maps as shipped in nilearn (one brain, skull-stripped), CSF = rest of the "
                       "brain mask. Each sample randomly warped (rotation +-12 deg, scale +-10 %, elastic "
                       "~3 mm), with the template's T1 contrast (70 %) or random per-tissue intensities (30 %, SynthSeg-"
                       "style), bias field, thick-slice blur, gamma and noise, at 2 mm."),
        notes="Expects a skull-stripped brain; on images with skull and scalp it labels them as tissue.",
        sample=sample, heldout=heldout, extra_metrics=synthetic_contrast, describe=on_real_mr)


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
