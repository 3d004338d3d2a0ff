"""Every architecture of the benchmark trains on a tiny input (loss falls) in 2D and 3D; the
diffusion model's samples differ and its mean/variance maps land on the image grid."""
import numpy as np
import pytest
import torch

from inference.card import BUILT
from inference.networks import build
from tests.test_inference import TINY, make_card


def _task(dims: int, size: int):
    """A bright disc/ball on noise: the mask is learnable in a dozen steps."""
    g = torch.Generator().manual_seed(0)
    axes = torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * dims, indexing="ij")
    r2 = sum((a - size / 2 + 1.5) ** 2 for a in axes)
    y = (r2 < (size / 4) ** 2).long()
    x = y.float() * 2 + 0.3 * torch.randn(y.shape, generator=g)
    return x[None, None].repeat(2, 1, *[1] * dims), y[None, None].repeat(2, 1, *[1] * dims)


def _params(arch: str, dims: int):
    params, patch = TINY[arch]
    if arch == "SwinUNETR":
        params = dict(params, norm_name="batch")  # 1-voxel bottleneck at 32: instance norm cannot train it
    return params, (32 if arch in ("SwinUNETR", "BasicUNetPlusPlus") else 16)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("arch", BUILT)
def test_every_architecture_trains_and_its_loss_falls(arch, dims):
    from inference.monai_light import light

    DiceCELoss = light("monai.losses").DiceCELoss

    params, size = _params(arch, dims)
    torch.manual_seed(0)
    net = build(arch, dims, 1, 2, params, [size] * dims)
    x, y = _task(dims, size)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)

    def measured() -> float:  # the same draws each time: diffusion samples t and noise inside its loss
        torch.manual_seed(1)
        with torch.no_grad():
            if hasattr(net, "stochastic"):
                return float(net.training_loss(x, y, loss_fn))
            out = net(x)
            return float(loss_fn(out[0] if isinstance(out, (list, tuple)) else out, y))

    params_to_train = net.segmentation_parameters() if hasattr(net, "segmentation_parameters") else net.parameters()
    opt = torch.optim.Adam(params_to_train, lr=3e-3)
    net.train()
    before = measured()
    for _ in range(12):
        loss = net.training_loss(x, y, loss_fn) if hasattr(net, "training_loss") else \
            loss_fn(*((lambda o: (o[0] if isinstance(o, (list, tuple)) else o, y))(net(x))))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = measured()
    assert np.isfinite(after) and after < before, f"{arch} {dims}D: loss {before:.3f} -> {after:.3f}"


def test_diffusion_samples_differ_and_maps_are_on_the_image_grid(tmp_path, oblique_mr):
    from inference.runner import segment
    from inference.xai import uncertainty

    card = make_card(tmp_path / "diff", "DiffusionSegmenter")
    seg = segment(oblique_mr, card, device="cpu")
    assert seg.labels.geometry is oblique_mr.geometry
    from inference.monai_light import light

    DiceCELoss = light("monai.losses").DiceCELoss

    torch.manual_seed(0)
    net = build(card.architecture, 3, 1, card.n_classes, card.parameters, card.patch_size)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = _task(3, 16)
    for _ in range(10):  # MONAI zero-initialises the output layer: untrained, every sample is uniform
        loss = net.training_loss(xt, yt, DiceCELoss(to_onehot_y=True, softmax=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x = xt[:1]
    with torch.no_grad():
        a, b = net.sample_probabilities(x, seed=0), net.sample_probabilities(x, seed=1)
    assert a.shape == (1, 3, 16, 16, 16) and not torch.allclose(a, b)
    with torch.no_grad():
        assert torch.allclose(net.sample_probabilities(x, seed=0), a)  # a seed fixes a sample
    result = uncertainty(oblique_mr, card, device="cpu", passes=3, net=net)
    assert result.extra["method"] == "samples"
    for key in ("sample_mean", "sample_variance"):
        m = result.extra[key]
        assert m.shape == oblique_mr.array.shape and np.isfinite(m).all()
    assert result.extra["sample_variance"].max() > 0  # the samples disagree somewhere
    assert result.values.shape == oblique_mr.array.shape


@pytest.mark.parametrize("arch", BUILT)
def test_every_architecture_can_be_explained(arch, tmp_path, oblique_mr):
    """Grad-CAM finds a layer and returns a map on the image grid for every benchmark network."""
    from inference.xai import explain

    card = make_card(tmp_path / arch, arch)
    roi = np.zeros(oblique_mr.array.shape, bool)
    roi[3:6, 5:15, 5:20] = True  # the bright block: random weights need not predict any label there
    result = explain(oblique_mr, card, 1, "gradcam", roi=roi, device="cpu")
    assert result.values.shape == oblique_mr.array.shape and np.isfinite(result.values).all()
