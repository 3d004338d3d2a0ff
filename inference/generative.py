"""Generative settings for segmentation, trainable in the common loop through ``training_loss``:

- ``AdversarialUNet``: a U-Net whose masks a critic judges against real masks (SegAN, Xue et al.
  2018: an adversarial shape prior). The critic sees the image with a mask and has its own
  optimiser; only the U-Net runs at inference.
- ``DiffusionSegmenter``: a conditional denoising diffusion model (MedSegDiff-style, Wu et al. 2023)
  on MONAI's ``DiffusionModelUNet``: it denoises a one-hot mask given the image. It predicts the
  clean mask (x0) and is trained with the segmentation loss on that prediction; sampling runs a
  short DDIM schedule from noise. Each sample is a plausible mask: their mean is the probability
  map the runner returns, their spread the uncertainty overlay (``reseed`` gives another sample).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _onehot(y: torch.Tensor, n: int) -> torch.Tensor:
    y = y[:, 0] if y.ndim > 2 and y.shape[1] == 1 else y
    return F.one_hot(y.long(), n).movedim(-1, 1).float()


class AdversarialUNet(nn.Module):
    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels=(16, 32, 64, 128),
                 strides=None, critic_channels=(16, 32, 64), adversarial_weight: float = 0.05,
                 critic_lr: float = 2e-4) -> None:
        super().__init__()
        from inference.monai_light import light

        Convolution, UNet = light("monai.networks.blocks").Convolution, light("monai.networks.nets").UNet

        d = spatial_dims
        self.segmenter = UNet(d, in_channels, out_channels, channels=tuple(channels),
                              strides=tuple(strides or (2,) * (len(channels) - 1)))
        layers, cin = [], in_channels + out_channels
        for c in critic_channels:
            layers.append(Convolution(d, cin, c, strides=2, kernel_size=3, act=("leakyrelu", {"negative_slope": 0.2}),
                                      norm="instance"))
            cin = c
        pool = nn.AdaptiveAvgPool2d(1) if d == 2 else nn.AdaptiveAvgPool3d(1)
        self.critic = nn.Sequential(*layers, pool, nn.Flatten(), nn.Linear(cin, 1))
        self.n_classes = out_channels
        self.adversarial_weight = adversarial_weight
        self.critic_lr = critic_lr
        self._critic_opt = None

    def forward(self, x):
        return self.segmenter(x)

    def segmentation_parameters(self):
        return self.segmenter.parameters()

    def training_loss(self, x, y, base_loss):
        logits = self.segmenter(x)
        prob = torch.softmax(logits.float(), 1)
        real = _onehot(y, self.n_classes)
        if self._critic_opt is None:
            self._critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=self.critic_lr, betas=(0.5, 0.999))
        d_real, d_fake = self.critic(torch.cat([x, real], 1)), self.critic(torch.cat([x, prob.detach()], 1))
        d_loss = F.binary_cross_entropy_with_logits(d_real.float(), torch.ones_like(d_real.float())) + \
            F.binary_cross_entropy_with_logits(d_fake.float(), torch.zeros_like(d_fake.float()))
        self._critic_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self._critic_opt.step()
        g = self.critic(torch.cat([x, prob], 1)).float()
        adversarial = F.binary_cross_entropy_with_logits(g, torch.ones_like(g))
        return base_loss(logits.float(), y) + self.adversarial_weight * adversarial


class DiffusionSegmenter(nn.Module):
    stochastic = True

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, channels=(32, 64, 64),
                 attention_levels=(False, False, True), num_res_blocks: int = 1, norm_num_groups: int = 16,
                 timesteps: int = 1000, sampling_steps: int = 10, samples: int = 2) -> None:
        super().__init__()
        from inference.monai_light import light

        DiffusionModelUNet = light("monai.networks.nets").DiffusionModelUNet
        schedulers = light("monai.networks.schedulers")
        DDIMScheduler, DDPMScheduler = schedulers.DDIMScheduler, schedulers.DDPMScheduler

        self.unet = DiffusionModelUNet(spatial_dims, in_channels=out_channels + in_channels, out_channels=out_channels,
                                       channels=tuple(channels), attention_levels=tuple(attention_levels),
                                       num_res_blocks=num_res_blocks, norm_num_groups=norm_num_groups,
                                       num_head_channels=channels[-1])
        self.noise = DDPMScheduler(num_train_timesteps=timesteps, prediction_type="sample")
        self.sampler = DDIMScheduler(num_train_timesteps=timesteps, prediction_type="sample", clip_sample=True)
        self.sampler.set_timesteps(sampling_steps)
        self.n_classes, self.samples, self.seed = out_channels, samples, 0

    def reseed(self, seed: int) -> None:
        """The next forward passes draw other samples (the runner's output is reproducible per seed)."""
        self.seed = int(seed)

    def training_loss(self, x, y, base_loss):
        x0 = _onehot(y, self.n_classes) * 2 - 1
        t = torch.randint(0, self.noise.num_train_timesteps, (x.shape[0],), device=x.device)
        noisy = self.noise.add_noise(x0, torch.randn_like(x0), t)
        logits = self.unet(torch.cat([noisy, x], 1), timesteps=t)
        return base_loss(logits.float(), y)

    def sample_probabilities(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """One sampled mask as class probabilities (B, C, ...): DDIM from noise, conditioned on x.
        Differentiable (Grad-CAM and integrated gradients explain the sampled mask); the runner
        calls it under inference mode."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        shape = (x.shape[0], self.n_classes) + tuple(x.shape[2:])
        sample = torch.randn(shape, generator=gen).to(device=x.device, dtype=x.dtype)
        prob = None
        for t in self.sampler.timesteps:
            ts = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
            logits = self.unet(torch.cat([sample, x], 1), timesteps=ts)
            prob = torch.softmax(logits.float(), 1)
            sample, _ = self.sampler.step((prob * 2 - 1).to(sample.dtype), int(t), sample)
        return prob

    def forward(self, x):
        if self.training:
            raise RuntimeError("DiffusionSegmenter trains through training_loss")
        mean = sum(self.sample_probabilities(x, self.seed * 1000 + k) for k in range(self.samples)) / self.samples
        return torch.log(mean.clamp_min(1e-6))  # logits whose softmax is the samples' mean
