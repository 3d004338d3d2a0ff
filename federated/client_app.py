"""The Flower ClientApp a site runs (inside its SuperNode): train replies with the locally
fine-tuned parameters and scalar metrics, evaluate is the final step where the site decides whether
the federated model becomes its default. The site's store and model folder come from the SuperNode's
node config (``store``, ``models``); nothing else about the site is sent."""
from __future__ import annotations

from pathlib import Path

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from federated.site import Site

CLIPPING_KEY = "clipping_norm"  # what DifferentialPrivacyClientSideFixedClipping puts in the train config


def _clip_when_asked(msg: Message, context: Context, call_next) -> Message:
    """Flower's fixed-clipping DP mod, on the rounds whose config asks for it (DP is a run option)."""
    if msg.metadata.message_type == "train" and any(
            CLIPPING_KEY in c for c in msg.content.config_records.values()):
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


app = ClientApp(mods=[_clip_when_asked])


def _site(context: Context, config) -> Site:
    node = context.node_config
    if "store" not in node:
        raise ValueError("this SuperNode has no store: start it with --node-config 'store=\"/path/to/store\"'")
    return Site(str(node["store"]), str(config["model"]), str(config["model-version"]) or None,
                Path(str(node["models"])) if node.get("models") else None)


def _metrics(values: dict) -> MetricRecord:
    return MetricRecord({k: (int(v) if isinstance(v, (bool, int)) else float(v)) for k, v in values.items()})


@app.train()
def train(msg: Message, context: Context) -> Message:
    config = msg.content["config"]
    site = _site(context, config)
    arrays, metrics = site.fit(msg.content["arrays"].to_numpy_ndarrays(), int(config["local-iterations"]),
                               float(config["lr"]), int(config["seed"]) * 1000 + int(config["server-round"]),
                               float(config.get("proximal-mu", 0.0)))
    return Message(RecordDict({"arrays": ArrayRecord(arrays), "metrics": _metrics(metrics)}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    config = msg.content["config"]
    site = _site(context, config)
    card, metrics = site.decide(msg.content["arrays"].to_numpy_ndarrays(), str(config["version"]),
                                int(config["rounds"]), int(config["sites"]), str(config["strategy"]),
                                int(config["min-cases"]))
    print(f"[site node {context.node_id}] kept {card.id} v{card.version} in {card.folder}: "
          f"{'promoted to default' if card.promoted else 'not promoted'}", flush=True)
    return Message(RecordDict({"metrics": _metrics(metrics)}), reply_to=msg)
