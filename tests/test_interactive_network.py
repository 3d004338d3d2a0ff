"""The promptable network ("network" interactive engine): it trains, and the shipped weights answer
clicks, boxes and negative clicks on objects made here by code independent of its training
generator (analytic ellipsoids in patient coordinates), on oblique anisotropic and 2D grids.

Precision: everything runs in fp32 (the engine pins it; no autocast), one torch thread; the Dice
bars sit far below what was measured (docstrings say what and over how many seeds), so the CPU's
bf16 units cannot move a result across them.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.volume import Volume  # noqa: E402
from inference.interactive import net_model  # noqa: E402
from inference.interactive.engine import engines, make_engine  # noqa: E402
from inference.interactive.prompts import Box, Point, Prompts  # noqa: E402

OBLIQUE = np.array([[0.866, -0.5, 0.0], [0.5, 0.866, 0.0], [0.0, 0.0, 1.0]])
OBLIQUE = np.linalg.qr(OBLIQUE @ np.array([[1, 0, 0], [0, 0.94, -0.342], [0, 0.342, 0.94]]))[0]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine():
    info = engines()["network"]
    if info.available() is not None:
        pytest.fail(f"the shipped promptable network is not usable: {info.available()}")
    return make_engine("network")


def ellipsoid_scene(seed: int, size=(96, 96, 36), spacing=(0.8, 0.8, 2.5), direction=None, flat=False):
    """An ellipsoid (semi-axes 8-18 mm, in LPS mm) of one brightness touching a brighter sphere, in
    noise: the analytic object and the volume. Made here, not by the training generator."""
    rng = np.random.default_rng(seed)
    if flat:
        size = (size[0] * 2, size[1] * 2, 1)
    vol = Volume.from_array(np.zeros(size[::-1], np.float32), spacing=spacing, direction=direction,
                            modality="MR")
    g = vol.geometry
    k, j, i = np.meshgrid(*[np.arange(n, dtype=float) for n in size[::-1]], indexing="ij")
    lps = g.index_to_world(np.stack([i, j, k], -1).reshape(-1, 3)).reshape(k.shape + (3,))
    centre = g.index_to_world((np.array(size, float) - 1) / 2) + rng.uniform(-4, 4, 3) * [1, 1, 0 if flat else 1]
    radii = rng.uniform(8, 18, 3)
    axes = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    local = (lps - centre) @ axes
    if flat:  # a 2D image's object is an ellipse in its plane
        local = (lps - centre) @ np.eye(3)[:, :2] @ np.linalg.qr(rng.standard_normal((2, 2)))[0]
        radii = radii[:2]
    obj = ((local / radii) ** 2).sum(-1) <= 1
    other = np.linalg.norm(lps - (centre + axes[:, 0] * (radii[0] + 7)), axis=-1) <= 7
    img = 100 + 15 * rng.standard_normal(obj.shape)
    img[other & ~obj] += 80
    img[obj] += rng.choice([-50, 50])
    vol.array[...] = img.astype(np.float32)
    return vol, obj, centre


def dice(a, b) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def test_tiny_network_trains_and_its_loss_falls():
    from inference.interactive.train_prompts import TINY, TrainConfig, train

    state = train(TrainConfig(steps=30, minutes=30, seed=0, lr=0.03, repeat_batch=True, **TINY), None,
                  log=lambda m: None)
    losses = state["losses"]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses  # measured: 0.55


def test_registered_and_lazy():
    import subprocess
    import sys

    code = ("import sys, inference.interactive.network as n; "
            "print('torch' in sys.modules, n.available())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"  # registering the engine imports no torch
    assert out[1] == "None"   # the shipped weights are found
    card = net_model.load()[1]
    assert card["id"] == net_model.MODEL_ID and "Not for clinical use" in card["intended_use"]


def _clicks(state, vol, obj, centre, corrections: int):
    """A click at ``centre``, then corrective clicks as the benchmark gives them; masks after each."""
    from inference.interactive.benchmark import corrective_click

    spacing = np.asarray(vol.geometry.spacing)[::-1]
    prompts = Prompts((Point(tuple(centre)),))
    masks = [state.predict(prompts)]
    for _ in range(corrections):
        click = corrective_click(obj, masks[-1], spacing)
        if click is None:
            break
        lps = vol.geometry.index_to_world(np.array(click[0][::-1], float))
        prompts = prompts.add(Point(tuple(lps), click[1]))
        masks.append(state.predict(prompts, masks[-1]))
    return masks


def test_click_segments_an_unseen_ellipsoid_on_an_oblique_anisotropic_grid(engine):
    """Measured (v1.0.0, seeds 0-7, fp32): after the first click nearly every predicted voxel lies in
    the object (precision 0.997 +- 0.007, min 0.978) but the object is under-segmented (Dice 0.52 +-
    0.13, min 0.34); after 5 corrective clicks Dice 0.79 +- 0.05 (min 0.68). v1.1.0 (the shipped one):
    first click 0.76 +- 0.08 (min 0.64), after 5 clicks 0.79 +- 0.06 (min 0.72). Bars: precision 0.9,
    Dice 0.4 and 0.4."""
    for seed in (0, 1):
        vol, obj, centre = ellipsoid_scene(seed, direction=OBLIQUE)
        masks = _clicks(engine.open(vol), vol, obj, centre, 5)
        first = masks[0]
        assert first.shape == vol.geometry.shape_zyx and first.dtype == bool
        ijk = np.rint(vol.geometry.world_to_index(centre)).astype(int)
        assert first[ijk[2], ijk[1], ijk[0]]  # the clicked voxel is in the object
        assert (first & obj).sum() > 0.9 * first.sum()
        assert dice(first, obj) > 0.4, (seed, dice(first, obj))
        assert dice(masks[-1], obj) > 0.4, (seed, dice(masks[-1], obj))


def test_box_on_one_slice_gives_a_3d_object(engine):
    """Measured (v1.0.0, seeds 0-9): Dice 0.62 +- 0.12 (min 0.47); v1.1.0 (seeds 0-7) 0.64 +- 0.13
    (min 0.50); the bar is 0.25."""
    vol, obj, centre = ellipsoid_scene(2, direction=OBLIQUE)
    g = vol.geometry
    k = int(np.rint(g.world_to_index(centre)[2]))
    idx = np.argwhere(obj[k])  # the object's extent on that slice, as a user would draw it
    lo, hi = idx.min(0), idx.max(0)
    a = g.index_to_world(np.array([lo[1], lo[0], k], float))
    b = g.index_to_world(np.array([hi[1], hi[0], k], float))
    mask = engine.open(vol).predict(Prompts((Box(tuple(a), tuple(b)),)))
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    assert len(slices) >= 3  # beyond the slice the box was drawn on
    assert dice(mask, obj) > 0.25, dice(mask, obj)


def test_negative_click_removes_a_false_region_and_leaves_the_rest(engine):
    vol, obj, centre = ellipsoid_scene(3)
    g = vol.geometry
    state = engine.open(vol)
    far = np.zeros_like(obj)  # a false blob far from the object (a previous mistake)
    far[5:12, 70:86, 8:24] = True
    previous = obj | far
    c = g.index_to_world(np.array([16.0, 78.0, 8.0]))
    mask = state.predict(Prompts((Point(tuple(centre)), Point(tuple(c), False))), previous)
    assert (mask & far).sum() < 0.2 * far.sum()
    assert dice(mask & ~far, obj) > 0.9  # the object, far from the new click, is left as it was


def test_2d_image(engine):
    """Measured (v1.0.0, seeds 0-7): precision 1.000 after the first click, Dice 0.13 +- 0.03 (the
    2D slab is the network's weakest case); after 5 corrective clicks Dice 0.67 +- 0.09 (min 0.46).
    v1.1.0 (the shipped one): 0.92 +- 0.05 (min 0.80) after 5 clicks. Bars: precision 0.9, Dice 0.6
    after 5 clicks."""
    vol, obj, centre = ellipsoid_scene(4, spacing=(0.4, 0.4, 1.0), flat=True)
    assert vol.geometry.size[2] == 1
    masks = _clicks(engine.open(vol), vol, obj, centre, 5)
    assert all(m.shape == vol.geometry.shape_zyx for m in masks)
    assert masks[0].any() and (masks[0] & obj).sum() > 0.9 * masks[0].sum()
    assert dice(masks[-1], obj) > 0.6, dice(masks[-1], obj)


def test_cli_trains_a_tiny_model_the_engine_loads(tmp_path):
    from cli.entry import main as cli_main
    from inference.interactive.network import NetworkEngine

    out = tmp_path / "model"
    assert cli_main(["train-interactive", "--tiny", "--steps", "3", "--out", str(out), "--max-rounds", "2",
                     "--first-share", "0.25", "--p-perturbed", "0.35"]) == 0
    assert (out / "model.safetensors").is_file() and (out / net_model.CARD_NAME).is_file()
    told = json.loads((out / net_model.CARD_NAME).read_text())["training_data"]
    assert "0-2 corrective clicks" in told and "none in 25 %" in told and "in 35 % of batches" in told, told
    vol, obj, centre = ellipsoid_scene(5, size=(40, 40, 12))
    mask = NetworkEngine(folder=out).open(vol).predict(Prompts((Point(tuple(centre)),)))
    assert mask.shape == vol.geometry.shape_zyx


def test_a_refused_piece_with_a_hole_at_the_negative_click_is_dropped():
    """The network may punch a hole around a negative click and keep the rest of the false piece as
    a shell (seen in GPU-trained candidates): the piece still counts as the one refused."""
    from scipy import ndimage as ndi

    from inference.interactive.network import NetworkState

    mask = np.zeros((24, 24, 24), bool)
    mask[2:8, 2:8, 2:8] = True                      # the object, with the positive click
    mask[12:22, 12:22, 12:22] = True                # a false piece the user clicked negative in
    neg = np.zeros_like(mask)
    neg[17, 17, 17] = True
    mask &= ~ndi.binary_dilation(neg, iterations=2)  # the hole the network punched around it
    pos = np.zeros_like(mask)
    pos[5, 5, 5] = True
    kept = NetworkState._drop_refused(mask, pos, neg, [])
    assert kept[2:8, 2:8, 2:8].all() and not kept[12:22, 12:22, 12:22].any()
    edge = [(0, -1)]  # the same piece touching an inner face of the ROI may be the object seen in part
    touching = mask.copy()
    touching[12:24, 12:22, 12:22] = True
    touching &= ~ndi.binary_dilation(neg, iterations=2)
    assert NetworkState._drop_refused(touching, pos, neg, edge)[12:24, 12:22, 12:22].sum() > 0
