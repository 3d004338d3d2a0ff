"""Segmentation networks the field compares that MONAI has no class for, assembled from MONAI
blocks (convolutions, residual units, squeeze-excitation, ASPP, transformer blocks): ResUNet++,
FCN, SegNet and a TransUNet-style CNN-Transformer hybrid. 2D or 3D by ``spatial_dims``."""
from __future__ import annotations

import torch
from torch import nn

from inference.monai_light import light


def _conv(dims, cin, cout, **kw):
    Convolution = light("monai.networks.blocks").Convolution

    return Convolution(dims, cin, cout, kernel_size=3, norm="batch", act="relu", **kw)


def _up(dims, scale=2):
    return nn.Upsample(scale_factor=scale, mode="bilinear" if dims == 2 else "trilinear", align_corners=False)


class _ResidualUNet(nn.Module):
    """Residual encoder (optionally with squeeze-excitation before each step down), a bridge the
    subclass defines, residual decoder with skips: what ResUNet++ and the TransUNet hybrid share."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels, se: bool) -> None:
        super().__init__()
        blocks = light("monai.networks.blocks")
        ChannelSELayer, Convolution, ResidualUnit = blocks.ChannelSELayer, blocks.Convolution, blocks.ResidualUnit

        d = spatial_dims
        self.stem = ResidualUnit(d, in_channels, channels[0], strides=1, subunits=2, norm="batch")
        self.down = nn.ModuleList()
        for cin, cout in zip(channels[:-1], channels[1:]):
            step = ResidualUnit(d, cin, cout, strides=2, subunits=2, norm="batch")
            self.down.append(nn.Sequential(ChannelSELayer(d, cin, r=4), step) if se else step)
        self.up = nn.ModuleList([ResidualUnit(d, a + b, b, strides=1, subunits=2, norm="batch")
                                 for a, b in zip(channels[::-1][:-1], channels[::-1][1:])])
        self.upsample = _up(d)
        self.head = Convolution(d, channels[0], out_channels, kernel_size=1, conv_only=True)

    def bridge(self, y):
        return y

    def forward(self, x):
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = self.bridge(skips.pop())
        for block in self.up:
            y = block(torch.cat([self.upsample(y), skips.pop()], dim=1))
        return self.head(y)


class ResUNetPP(_ResidualUNet):
    """ResUNet++-style (Jha et al. 2019): residual units with squeeze-excitation in the encoder,
    atrous spatial pyramid pooling at the bridge, residual decoder with skip connections."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels=(16, 32, 64, 128),
                 dilations=(1, 2, 4, 6)) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, tuple(channels), se=True)
        SimpleASPP = light("monai.networks.blocks").SimpleASPP

        top = channels[-1]
        self.aspp = SimpleASPP(spatial_dims, top, top // 4, kernel_sizes=(1, 3, 3, 3), dilations=dilations,
                               norm_type="batch")

    def bridge(self, y):
        return self.aspp(y)


class FCN(nn.Module):
    """FCN-8s-style (Long et al. 2015): a plain convolutional encoder; class scores taken at 1/2,
    1/4 and 1/8 resolution, upsampled and summed (the skip fusion), no learned decoder."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels=(16, 32, 64, 128)) -> None:
        super().__init__()
        Convolution = light("monai.networks.blocks").Convolution

        d = spatial_dims
        pool = nn.MaxPool2d if d == 2 else nn.MaxPool3d
        self.stages = nn.ModuleList()
        cin = in_channels
        for n, c in enumerate(channels):
            self.stages.append(nn.Sequential(*([pool(2)] if n else []), _conv(d, cin, c), _conv(d, c, c)))
            cin = c
        self.scores = nn.ModuleList([Convolution(d, c, out_channels, kernel_size=1, conv_only=True)
                                     for c in channels[1:]])
        self.upsample = _up(d)

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        y = self.scores[-1](feats[-1])
        for feat, score in zip(feats[-2:0:-1], list(self.scores)[-2::-1]):
            y = self.upsample(y) + score(feat)
        return self.upsample(y)


class SegNet(nn.Module):
    """SegNet (Badrinarayanan et al. 2017): encoder with max-pooling that remembers where each
    maximum was; the decoder unpools to exactly those positions (no skip features copied)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels=(16, 32, 64, 128)) -> None:
        super().__init__()
        Convolution = light("monai.networks.blocks").Convolution

        d = spatial_dims
        self.pool = (nn.MaxPool2d if d == 2 else nn.MaxPool3d)(2, return_indices=True)
        self.unpool = (nn.MaxUnpool2d if d == 2 else nn.MaxUnpool3d)(2)
        self.enc = nn.ModuleList()
        cin = in_channels
        for c in channels:
            self.enc.append(nn.Sequential(_conv(d, cin, c), _conv(d, c, c)))
            cin = c
        channels = tuple(channels)
        rev = channels[::-1]
        self.dec = nn.ModuleList([nn.Sequential(_conv(d, c, c), _conv(d, c, nxt))
                                  for c, nxt in zip(rev, rev[1:] + (channels[0],))])
        self.head = Convolution(d, channels[0], out_channels, kernel_size=1, conv_only=True)

    def forward(self, x):
        indices, sizes = [], []
        for block in self.enc:
            x = block(x)
            sizes.append(x.shape)
            x, idx = self.pool(x)
            indices.append(idx)
        for block in self.dec:
            x = block(self.unpool(x, indices.pop(), output_size=sizes.pop()))
        return self.head(x)


class TransUNet(_ResidualUNet):
    """A CNN-Transformer hybrid in the manner of TransUNet (Chen et al. 2021): a convolutional
    encoder to 1/8 resolution, a Transformer over the 1/8 feature map's positions (learned position
    embedding, so the input size is fixed to the model's patch), and a U-Net decoder with skips."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, img_size, channels=(16, 32, 64, 128),
                 hidden_size: int = 128, num_layers: int = 4, num_heads: int = 4) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, tuple(channels), se=False)
        blocks = light("monai.networks.blocks")
        Convolution, TransformerBlock = blocks.Convolution, blocks.TransformerBlock

        factor = 2 ** (len(channels) - 1)
        self.grid = tuple(int(s) // factor for s in img_size)
        n_tokens = int(torch.tensor(self.grid).prod())
        self.embed = nn.Linear(channels[-1], hidden_size)
        self.position = nn.Parameter(torch.zeros(1, n_tokens, hidden_size))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.transformer = nn.ModuleList([TransformerBlock(hidden_size, hidden_size * 4, num_heads, 0.0)
                                          for _ in range(num_layers)])
        self.norm = nn.LayerNorm(hidden_size)
        self.unembed = Convolution(spatial_dims, hidden_size, channels[-1], kernel_size=1)

    def bridge(self, y):
        shape = y.shape
        tokens = self.embed(y.flatten(2).transpose(1, 2)) + self.position
        for block in self.transformer:
            tokens = block(tokens)
        return self.unembed(self.norm(tokens).transpose(1, 2).reshape(shape[0], -1, *shape[2:]))
