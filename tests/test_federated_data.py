"""Three sites whose corrections come from shifted ultrasound domains, for the federated tests and
bench: isoechoic nodules with a dark halo (tests/halo_nodules.py), the same with a bright rim, and
the dark halo imaged at low gain with coarse speckle. Scripted corrections (the true mask, approved)
as in tests/test_retrain.py. The test here checks the premise the federated bench relies on: the
shipped model misses the halo at both gains and mostly finds the bright rim (fp32, the test's 6 cases
each: Dice 0.00, 0.15 and 0.76; on the bench's 8 held-out cases 0.00, 0.08 and 0.89), so each site
has something different to teach."""
from pathlib import Path

import numpy as np
from scipy import ndimage

from tests.halo_nodules import halo_nodule

DOMAINS = ("halo", "bright-rim", "low-gain")


def domain_case(kind: str, rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    img, mask = halo_nodule(rng, size)
    if kind == "bright-rim":  # the halo drawn bright instead of dark: another lesion type
        ring = mask.astype(bool) & ~ndimage.binary_erosion(mask.astype(bool), iterations=2)
        img = img.astype(np.float64)
        img[ring] = np.clip(img[ring] * 4.0 + 120, 0, 255)
        img = img.astype(np.uint8)
    elif kind == "low-gain":  # 12 dB less gain, coarser speckle, compressed display
        img = ndimage.gaussian_filter(img.astype(np.float64), 1.2) * 0.25
        img = np.clip(img + rng.gamma(1.0, 4.0, img.shape), 0, 255).astype(np.uint8)
    return img, mask


def make_store(root: Path, kind: str, n_train: int, n_holdout: int, seed: int, model_id: str = "us-lesion-2d",
               corrupt: bool = False):
    """A store at ``root`` with exactly ``n_train`` / ``n_holdout`` approved corrections of ``kind``.
    ``corrupt``: the training side's approved masks are inverted (everything but the nodule), as a
    site whose tool saved the wrong side would have; its held-out side stays true."""
    from core.labels import LabelMap
    from core.volume import Volume
    from inference.registry import SHIPPED, Registry
    from store.corrections import CorrectionsStore

    labels = Registry([SHIPPED]).get(model_id).labels
    rng = np.random.default_rng(seed)
    n = {"train": 0, "holdout": 0}
    want = {"train": n_train, "holdout": n_holdout}
    with CorrectionsStore(root, holdout_fraction=n_holdout / (n_train + n_holdout)) as store:
        while any(n[k] < want[k] for k in n):
            img, truth = domain_case(kind, rng)
            vol = Volume.from_array(img[None], spacing=(0.3, 0.3, 1.0), modality="US")
            empty = LabelMap(np.zeros_like(truth)[None], vol.geometry, labels)  # the draft: nothing found
            case_id, _n = store.save(vol, empty, LabelMap(truth[None], vol.geometry, labels), reviewer="scripted",
                                     model_id=model_id, model_version="1.0.0", state="approved")
            split = store.case(case_id).split
            if corrupt and split == "train" and n[split] < want[split]:  # a second correction, the wrong one
                store.save(vol, empty, LabelMap((1 - truth)[None], vol.geometry, labels), reviewer="scripted",
                           model_id=model_id, model_version="1.0.0", state="approved")
            if n[split] >= want[split]:  # that side is full: kept, but not for training
                store.set_state(case_id, "rejected", "surplus test case")
            else:
                n[split] += 1
    return root


def test_the_shipped_model_misses_the_halo_at_both_gains_and_finds_the_bright_rim(fp32):
    import torch

    from core.metrics import dice
    from core.volume import Volume
    from inference.registry import SHIPPED, Registry
    from inference.runner import load_model, segment

    card = Registry([SHIPPED]).get("us-lesion-2d")
    net = load_model(card, torch.device("cpu"))
    scores = {}
    for kind in DOMAINS:
        rng = np.random.default_rng(7)
        d = []
        for _ in range(6):
            img, truth = domain_case(kind, rng)
            vol = Volume.from_array(img[None], spacing=(0.3, 0.3, 1.0), modality="US")
            d.append(dice(segment(vol, card, net=net, device="cpu").labels.array[0] == 1, truth == 1))
        scores[kind] = float(np.mean(d))
    assert scores["halo"] < 0.2 and scores["low-gain"] < 0.3 and scores["bright-rim"] > 0.6, scores
