"""Three sites whose corrections come from shifted ultrasound domains, for the federated tests and
bench. Each site differs from the others the way clinics do - another lesion type, another scanner
regime (gain, time-gain compensation, probe frequency, i.e. speckle grain) and other lesion sizes and
depths - and none of the three is a shifted copy of another, so no site's corrections teach what the
others see:

  isoechoic-halo  nodules whose only sign is a thin dark halo, the tissue's own texture inside (unlike
                  tests/halo_nodules.py, whose noisier interior is a cue every domain would share):
                  medium size, mid-depth; standard gain, flat TGC, medium speckle.
  spongiform      large, deep nodules filled with small anechoic microcysts and no halo; high gain with
                  the TGC over-compensating (brighter with depth, partly saturated), fine speckle (a
                  high-frequency linear probe).
  microcalcified  small, shallow, taller-than-wide lobulated nodules, faintly darker than the tissue,
                  holding a few bright punctate microcalcifications; low gain with the TGC
                  under-compensating (darker with depth), coarse speckle and a noise floor (a lower
                  frequency probe).

All three are drawn on the same coarse-grained tissue as tests/halo_nodules.py and share no code with
the shipped model's generator (inference/training/synth_us.py), which has no isoechoic lesions, no
microcysts and no calcifications. Scripted corrections (the true mask, approved) as in
tests/test_retrain.py. "bright-rim" and "low-gain" (variants of the halo) stay for the robustness
test, which needs a domain the shipped model already finds. The test here checks the premise the
federated bench relies on: the shipped model misses all three site domains, so each site has
something of its own to teach (fp32, the test's 6 cases each: Dice 0.00, 0.06 and 0.21; the bright
rim 0.76)."""
from pathlib import Path

import numpy as np
from scipy import ndimage

from tests.halo_nodules import halo_nodule

DOMAINS = ("isoechoic-halo", "spongiform", "microcalcified")


def _tissue(rng: np.random.Generator, size: int) -> np.ndarray:
    return 110 + 75 * ndimage.uniform_filter(rng.standard_normal((size, size)), 9)


def _nodule(rng, size: int, radius, rows, aspect, wobble: float = 0.0) -> np.ndarray:
    """Normalised radius map of an elliptic nodule (< 1 inside): ``radius`` (of the image width),
    centre at ``rows`` (fraction of the depth), ``aspect`` depth/width (> 1: taller than wide,
    kept near upright); ``wobble``: lobulated margin."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    cy, cx = rng.uniform(*rows) * size, rng.uniform(0.28, 0.72) * size
    a = rng.uniform(*radius) * size
    b = a * rng.uniform(*aspect)
    angle = rng.uniform(-0.3, 0.3) if aspect[0] > 1 else rng.uniform(0, np.pi)
    u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / a
    v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / b
    r = np.hypot(u, v)
    if wobble:
        t = np.arctan2(v, u)
        r = r / (1 + sum(rng.uniform(0, wobble) * np.sin(k * t + rng.uniform(0, 6)) for k in (3, 5, 7)))
    return r


def _scan(rng, reflectivity: np.ndarray, grain, gain: float, tgc, floor: float = 0.0) -> np.ndarray:
    """The scanner: speckle of ``grain`` (Gaussian sigma, rows/cols), overall ``gain``, a linear TGC
    from ``tgc[0]`` at the skin to ``tgc[1]`` at the bottom, a noise floor, clipped to 8 bits."""
    speckle = ndimage.gaussian_filter(rng.gamma(2.0, 0.5, reflectivity.shape), grain)
    depth = np.linspace(0, 1, reflectivity.shape[0])[:, None]
    img = reflectivity * speckle / speckle.mean() * gain * (tgc[0] + (tgc[1] - tgc[0]) * depth)
    if floor:
        img = img + rng.gamma(1.0, floor, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _isoechoic_halo(rng, size):
    img = _tissue(rng, size)
    r = _nodule(rng, size, (0.09, 0.15), (0.3, 0.7), (0.75, 1.0))
    nodule = r < 1
    img[(r >= 0.85) & nodule] = 35
    return _scan(rng, img, (1.0, 0.7), 1.0, (1.0, 1.0)), nodule.astype(np.uint8)


def _spongiform(rng, size):
    img = _tissue(rng, size)
    r = _nodule(rng, size, (0.15, 0.22), (0.5, 0.72), (0.7, 0.9))
    nodule = r < 1
    cysts = np.zeros((size, size), bool)
    ys, xs = np.nonzero(nodule)
    for k in rng.choice(len(ys), size=max(8, len(ys) // 45), replace=False):
        y0, x0, radius = ys[k], xs[k], rng.uniform(1.2, 2.6)
        box = np.s_[max(0, y0 - 3):y0 + 4, max(0, x0 - 3):x0 + 4]
        gy, gx = np.mgrid[box]
        cysts[box] |= (gy - y0) ** 2 + (gx - x0) ** 2 <= radius ** 2
    img[cysts & (r < 0.97)] = 12
    return _scan(rng, img, (0.6, 0.5), 1.25, (0.75, 1.35)), nodule.astype(np.uint8)


def _microcalcified(rng, size):
    img = _tissue(rng, size)
    r = _nodule(rng, size, (0.07, 0.11), (0.2, 0.4), (1.2, 1.6), wobble=0.12)
    nodule = r < 1
    img[nodule] *= 0.85
    ys, xs = np.nonzero(r < 0.85)
    for k in rng.choice(len(ys), size=int(rng.integers(6, 14)), replace=False):
        img[ys[k]:ys[k] + 2, xs[k]:xs[k] + 2] = 765  # saturates whatever the gain
    return _scan(rng, img, (1.8, 1.4), 0.45, (1.2, 0.6), floor=4.0), nodule.astype(np.uint8)


def domain_case(kind: str, rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    if kind == "isoechoic-halo":
        return _isoechoic_halo(rng, size)
    if kind == "spongiform":
        return _spongiform(rng, size)
    if kind == "microcalcified":
        return _microcalcified(rng, size)
    img, mask = halo_nodule(rng, size)
    if kind == "bright-rim":  # the halo drawn bright instead of dark
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


def test_the_shipped_model_misses_every_site_domain_and_finds_the_bright_rim(fp32):
    """The federated premise: no site's lesions are already found. The robustness test's premise:
    the bright rim is (its good site has a default worth spoiling)."""
    import torch

    from core.metrics import dice
    from core.volume import Volume
    from inference.registry import SHIPPED, Registry
    from inference.runner import load_model, segment

    card = Registry([SHIPPED]).get("us-lesion-2d")
    net = load_model(card, torch.device("cpu"))
    scores = {}
    for kind in DOMAINS + ("bright-rim",):
        rng = np.random.default_rng(7)
        d = []
        for _ in range(6):
            img, truth = domain_case(kind, rng)
            vol = Volume.from_array(img[None], spacing=(0.3, 0.3, 1.0), modality="US")
            d.append(dice(segment(vol, card, net=net, device="cpu").labels.array[0] == 1, truth == 1))
        scores[kind] = float(np.mean(d))
    print(scores)
    assert all(scores[k] < 0.3 for k in DOMAINS) and scores["bright-rim"] > 0.6, scores
