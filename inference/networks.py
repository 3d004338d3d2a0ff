"""Networks by name, built from MONAI (no hand-written copies of what MONAI provides), importing
only the modules a network needs (inference.monai_light)."""
from __future__ import annotations

import torch
from torch import nn

from core.errors import DelineateError
from inference import card
from inference.monai_light import light


class DeepLab(nn.Module):
    """DeepLab-style: a residual encoder (MONAI blocks), atrous spatial pyramid pooling (MONAI's
    SimpleASPP) and an upsampling decoder with one skip, as in DeepLabv3+."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels=(16, 32, 64),
                 dilations=(1, 2, 4, 6)) -> None:
        super().__init__()
        blocks = light("monai.networks.blocks")
        Convolution, ResidualUnit, SimpleASPP = blocks.Convolution, blocks.ResidualUnit, blocks.SimpleASPP

        c1, c2, c3 = channels
        self.stem = Convolution(spatial_dims, in_channels, c1, strides=1, kernel_size=3)
        self.down1 = ResidualUnit(spatial_dims, c1, c2, strides=2, subunits=2)
        self.down2 = ResidualUnit(spatial_dims, c2, c3, strides=2, subunits=2)
        self.aspp = SimpleASPP(spatial_dims, c3, c3 // 4, kernel_sizes=(1, 3, 3, 3), dilations=dilations)
        self.up = nn.Upsample(scale_factor=4, mode="bilinear" if spatial_dims == 2 else "trilinear",
                              align_corners=False)
        self.fuse = Convolution(spatial_dims, c3 + c1, c1, kernel_size=3)
        self.head = Convolution(spatial_dims, c1, out_channels, kernel_size=1, conv_only=True)

    def forward(self, x):
        s = self.stem(x)
        y = self.aspp(self.down2(self.down1(s)))
        y = self.up(y)
        return self.head(self.fuse(torch.cat([y, s], dim=1)))


def build(architecture: str, spatial_dims: int, in_channels: int, out_channels: int, params: dict,
          patch_size=None) -> nn.Module:
    nets = light("monai.networks.nets")  # the one network's module, not all of MONAI (5-12 s of imports)
    # JSON has no tuples: MONAI wants ("name", {args}) for norm/act
    p = {k: tuple(v) if k in ("norm", "act", "norm_name") and isinstance(v, list) else v for k, v in params.items()}
    try:
        if architecture == "UNet":
            p.setdefault("channels", (16, 32, 64, 128))
            p.setdefault("strides", (2,) * (len(p["channels"]) - 1))
            return nets.UNet(spatial_dims, in_channels, out_channels, **p)
        if architecture == "AttentionUnet":
            p.setdefault("channels", (16, 32, 64, 128))
            p.setdefault("strides", (2,) * (len(p["channels"]) - 1))
            return nets.AttentionUnet(spatial_dims, in_channels, out_channels, **p)
        if architecture == "BasicUNetPlusPlus":
            return nets.BasicUNetPlusPlus(spatial_dims, in_channels, out_channels, **p)
        if architecture == "SegResNet":
            return nets.SegResNet(spatial_dims, in_channels=in_channels, out_channels=out_channels, **p)
        if architecture == "DynUNet":
            p.setdefault("kernel_size", [3] * 4)
            p.setdefault("strides", [1] + [2] * (len(p["kernel_size"]) - 1))
            p.setdefault("upsample_kernel_size", p["strides"][1:])
            return nets.DynUNet(spatial_dims, in_channels, out_channels, **p)
        if architecture == "UNETR":
            p.setdefault("img_size", tuple(patch_size))
            return nets.UNETR(in_channels, out_channels, spatial_dims=spatial_dims, **p)
        if architecture == "SwinUNETR":
            return nets.SwinUNETR(in_channels=in_channels, out_channels=out_channels,
                                     spatial_dims=spatial_dims, **p)
        if architecture == "DeepLab":
            return DeepLab(spatial_dims, in_channels, out_channels, **p)
        if architecture in ("ResUNetPP", "FCN", "SegNet", "TransUNet"):
            from inference import architectures

            if architecture == "TransUNet":
                p.setdefault("img_size", tuple(patch_size))
            return getattr(architectures, architecture)(spatial_dims, in_channels, out_channels, **p)
        if architecture in ("AdversarialUNet", "DiffusionSegmenter"):
            from inference import generative

            return getattr(generative, architecture)(spatial_dims, in_channels, out_channels, **p)
    except TypeError as exc:
        raise DelineateError(f"{architecture}: bad parameters {params}: {exc}") from None
    raise DelineateError(f"{architecture} is not built from parameters (it is an imported model)")


BUILT = card.BUILT
