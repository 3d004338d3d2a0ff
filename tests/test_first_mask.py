"""Time to the first mask (issue 20 item 7): the quicker path gives what the full one gave. Labels on
the image grid skip the interpolation inside model-grid cells one class clearly wins, yet equal the
full interpolation's arg-max bit for bit; the probabilities there are made only when asked for; bigger
window batches keep the numbers of the pairs they replaced; MONAI is imported module by module."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from core.geometry import Geometry
from core.labels import Label, LabelTable
from core.volume import Volume
from inference.card import ModelCard
from inference.envelope import run_uncertainty
from inference.envelope import sample_step
from inference.image_grid import MARGIN, OnImageGrid, labels_of
from inference.networks import build
from inference.registry import Registry
from inference.runner import predict, segment
from inference.weights import save_weights

ROOT = Path(__file__).resolve().parent.parent


def _flip_x() -> np.ndarray:
    return np.diag([-1.0, 1.0, 1.0])


GRIDS = {  # model grid, image grid
    "finer and anisotropic": (Geometry((30, 34, 20), (1.5, 1.5, 1.5), (-20, -25, -15)),
                              Geometry((64, 70, 13), (0.7, 0.72, 2.5), (-20, -25, -15))),
    "flipped and past the edge": (Geometry((30, 34, 20), (1.5, 1.5, 1.5), (-20, -25, -15)),
                                  Geometry((40, 40, 12), (0.9, 1.1, 2.0), (18, -30, -17), _flip_x())),
    "one model slice": (Geometry((30, 34, 1), (1.5, 1.5, 3.0), (-20, -25, 0)),
                        Geometry((60, 70, 3), (0.7, 0.7, 1.0), (-20, -25, -1))),
}


def _probabilities(grid: Geometry, seed: int) -> np.ndarray:
    """Smooth random class probabilities with exact ties and near-ties (closer than MARGIN) in places."""
    rng = np.random.default_rng(seed)
    p = ndimage.uniform_filter(rng.random((4,) + grid.shape_zyx).astype(np.float32), (1, 1, 5, 5)) ** 4
    tie = rng.random(grid.shape_zyx) < 0.05
    p[2][tie] = p[1][tie]  # exact ties: the first class wins
    near = rng.random(grid.shape_zyx) < 0.05
    p[3][near] = p[0][near] + np.float32(MARGIN / 4)
    return p / p.sum(axis=0, keepdims=True)


def _full_pass(mapped: OnImageGrid) -> tuple[np.ndarray, np.ndarray]:
    """(float32 probabilities, their arg-max) on the image grid: every voxel interpolated."""
    nz, ny, nx = mapped.target.shape_zyx
    probs = np.empty((mapped.n_classes, nz, ny, nx), np.float32)
    labels = np.empty((nz, ny, nx), np.uint8)
    with torch.inference_mode():
        for k0, k1, out in mapped.slabs():
            probs[:, k0:k1] = out.transpose(0, 1).numpy()
            labels[k0:k1] = labels_of(out).numpy()
    return probs, labels


@pytest.mark.parametrize("name", list(GRIDS))
def test_labels_are_the_full_interpolations_arg_max_bit_for_bit(name):
    grid, target = GRIDS[name]
    p = _probabilities(grid, 3)
    mapped = OnImageGrid(p, grid, target, slab_voxels=5000, small_output=0)  # several slabs, the fast path
    assert mapped.parallel
    labels = mapped.labels()
    full, want = _full_pass(OnImageGrid(p, grid, target, slab_voxels=5000, small_output=0))
    np.testing.assert_array_equal(labels, want)
    assert len(np.unique(want)) == 4
    # the float16 probabilities, made only now, are numpy's rounding of the full pass, and the guard's
    # sample is theirs at every step-th voxel
    back = mapped.probabilities()
    np.testing.assert_array_equal(back.view(np.uint16), full.astype(np.float16).view(np.uint16))
    flat = back.reshape(back.shape[0], -1)
    np.testing.assert_array_equal(mapped.sample.view(np.uint16), flat[:, ::sample_step(flat.shape[1])].view(np.uint16))


def test_oblique_grids_take_the_full_pass():
    grid = Geometry((30, 34, 20), (1.5, 1.5, 1.5), (-20, -25, -15))
    t = np.deg2rad(25)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    target = Geometry((50, 44, 10), (0.8, 0.9, 2.0), (-10, -20, -10), rot)
    p = _probabilities(grid, 5)
    mapped = OnImageGrid(p, grid, target, slab_voxels=5000, small_output=0)
    assert not mapped.parallel
    _, want = _full_pass(mapped)
    np.testing.assert_array_equal(mapped.labels(), want)


def _tiny_card(folder: Path) -> ModelCard:
    card = ModelCard(
        id="tiny-unet", version="1.0.0", name="tiny UNet", architecture="UNet",
        parameters={"channels": [4, 8], "strides": [2]}, spatial_dims=3, modality="CT", in_channels=1,
        labels=LabelTable((Label(1, "a", (255, 0, 0)), Label(2, "b", (0, 255, 0)))),
        normalisation={"kind": "ct_window", "low": -1000.0, "high": 1000.0}, patch_size=[16, 32, 32],
        training_data="random init (test)", licence="CC0", spacing=[2.0, 2.0, 2.0], orientation="LPS")
    torch.manual_seed(0)
    net = build("UNet", 3, 1, card.n_classes, card.parameters, card.patch_size)
    folder.mkdir(parents=True, exist_ok=True)
    card.weights_sha256 = save_weights(net, folder / card.weights)
    card.save(folder)
    return ModelCard.load(folder / "card.json")


def test_a_run_makes_the_image_grid_probabilities_only_when_asked(tmp_path, fp32):
    rng = np.random.default_rng(1)
    arr = ndimage.uniform_filter(rng.normal(0, 300, (60, 120, 120)), 5).astype(np.int16)
    vol = Volume.from_array(arr, spacing=(0.8, 0.8, 1.0), origin=(-40, -50, -30), modality="CT")
    run = segment(vol, _tiny_card(tmp_path / "m"), device="cpu")
    assert callable(run._probabilities)  # the labels came without them
    uncertainty = run_uncertainty(run.sample)
    probs = run.probabilities
    assert probs.shape == (3,) + arr.shape and probs.dtype == np.float16
    assert run.probabilities is probs  # made once
    assert run_uncertainty(probs) == uncertainty
    top2 = np.sort(probs.astype(np.float32), axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-2
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(run.labels.array[clear], np.argmax(probs, axis=0)[clear])


@pytest.mark.parametrize("shape", [(32, 100, 64), (48, 100, 64)])  # 3 windows, 6 windows
def test_window_batches_keep_the_numbers_of_pairs(shape):
    card = Registry().get("ct-torso-phantom", "2.0.0")
    from inference.runner import load_model

    net = load_model(card, torch.device("cpu"))
    x = np.random.default_rng(2).random((1,) + shape).astype(np.float32)
    pairs = predict(net, x, card, torch.device("cpu"), sw_batch_size=2, amp=False)
    batched = predict(net, x, card, torch.device("cpu"), amp=False)  # one call for all the windows
    assert np.abs(batched - pairs).max() < 1e-4  # bit for bit on the CPUs measured; kernels may differ
    top2 = np.sort(pairs, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-3
    np.testing.assert_array_equal(np.argmax(batched, 0)[clear], np.argmax(pairs, 0)[clear])


def test_monai_is_imported_module_by_module():
    code = """
