#!/usr/bin/env python3
"""Retraining on physicians' corrections: the default ultrasound model on a shifted domain
(hyperechoic lesions only), 10 approved corrections on the training side of the store, fine-tuned on
the CPU; prints the wall time (goal <= 10 min) and the held-out Dice it bought."""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(iterations: int = 200) -> None:
    from core.labels import LabelMap
    from core.promotion import MIN_CASES
    from core.volume import Volume
    from inference.registry import SHIPPED, Registry
    from inference.runner import segment
    from inference.training.from_store import retrain
    from inference.training.synth_us import image
    from store.corrections import CorrectionsStore, image_hash

    tmp = Path(tempfile.mkdtemp(prefix="delineate-retrain-"))
    try:
        shutil.copytree(SHIPPED / "us-lesion-2d", tmp / "models" / "us-lesion-2d")
        reg = Registry([tmp / "models"])
        base = reg.get("us-lesion-2d")
        store = CorrectionsStore(tmp / "store")
        rng = np.random.default_rng(11)
        counts = {"train": 0, "holdout": 0}
        while counts["train"] < 10 or counts["holdout"] < MIN_CASES:
            img, truth = image(rng, hyperechoic=True)
            vol = Volume.from_array(img[None], spacing=(0.3, 0.3, 1.0), modality="US")
            side = store._split(image_hash(vol))
            if counts[side] >= (10 if side == "train" else MIN_CASES):
                continue
            ai = segment(vol, base, device="cpu").labels
            store.save(vol, ai, LabelMap(truth[None].astype(np.uint8), vol.geometry, base.labels),
                       reviewer="scripted", model_id=base.id, model_version=base.version, state="approved")
            counts[side] += 1
        t0 = time.perf_counter()
        card = retrain(store, base, tmp / "models", iterations, log=lambda m: None,
                       versions=[c.version for c in reg.versions(base.id)])
        t = time.perf_counter() - t0
        m = {x.name: x.value for x in card.metrics}
        print(f"fine-tuning {base.id} v{base.version} on {counts['train']} corrected cases "
              f"({iterations} iterations, CPU): {t:.1f} s   (goal <= 600 s)")
        print(f"held-out Dice on {counts['holdout']} corrected cases: {m['Dice mean before (parent)']:.3f} -> "
              f"{m['Dice mean after']:.3f} (95 % CI of the change {m['Dice change 95% CI low']:+.3f} to "
              f"{m['Dice change 95% CI high']:+.3f}); promoted: {card.promoted}")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
