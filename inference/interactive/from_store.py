"""Fine-tune the promptable network on the physicians' approved corrections (issue 18's learning loop).

Every approved correction holds objects a physician accepted: each label's largest connected piece
is one. Train-side objects are cut out as the engine sees them (a region around the object at
isotropic voxels, 48^3, or 64^2 for a 2D image) and mixed with the generator's scenes, so the network
does not forget; the prompts on them are simulated as in training (first prompt, then corrective
rounds answered by the network itself). Held-out objects (the store's fixed split) are run through
the challenge protocol (inference.interactive.benchmark) before and after, and the new version becomes
the engine's network only if its per-object DSC AUC beats its parent's by more than noise can
explain (core.promotion, the rule the segmentation models use)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy import ndimage as ndi

from core.errors import DelineateError
from core.progress import check, no_progress
from core.volume import luminance
from inference.interactive import net_model
from inference.interactive.benchmark import Case, run_case
from inference.interactive.synth_objects import Scene

MIN_VOXELS = 30  # an object smaller than this is a stray stroke, not a structure
DATASET = "store corrections"


def objects(store, split: str) -> list[Case]:
    """The objects of the approved corrections on one side of the store's split."""
    out = []
    for c in store.cases("approved"):
        if c.split != split:
            continue
        image, _ai, fixed = store.load(c.id)
        names = {lab.value: lab.name for lab in fixed.table.labels} if fixed.table is not None else {}
        for value in np.unique(fixed.array):
            if value == 0:
                continue
            pieces, n = ndi.label(fixed.array == value)
            if n == 0:
                continue
            sizes = np.bincount(pieces.ravel())[1:]
            if sizes.max() < MIN_VOXELS:
                continue
            truth = pieces == 1 + int(np.argmax(sizes))
            out.append(Case(DATASET, f"{c.id[:8]} {names.get(int(value), value)}", image, truth))
    return out


