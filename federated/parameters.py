"""A network's parameters as the plain arrays that cross the wire: the floating-point entries of its
state dict, in state-dict order (integer buffers such as BatchNorm's batch counters are site-local
bookkeeping, not model parameters, and would not average)."""
from __future__ import annotations

import numpy as np
import torch

from core.errors import DelineateError


def shared_names(net: torch.nn.Module) -> list[str]:
    return [k for k, v in net.state_dict().items() if v.is_floating_point()]


def to_arrays(net: torch.nn.Module) -> list[np.ndarray]:
    state = net.state_dict()
    return [state[k].detach().cpu().numpy().astype(np.float32, copy=True) for k in shared_names(net)]


def shapes(net: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(a.shape) for a in to_arrays(net)]


def load_arrays(net: torch.nn.Module, arrays: list[np.ndarray]) -> torch.nn.Module:
    """Fill ``net`` from arrays in ``shared_names`` order; every shape must match."""
    names = shared_names(net)
    state = net.state_dict()
    if len(arrays) != len(names):
        raise DelineateError(f"the federation sent {len(arrays)} arrays; this model has {len(names)} parameters")
    for name, a in zip(names, arrays):
        if tuple(a.shape) != tuple(state[name].shape):
            raise DelineateError(f"parameter {name}: the federation sent shape {tuple(a.shape)}, the model has "
                                 f"{tuple(state[name].shape)} (a different model or version)")
        state[name] = torch.from_numpy(np.asarray(a, np.float32)).to(state[name].dtype)
    net.load_state_dict(state)
    return net
