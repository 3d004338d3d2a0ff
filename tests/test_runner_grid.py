"""Mapping a model's probabilities back onto the image grid: the fast all-class path (separable for
parallel axes, grid_sample for oblique ones) gives what per-class scipy resampling gave."""
import numpy as np
import pytest
from scipy import ndimage

from core.geometry import Geometry
from core.resample import resample
from inference import runner


def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


CASES = {
    "parallel, finer and anisotropic": (Geometry((30, 34, 20), (1.5, 1.5, 1.5), (-20, -25, -15)),
                                        Geometry((64, 70, 13), (0.7, 0.72, 2.5), (-20, -25, -15))),
    "parallel, flipped and shifted past the edge": (Geometry((30, 34, 20), (1.5, 1.5, 1.5), (-20, -25, -15)),
                                                    Geometry((40, 40, 12), (0.9, 1.1, 2.0), (18, -30, -17),
                                                             np.diag([-1.0, 1.0, 1.0]))),
    "oblique": (Geometry((30, 34, 20), (1.5, 1.5, 1.5), (-20, -25, -15)),
                Geometry((50, 44, 10), (0.8, 0.9, 2.0), (-10, -20, -10), _rotation(25))),
    "2D": (Geometry((60, 50, 1), (0.3, 0.3, 1.0)), Geometry((130, 111, 1), (0.13, 0.12, 1.0))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_matches_per_class_scipy(name, monkeypatch):
    grid, target = CASES[name]
    rng = np.random.default_rng(7)
    p = ndimage.uniform_filter(rng.random((4,) + grid.shape_zyx).astype(np.float32), (1, 3, 3, 3))
    p /= p.sum(axis=0, keepdims=True)
    want = np.stack([resample(c, grid, target, order=1, fill=1.0 if i == 0 else 0.0) for i, c in enumerate(p)])
    monkeypatch.setattr(runner, "SMALL_OUTPUT", 0)  # force the fast path on these small grids
    back, labels = runner.to_image_grid(p, grid, target, slab_voxels=2000)  # several slabs
    assert back.shape == want.shape and back.dtype == np.float16
    # equal up to float16 rounding, the background's 1 outside the model grid included
    assert np.abs(back.astype(np.float32) - want).max() < 2e-3
    if name != "2D":
        assert (want[0] == 1).mean() > 0.05  # the case reaches outside the model grid
    top2 = np.sort(want, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-2
    assert np.array_equal(labels[clear], np.argmax(want, axis=0)[clear])
