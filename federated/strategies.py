"""The aggregation rules a federation may choose, all Flower's own: FedAvg, FedProx (a proximal term
in each site's loss keeps updates near the global model when sites differ), FedMedian (the
coordinate-wise median: one bad site cannot drag the model), each optionally wrapped in Flower's
central DP with client-side fixed clipping (sites clip their update; the server adds Gaussian noise)."""
from __future__ import annotations

STRATEGIES = ("fedavg", "fedprox", "fedmedian")


def make_strategy(name: str, min_sites: int, proximal_mu: float = 0.0, dp_noise: float = 0.0, dp_clip: float = 0.0):
    """(strategy, label for cards). ``dp_clip`` > 0 turns DP on."""
    from flwr.serverapp.strategy import (DifferentialPrivacyClientSideFixedClipping, FedAvg, FedMedian,
                                         FedProx)

    common = dict(fraction_evaluate=0.0, min_train_nodes=min_sites, min_available_nodes=min_sites)
    if name == "fedavg":
        strategy, label = FedAvg(**common), "FedAvg"
    elif name == "fedprox":
        strategy, label = FedProx(proximal_mu=proximal_mu or 0.01, **common), f"FedProx (mu {proximal_mu or 0.01:g})"
    elif name == "fedmedian":
        strategy, label = FedMedian(**common), "FedMedian"
    else:
        raise ValueError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}")
    if dp_clip > 0:
        strategy = DifferentialPrivacyClientSideFixedClipping(strategy, dp_noise, dp_clip, min_sites)
        label += f" with central DP (clip {dp_clip:g}, noise multiplier {dp_noise:g})"
    return strategy, label
