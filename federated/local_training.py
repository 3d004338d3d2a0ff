"""One site's local update in a federated round: a few iterations of the trainer's own recipe (Dice +
cross-entropy, AdamW, cosine schedule, bf16 only where the CPU has bf16 units) in memory, from the
global parameters. It is its own short loop rather than inference.training.train because FedProx
adds a proximal term to the loss (mu/2 |w - w_global|^2), which keeps a site's update near the
global model when sites' data differ, and a round should not write weights to disk."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from core.progress import CancelToken, ProgressFn, check, no_progress
from inference.device import cpu_has_fast_bf16
from inference.training.augment import random_crop


def _batch(recipe, rng: torch.Generator):
    xs, ys = [], []
    for _ in range(recipe.batch):
        x, y = recipe.sample(rng)
        x = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
        y = torch.from_numpy(np.asarray(y, np.int64))[None]
        x, y = random_crop([x, y], recipe.patch_size, rng, focus=lambda ts: ts[1][0] > 0)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs).float(), torch.stack(ys)


def fit(net: torch.nn.Module, recipe, iterations: int, lr: float, seed: int, proximal_mu: float = 0.0,
        progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> float:
    """Train ``net`` in place; returns the last smoothed loss."""
    from inference.monai_light import light

    DiceCELoss = light("monai.losses").DiceCELoss

    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    params = list(net.segmentation_parameters() if hasattr(net, "segmentation_parameters") else net.parameters())
    anchor = [p.detach().clone() for p in params] if proximal_mu > 0 else None
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    amp = cpu_has_fast_bf16()
    net.train()
    running = float("nan")
    for it in range(iterations):
        check(cancel)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * it / iterations))
        x, y = _batch(recipe, rng)
        target = y[:, None] if y.ndim == x.ndim - 1 else y
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = net(x)
            if isinstance(out, (list, tuple)):
                out = out[0]
            loss = loss_fn(out.float(), target)
        if anchor is not None:
            loss = loss + proximal_mu / 2 * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        running = value if it == 0 else 0.9 * running + 0.1 * value
        progress((it + 1) / iterations, f"local iteration {it + 1}/{iterations} loss {running:.3f}")
    net.eval()
    return running