def scene_of(case: Case, rng: np.random.Generator, patch=(48, 48, 48), plane=(64, 64)) -> Scene:
    """``case``'s object in a region around it on the network's grid: isotropic voxels, the object
    filling 1/3-3/4 of the region's longest side, placed off-centre at random, as the engine's
    regions of interest are. CT is clipped as the engine clips it."""
    vol = case.volume
    a = vol.array
    if vol.is_color:
        a = luminance(a, np.float32)
    spacing = np.asarray(vol.geometry.spacing, float)[::-1]  # (z, y, x) mm
    flat = a.shape[0] == 1
    idx = np.argwhere(case.truth)
    lo, hi = idx.min(0), idx.max(0) + 1
    extent = (hi - lo) * spacing
    if flat:
        extent[0] = 0.0
    side = float(extent.max()) / rng.uniform(0.33, 0.75)
    shape = (1, *plane) if flat else tuple(patch)
    step = side / max(shape)
    centre = (lo + hi - 1) / 2 + rng.uniform(-0.15, 0.15, 3) * (hi - lo)
    axes = [np.zeros(1) if flat and ax == 0 else (np.arange(n) - (n - 1) / 2) * step / spacing[ax] + centre[ax]
            for ax, n in enumerate(shape)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    image = ndi.map_coordinates(np.asarray(a, np.float32), coords, order=1, mode="nearest")
    target = ndi.map_coordinates(case.truth.astype(np.float32), coords, order=1, mode="constant") >= 0.5
    if vol.modality == "CT":
        image = np.clip(image, *net_model.CT_CLIP)
    return Scene(image.astype(np.float32), target)


def _auc(engine_folder: Path, cases: list[Case], device=None, cancel=None) -> np.ndarray:
    """Per object: the mean DSC AUC of the click and the box start (the benchmark's protocol)."""
    from inference.interactive.network import NetworkEngine

    engine = NetworkEngine(device, folder=engine_folder)
    scores = []
    for case in cases:
        check(cancel)
        state = engine.open(case.volume)
        scores.append(np.mean([run_case(state, case, start, "network", cancel).auc for start in ("click", "box")]))
    return np.asarray(scores)


def _next_version(version: str, root: Path) -> str:
    from inference.registry import next_minor_version

    taken = {p.name for p in net_model.version_folders()} | ({p.name for p in root.iterdir()} if root.is_dir() else set())
    return next_minor_version(version, taken)


def retrain(store, out_root: Optional[Path] = None, steps: int = 200, minutes: float = 30.0,
            base: Optional[Path] = None, store_share: float = 0.5, seed: int = 1, min_cases: Optional[int] = None,
            progress=no_progress, cancel=None, log: Callable[[str], None] = print) -> dict:
    """Fine-tune the engine's network (or ``base``) on the store's approved corrections; write the new
    version to ``out_root`` (default: this site's models folder, where the engine looks too) and
    return its card."""
    from core.promotion import MIN_CASES, decide
    from inference.interactive.train_prompts import TrainConfig, train, write_model

    base = Path(base) if base is not None else net_model.shipped_folder()
    parent = json.loads((base / net_model.CARD_NAME).read_text())
    train_objects, held = objects(store, "train"), objects(store, "holdout")
    if not train_objects or not held:
        raise DelineateError(f"fine-tuning the promptable network needs approved corrections on both sides of "
                             f"the split (objects: train {len(train_objects)}, held-out {len(held)})")
    progress(0.0, f"measuring v{parent['version']} on {len(held)} held-out objects")
    before = _auc(base, held, cancel=cancel)
    kinds = {}
    for case in train_objects:
        kinds.setdefault(case.volume.array.shape[0] == 1, []).append(case)

    cfg = TrainConfig(steps=steps, minutes=minutes, seed=seed, lr=2e-4, lr_min=1e-5, checkpoint_every_s=1e9,
                      init=str(base / parent.get("weights", "model.safetensors")), arch=parent["parameters"])

    def from_store(rng):
        flat = bool(list(kinds)[int(rng.integers(len(kinds)))])
        pick = kinds[flat]
        n = cfg.batch2d if flat else cfg.batch
        return flat, [scene_of(pick[int(rng.integers(len(pick)))], rng, cfg.patch, cfg.plane) for _ in range(n)]

    def step_progress(msg: str) -> None:
        m = re.match(r"step (\d+)", msg)
        if m:
            progress(0.1 + 0.8 * int(m.group(1)) / steps, msg)
        log(msg)

    state = train(cfg, None, log=step_progress, cancel=cancel, extra=from_store, extra_share=store_share)
    out_root = Path(out_root) if out_root is not None else net_model.user_dir()
    version = _next_version(parent["version"], out_root)
    folder = out_root / version
    card = write_model(state["net"], state, folder, version)
    progress(0.9, f"measuring v{version} on {len(held)} held-out objects")
    after = _auc(folder, held, cancel=cancel)
    decision = decide(before, after, min_cases=MIN_CASES if min_cases is None else min_cases)
    data = f"{len(held)} held-out objects of approved corrections in the store (fixed split), challenge protocol"
    card["parent_version"] = parent["version"]
    card["training_data"] = (f"{parent['training_data']} Fine-tuned from v{parent['version']} on "
                             f"{len(train_objects)} objects of approved physician corrections from the Delineate "
                             f"store, mixed {store_share:.0%} with the generated scenes above.")
    card["metrics"] = [{"name": name, "value": float(value), "data": data} for name, value in (
        ("DSC AUC before (parent)", decision.before), ("DSC AUC after", decision.after),
        ("DSC AUC change (paired mean)", decision.difference), ("DSC AUC change 95% CI low", decision.ci_low),
        ("DSC AUC change 95% CI high", decision.ci_high), ("Held-out objects", decision.n))]
    card["promoted"] = decision.promote
    card["limits"] = (f"{parent.get('limits', '')} Retrained from v{parent['version']}: "
                      + decision.summary().replace("held-out Dice", "held-out DSC AUC") + "; "
                      + ("promoted: the network engine uses it." if decision.promote
                         else f"NOT promoted: {decision.reason}.")).strip()
    (folder / net_model.CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    progress(1.0, "done")
    log(f"[{net_model.MODEL_ID}] v{version}: {decision.summary()}; "
        f"{'promoted' if decision.promote else 'not promoted: ' + decision.reason}")
    card["folder"] = str(folder)
    return card
