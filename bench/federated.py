#!/usr/bin/env python3
"""Federated retraining on this CPU, over Flower's deployment runtime on localhost (a SuperLink and
three SuperNode processes, as three hospitals would run them):

  time   seconds per federated round, 3 sites x 10 approved corrections each (every site trains
         --local-iterations per round), against one local retraining on the same 30 corrections in one
         store for the same number of iterations (inference.training.from_store.retrain), same run:
         printed as a ratio.
  --quality SEEDS   for each seed, three sites with shifted domains (tests/test_federated_data.py):
         the global model after --rounds rounds vs each site's local-only fine-tuning for the same
         per-site iterations (rounds x local iterations), all scored on the union of the three sites'
         held-out cases; prints the margin over the best local-only model (and every model's Dice
         per domain), mean and standard error over seeds. The domains were designed on seeds 100
         and up (--first-seed 100); the reported seeds are 0 to SEEDS-1. --dp CLIP,NOISE adds a run
         with Flower's central DP (client-side clipping) to measure its utility cost.
fp32 (DELINEATE_CPU_BF16=0), so the figures are those of a CPU without bf16 units."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DELINEATE_CPU_BF16"] = "0"


def _union_dice(sites, net, card=None) -> np.ndarray:
    return np.concatenate([s.dice(net, card) for s in sites])


def _per_domain(d: np.ndarray, n: int = 3) -> str:
    return " / ".join(f"{v.mean():.2f}" for v in np.split(d, n))


def timing(tmp: Path, rounds: int, iterations: int) -> None:
    from federated import runtime
    from inference.registry import SHIPPED, Registry
    from inference.training.from_store import retrain
    from store.corrections import CorrectionsStore
    from tests.test_federated_data import DOMAINS, make_store

    stores = [make_store(tmp / f"site-{k}", k, 10, 8, seed=300 + i) for i, k in enumerate(DOMAINS)]
    for i, k in enumerate(DOMAINS):  # the same 30 training corrections (same seeds) in one store
        make_store(tmp / "pooled", k, 10, 8, seed=300 + i)
    summary, _models = runtime.one_machine(stores, tmp / "fed", {"rounds": rounds, "local-iterations": iterations})
    fed = summary["seconds_per_round"]
    shutil.copytree(SHIPPED / "us-lesion-2d", tmp / "models" / "us-lesion-2d")
    base = Registry([tmp / "models"]).get("us-lesion-2d")
    t = time.perf_counter()
    with CorrectionsStore(tmp / "pooled") as store:
        retrain(store, base, tmp / "models", iterations, log=lambda m: None, versions=["1.0.0"])
    local = time.perf_counter() - t
    print(f"federated: {fed:.1f} s per round (3 sites x 10 corrections, {iterations} local iterations each, "
          f"{rounds} rounds; SuperLink + 3 SuperNodes on this machine)")
    print(f"local retraining on the 30 corrections in one store, {iterations} iterations (with its before/after "
          f"evaluation): {local:.1f} s")
    print(f"ratio federated round / local retraining: {fed / local:.2f}x")


def in_process(sites, rounds: int, iterations: int, lr: float, seed: int, dp=None):
    """The same rounds without processes: each Site fine-tunes, Flower's FedAvg.aggregate_train
    averages (a Message outside a run needs Flower's task identity set). ``dp`` (clip, noise):
    each update clipped as Flower's fixedclipping_mod does, noise added by Flower's
    DifferentialPrivacyClientSideFixedClipping."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.supercore.differential_privacy import compute_clip_model_update
    from flwr.supercore.task_identity import TaskIdentity

    from federated import parameters
    from federated.strategies import make_strategy

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    np.random.seed(seed)  # Flower's Gaussian noise draws from numpy's global generator
    strategy, _label = make_strategy("fedavg", len(sites), 0.0, *((dp[1], dp[0]) if dp else (0.0, 0.0)))
    arrays, norms = parameters.to_arrays(sites[0].network()), []
    for r in range(1, rounds + 1):
        replies = []
        for i, s in enumerate(sites):
            new, metrics = s.fit(arrays, iterations, lr, seed * 1000 + r * 10 + i)
            norms.append(float(np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(new, arrays)))))
            if dp:
                compute_clip_model_update(new, arrays, dp[0])
            replies.append(Message(RecordDict({"arrays": ArrayRecord(new), "metrics": MetricRecord(metrics)}),
                                   dst_node_id=i + 1, message_type="train"))
        arrays = strategy.aggregate_train(r, replies)[0].to_numpy_ndarrays()
    print(f"  update L2 norms before clipping: median {np.median(norms):.3f}, max {max(norms):.3f}", flush=True)
    return sites[0].network(arrays)


