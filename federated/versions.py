"""The federated model as a registry version: the base card with a new version, its parent, how it
was made and what it scored; weights written through registry.staged (nothing half-written)."""
from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from core.errors import DelineateError
from inference.card import Metric, ModelCard


def next_version(base: ModelCard, taken: list[str]) -> str:
    """The next free minor version, marked as federated ("1.1.0-fed"): a site's own retraining
    numbers its versions 1.1.0, 1.2.0 ... and the two never collide."""
    from inference.registry import next_minor_version

    return next_minor_version(base.version, [v.split("-")[0] for v in taken]) + "-fed"


def keep(net, base: ModelCard, version: str, root: Path, *, metrics: list[Metric], training_data: str,
         notes: str, promoted: bool) -> ModelCard:
    """Write ``net`` as ``base.id`` ``version`` under ``root`` (a suffix when that version exists
    there already, e.g. a second run at the same site); returns the saved card."""
    from inference.registry import staged
    from inference.weights import save_weights

    root = Path(root)
    chosen, n = version, 1
    while (root / base.id / chosen).exists():
        n += 1
        chosen = f"{version}.{n}"
    card = dataclasses.replace(
        base, version=chosen, parent_version=base.version, metrics=list(metrics), training_data=training_data,
        notes=notes, promoted=promoted, envelope=base.envelope,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), folder=None)
    try:
        with staged(root, base.id, chosen) as tmp:
            card.weights_sha256 = save_weights(net, Path(tmp) / card.weights)
            card.save(tmp)
    except OSError as exc:
        raise DelineateError(f"{root}: cannot keep the federated model ({exc})") from None
    card.folder = root / base.id / chosen
    return card
