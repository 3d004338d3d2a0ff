"""The promptable network itself, shared by its engine (network.py) and its training
(train_prompts.py): the architecture, the input channels, the intensity normalisation and the
weights on disk.

Input channels, on the network's grid (z, y, x):
  0 image, normalised to [0, 1] by robust percentiles inside the region of interest
  1 previous mask (the object so far; zeros before the first prompt)
  2 positive prompts (points as balls, scribbles as lines, boxes and lassos as filled masks)
  3 negative prompts
  4 boxes and lassos alone (so the network can tell "inside this box" from "this is object")
Output: one logit per voxel (object vs not).

A 2D image is a slab: its one slice repeated SLAB times along z, prompts included; the middle
slice of the answer is the 2D answer (training shows the network such slabs).
torch is imported inside functions so that importing this module costs nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IN_CHANNELS = 5
#: the network grid's longest side (voxels), the training scenes' size: the region of interest is resampled
#: to at most this (48 gave higher Dice than 64 on the tests' ellipsoids, and runs 2.4x fewer voxels)
NET_SIZE = 48
#: the network's grid sides are multiples of this (four stride-2 levels)
MULTIPLE = 16
#: depth of the slab a 2D image becomes
SLAB = 16
#: the model shipped with Delineate
MODEL_ID = "promptable-net"
MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / MODEL_ID
CARD_NAME = "prompt-card.json"  # not card.json: the segmentation registry must not list it
#: MONAI UNet parameters; small so a 64^3 region runs in well under a second on two CPU threads
ARCH = {"channels": [16, 32, 64, 96, 128], "strides": [2, 2, 2, 2], "num_res_units": 1}
#: CT values are clipped to this window (HU) before the percentile normalisation, so metal and air
#: outside the body do not squash the soft-tissue contrast
CT_CLIP = (-1000.0, 2000.0)


def build(arch: dict | None = None):
    import torch
    from inference.monai_light import light

    UNet = light("monai.networks.nets").UNet

    a = dict(ARCH if arch is None else arch)
    torch.manual_seed(0)
    return UNet(3, IN_CHANNELS, 1, channels=tuple(a["channels"]), strides=tuple(a["strides"]),
                num_res_units=int(a["num_res_units"]))


def normalise(image: np.ndarray, modality: str = "OT", sample: np.ndarray | None = None) -> np.ndarray:
    """Image values to about [0, 1]: the 0.5th-99.5th percentiles of ``sample`` (default: the image)
    map to 0 and 1; CT is clipped to CT_CLIP first. The same function serves training (generated
    images) and inference (the region of interest), so both see the same range."""
    x = np.asarray(image, dtype=np.float32)
    s = np.asarray(x if sample is None else sample, dtype=np.float32)
    if modality == "CT":
        x = np.clip(x, *CT_CLIP)
        s = np.clip(s, *CT_CLIP)
    flat = s.reshape(-1)
    if flat.size > 200_000:
        flat = flat[:: flat.size // 200_000]
    lo, hi = np.percentile(flat, [0.5, 99.5])
    if not np.isfinite(hi - lo) or hi - lo < 1e-6:
        lo, hi = float(flat.min()), float(flat.min()) + 1.0
    return np.clip((x - lo) / (hi - lo), -0.25, 1.25).astype(np.float32)


def ball(mask: np.ndarray, centre, radius: float = 1.0) -> None:
    """OR a ball (radius in voxels) around a continuous (z, y, x) centre into ``mask``."""
    c = np.asarray(centre, dtype=np.float64)
    r = float(radius)
    lo = np.maximum(np.floor(c - r).astype(int), 0)
    hi = np.minimum(np.ceil(c + r).astype(int) + 1, mask.shape)
    if np.any(hi <= lo):
        return
    zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    near = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r + 1e-6
    if not near.any():  # a centre between voxels: the nearest voxel at least, if it is in the array
        k = np.rint(c).astype(int)
        if np.all(k >= 0) and np.all(k < mask.shape):
            mask[tuple(k)] = True
        return
    mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] |= near


def save_weights(net, path: Path) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(path)


def load(folder: Path | None = None):
    """The shipped (or given) network in eval mode, fp32, with its card."""
    from safetensors.torch import load_file

    folder = Path(folder or shipped_folder())
    card = json.loads((folder / CARD_NAME).read_text())
    net = build(card.get("parameters"))
    net.load_state_dict(load_file(str(folder / card.get("weights", "model.safetensors"))))
    return net.float().eval(), card


def shipped_folder() -> Path:
    """The newest version folder of the promptable model (by version number) that was promoted: a
    version fine-tuned on the store that did not beat its parent is kept but not used."""
    found = sorted((p for p in version_folders() if _promoted(p)),
                   key=lambda p: tuple(int(t) if t.isdigit() else 0 for t in p.name.split(".")))
    if not found:
        raise FileNotFoundError(f"no promptable model under {MODEL_DIR}")
    return found[-1]


def user_dir() -> Path:
    """Where versions fine-tuned on this site's corrections go (the shipped ones may be read-only)."""
    from inference.registry import user_models_dir

    return user_models_dir() / MODEL_ID


def version_folders() -> list[Path]:
    """Every version folder with a card: the shipped ones and this site's."""
    return [p for root in (MODEL_DIR, user_dir()) if root.is_dir() for p in root.glob("*") if (p / CARD_NAME).is_file()]


def _promoted(folder: Path) -> bool:
    try:
        return json.loads((folder / CARD_NAME).read_text()).get("promoted", True) is not False
    except (OSError, ValueError):
        return False