import sys
import threading
from inference.monai_light import light
ahead = threading.Thread(target=light, args=("monai.inferers.utils",))  # as app.actions.segmenting.prefetch
ahead.start()
light("monai.inferers.utils").sliding_window_inference  # waits for the other thread's import, if under way
ahead.join()
light("monai.networks.nets").UNet
print(sorted(m for m in ("monai.transforms", "monai.apps.datasets", "monai.losses", "monai.metrics",
                         "monai.networks.nets.swin_unetr", "monai.bundle") if m in sys.modules))
from monai.networks.nets import SegResNet
import monai
import monai.losses
from importlib.metadata import version
print(monai.__version__ == version("monai"), monai.transforms.Compose.__name__, SegResNet.__name__,
      monai.losses.DiceCELoss.__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["[]", "True Compose SegResNet DiceCELoss"]


def test_training_after_a_ct_segmentation_in_the_same_process():
    """A CT model's network pulls MONAI's blocks in module by module; MONAI's losses imported plainly
    after that met a circular import (``Compose`` from a half-initialised ``monai.transforms``), so
    Retrain after a segmentation in the window failed. Training takes its loss through ``light``."""
    code = """
import math
import torch
from inference.registry import Registry
from inference.runner import load_model
from inference.training.recipes import RECIPES
load_model(Registry().get("ct-torso-phantom"), torch.device("cpu"))  # what a CT segmentation imports
from federated.local_training import fit
card = Registry().get("us-lesion-2d")
print(math.isfinite(fit(load_model(card, torch.device("cpu")), RECIPES["us"](), 1, 1e-4, 0)))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
