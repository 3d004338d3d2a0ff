"""The Flower ServerApp: FedAvg (or FedProx, or FedMedian for robustness to a bad site) over the
sites' local fine-tuning for N rounds with a minimum number of sites; then each site scores the
result on its own held-out cases and decides its promotion, and the server keeps the aggregated
model as a new version whose card records the parent, rounds, sites and each site's before/after
Dice. Run options come from the run config (flower-app/pyproject.toml, ``flwr run --run-config``)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from federated.strategies import make_strategy

app = ServerApp()


def _final_step(grid: Grid, arrays: ArrayRecord, config: dict, timeout: float) -> list[dict]:
    """Every connected site scores the final model and decides; their scalar replies, by node."""
    nodes = sorted(grid.get_node_ids())
    messages = [Message(RecordDict({"arrays": arrays, "config": ConfigRecord(config)}),
                        message_type=MessageType.EVALUATE, dst_node_id=n) for n in nodes]
    out = []
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            out.append({"node": reply.metadata.src_node_id, "error": reply.error.reason})
        else:
            out.append({"node": reply.metadata.src_node_id, **dict(reply.content["metrics"])})
    return sorted(out, key=lambda r: r["node"])


@app.main()
def main(grid: Grid, context: Context) -> None:
    import torch

    from federated import parameters
    from federated.versions import keep, next_version
    from inference.card import Metric
    from inference.registry import SHIPPED, Registry, user_models_dir
    from inference.runner import load_model

    c = context.run_config
    models_root = Path(str(c["models-dir"])) if c["models-dir"] else user_models_dir()
    registry = Registry([SHIPPED, models_root])
    base = registry.get(str(c["model"]), str(c["model-version"]) or None)
    net = load_model(base, torch.device("cpu"))
    rounds, min_sites, timeout = int(c["rounds"]), int(c["min-sites"]), float(c["timeout"])
    strategy, label = make_strategy(str(c["strategy"]), min_sites, float(c["proximal-mu"]), float(c["dp-noise"]),
                                    float(c["dp-clip"]))
    train_config = ConfigRecord({"model": base.id, "model-version": base.version, "lr": float(c["lr"]),
                                 "local-iterations": int(c["local-iterations"]), "seed": int(c["seed"])})
    t0 = time.perf_counter()
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(parameters.to_arrays(net)), num_rounds=rounds,
                            timeout=timeout, train_config=train_config)
    seconds = time.perf_counter() - t0
    version = next_version(base, [v.version for v in registry.versions(base.id)])
    sites = _final_step(grid, result.arrays, {"model": base.id, "model-version": base.version, "version": version,
                                              "rounds": rounds, "sites": len(grid.get_node_ids()), "strategy": label,
                                              "min-cases": int(c["min-cases"])}, timeout)
    parameters.load_arrays(net, result.arrays.to_numpy_ndarrays())
    ok = [s for s in sites if "error" not in s]
    metrics = []
    for i, s in enumerate(ok, 1):
        data = f"site {i} (Flower node {s['node']}): its {int(s['held-out-cases'])} held-out approved corrections"
        metrics += [Metric(f"Site {i} Dice before (its default)", s["dice-before"], data),
                    Metric(f"Site {i} Dice after", s["dice-after"], data),
                    Metric(f"Site {i} promoted", float(s["promoted"]), data + ", paired bootstrap/t rule")]
    promoted = sum(int(s["promoted"]) for s in ok)
    card = keep(net, base, version, models_root, metrics=metrics, promoted=False,
                training_data=f"{base.training_data} Federated fine-tuning ({label}, {rounds} rounds, {len(ok)} "
                              f"sites) on each site's approved corrections mixed with the generated data above; "
                              f"only parameters and scalar metrics left the sites.",
                notes=f"{base.notes} Federated from v{base.version}: {label}, {rounds} rounds of "
                      f"{int(c['local-iterations'])} local iterations, {len(ok)} sites (minimum {min_sites}); "
                      f"promoted at {promoted} of {len(ok)} sites, each by its own held-out cases (the server keeps "
                      f"it unpromoted: promotion is each site's decision).")
    history = {r: dict(m) for r, m in result.train_metrics_clientapp.items()}
    summary = {"model": base.id, "parent": base.version, "version": card.version, "folder": str(card.folder),
               "strategy": label, "rounds": rounds, "sites": sites, "round_metrics": history,
               "seconds": seconds, "seconds_per_round": seconds / max(rounds, 1)}
    print("FEDERATED-SUMMARY " + json.dumps(summary), flush=True)
    if c["result-file"]:
        from formats.atomic import atomic_output

        with atomic_output(Path(str(c["result-file"]))) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=2))