def quality(tmp: Path, seeds: int, rounds: int, iterations: int, n_train: int, lr: float, dp,
            processes: bool = True, with_local: bool = True, first_seed: int = 0) -> None:
    import torch

    from federated import local_training, runtime
    from federated.site import Site
    from inference.card import ModelCard
    from inference.runner import load_model
    from tests.test_federated_data import DOMAINS, make_store

    torch.set_num_threads(1)
    margins, dp_costs = [], []
    for seed in range(first_seed, first_seed + seeds):
        folder = tmp / f"seed{seed}"
        stores = [make_store(folder / k, k, n_train, 8, seed=1000 * seed + i) for i, k in enumerate(DOMAINS)]
        sites = [Site(st, "us-lesion-2d", models_root=folder / "scratch") for st in stores]
        base = sites[0].network()
        t = time.perf_counter()
        local, split = [], {"base": _per_domain(_union_dice(sites, base))}
        for k, s in zip(DOMAINS, sites if with_local else []):  # alone, the iterations it trains in the federation
            net = s.network()
            local_training.fit(net, s.recipe, rounds * iterations, lr, seed)
            d = _union_dice(sites, net)
            local.append(float(d.mean()))
            split[f"local {k}"] = _per_domain(d)
        t_local = time.perf_counter() - t
        scores = {}
        if not processes:
            d = _union_dice(sites, in_process(sites, rounds, iterations, lr, seed))
            scores["FedAvg"], split["FedAvg"] = float(d.mean()), _per_domain(d)
            if dp:
                scores["FedAvg+DP"] = float(_union_dice(sites, in_process(sites, rounds, iterations, lr, seed,
                                                                          dp)).mean())
        runs = [("FedAvg", {})] + ([("FedAvg+DP", {"dp-clip": dp[0], "dp-noise": dp[1]})] if dp else [])
        for label, extra in runs if processes else []:
            summary, _m = runtime.one_machine(stores, folder / label, {"rounds": rounds, "local-iterations": iterations,
                                                                      "lr": lr, "seed": seed, **extra})
            card = ModelCard.load(Path(summary["folder"]) / "card.json")
            d = _union_dice(sites, load_model(card, torch.device("cpu")), card)
            scores[label], split[label] = float(d.mean()), _per_domain(d)
        margin = scores["FedAvg"] - max(local) if local else float("nan")
        margins.append(margin)
        if dp:
            dp_costs.append(scores["FedAvg"] - scores["FedAvg+DP"])
        print(f"seed {seed}: union held-out Dice (24 cases): base {_union_dice(sites, base).mean():.3f}, local-only "
              + " / ".join(f"{v:.3f}" for v in local) + f" ({t_local:.0f} s), federated {scores['FedAvg']:.3f}"
              + (f", federated with DP {scores['FedAvg+DP']:.3f}" if dp else "") + f"; margin over the best local "
              f"{margin:+.3f}", flush=True)
        print(f"  per domain ({' / '.join(DOMAINS)}): " + "; ".join(f"{k} {v}" for k, v in split.items()), flush=True)
    m = np.asarray(margins)
    se = m.std(ddof=1) / np.sqrt(len(m)) if len(m) > 1 else float("nan")
    print(f"federated minus best local-only, union held-out Dice: mean {m.mean():+.3f}, SE {se:.3f} over {len(m)} "
          f"seeds ({m.mean() / se:.1f} SEs)" if len(m) > 1 else f"margin {m.mean():+.3f} (one seed)")
    if dp:
        print(f"DP utility cost (Dice lost to clipping + noise): mean {np.mean(dp_costs):+.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, help="default 2 (timing), 6 (--quality)")
    ap.add_argument("--local-iterations", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3, help="with --quality: learning rate, federated and local alike")
    ap.add_argument("--quality", type=int, metavar="SEEDS", help="compare with local-only retraining over SEEDS")
    ap.add_argument("--first-seed", type=int, default=0, help="with --quality: the first seed (data and "
                    "training); docs/federated.md reports 0 to SEEDS-1, the domains were designed on 100 and up")
    ap.add_argument("--train-cases", type=int, default=8, help="with --quality: training corrections per site")
    ap.add_argument("--dp", help="with --quality: CLIP,NOISE for a run with central DP")
    ap.add_argument("--no-local", action="store_true", help="with --quality: skip the local-only runs (a DP "
                    "cost measurement)")
    ap.add_argument("--in-process", action="store_true", help="with --quality: drive the rounds in this process "
                    "(same sites, Flower's FedAvg aggregation) instead of SuperLink + SuperNodes: the same numbers "
                    "without the processes' start-up, for many seeds")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="delineate-federated-"))
    try:
        if args.quality:
            dp = tuple(float(v) for v in args.dp.split(",")) if args.dp else None
            quality(tmp, args.quality, args.rounds or 6, args.local_iterations, args.train_cases, args.lr, dp,
                    not args.in_process, not args.no_local, args.first_seed)
        else:
            timing(tmp, args.rounds or 2, args.local_iterations)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
