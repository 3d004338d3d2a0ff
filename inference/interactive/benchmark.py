"""The interactive engines side by side under the CVPR 2025 interactive 3D challenge's protocol.

Per object: a first prompt -- a click at the object's most interior point, or (a separate run) a
box around it on the axial slice where it is largest -- then up to 5 corrective clicks, each at the
most interior point (maximum of the distance transform, in mm) of the largest error region, the
largest connected component of false negatives or of false positives: positive if it was missed,
negative if it was wrongly included. Every prompt refines the engine's previous answer.

Reported per engine, data set and first prompt: Dice after each prompt, DSC AUC (trapezoid area
under Dice over the 6 prompts, divided by 5: 1.0 is perfect from the first prompt), prompts to
reach Dice 0.85 and 0.90 (an object never reaching it counts as 7), and the median latency of a
prompt (the engine's predict; opening the image is not counted).

Held-out objects, none of them drawn by the promptable network's training generator:
- CT phantom organs (inference.training.synth_ct phantoms on a 2 x 2 x 2.5 mm grid; seeds from
  9000): the liver and the left kidney;
- the real MNI152 T1 template (nilearn's, 1 mm): each lateral ventricle, taken as the largest
  connected component darker than 0.4 x the white-matter level (median T1 where nilearn's WM
  probability > 0.5) in one hemisphere of a central box (|x| < 35, -50 < y(RAS) < 35,
  -5 < z < 40 mm);
- ultrasound lesions (inference.training.synth_us images, 0.3 mm pixels, seeds from 9000): the
  largest lesion of each image.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.progress import check, no_progress
from core.volume import Volume
from inference.interactive.prompts import Box, Point, Prompts

CORRECTIONS = 5
THRESHOLDS = (0.85, 0.90)
NEVER = 1 + CORRECTIONS + 1  # prompts counted for an object that never reaches a threshold


@dataclass
class Case:
    dataset: str
    name: str
    volume: Volume
    truth: np.ndarray  # bool (z, y, x)


@dataclass
class Run:
    engine: str
    dataset: str
    case: str
    start: str  # "click" or "box"
    dice: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    def prompts_to(self, threshold: float) -> int:
        for n, d in enumerate(self.dice, start=1):
            if d >= threshold:
                return n
        return NEVER

    @property
    def auc(self) -> float:
        d = np.asarray(self.dice, float)
        return float(np.trapezoid(d) / max(len(d) - 1, 1))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float(np.logical_and(a, b).sum()) / s


# -- the protocol -----------------------------------------------------------------------------------
def interior_point(mask: np.ndarray, spacing_zyx, image_shape=None) -> tuple[int, int, int]:
    """The voxel of ``mask`` farthest (mm) from its outside; the array's edge counts as outside.
    Axes one voxel thick in ``image_shape`` (a 2D image; default ``mask``'s shape) are left out."""
    from scipy import ndimage as ndi

    keep = [a for a in range(3) if (image_shape or mask.shape)[a] > 1]
    sub = mask.reshape([mask.shape[a] for a in keep])
    dt = ndi.distance_transform_edt(np.pad(sub, 1), sampling=[float(spacing_zyx[a]) for a in keep])
    dt = dt[tuple(slice(1, -1) for _ in keep)]
    idx = np.unravel_index(int(np.argmax(dt)), sub.shape)
    out = [0, 0, 0]
    for a, i in zip(keep, idx):
        out[a] = int(i)
    return out[0], out[1], out[2]


def _lps(volume: Volume, zyx) -> tuple[float, float, float]:
    z, y, x = zyx
    return tuple(float(v) for v in volume.geometry.index_to_world([x, y, z]))


def first_box(case: Case) -> Box:
    """A box around the object on the axial slice where it is largest (one slice thick)."""
    k = int(np.argmax(case.truth.sum(axis=(1, 2))))
    ys, xs = np.nonzero(case.truth[k])
    return Box(_lps(case.volume, (k, ys.min(), xs.min())), _lps(case.volume, (k, ys.max(), xs.max())))


def corrective_click(truth: np.ndarray, mask: np.ndarray, spacing_zyx) -> Optional[tuple[tuple[int, int, int], bool]]:
    """(voxel, positive) at the centre of the largest error region, or None when there is none."""
    from scipy import ndimage as ndi

    best = None
    for err, positive in ((truth & ~mask, True), (mask & ~truth, False)):
        lab, n = ndi.label(err)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        k = int(np.argmax(sizes))
        if best is None or sizes[k] > best[0]:
            best = (int(sizes[k]), lab == k, positive)
    if best is None:
        return None
    region = best[1]
    idx = [np.flatnonzero(region.any(axis=tuple(b for b in range(3) if b != a))) for a in range(3)]
    box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)  # the distance transform on its box only
    z, y, x = interior_point(region[box], spacing_zyx, region.shape)
    return (z + box[0].start, y + box[1].start, x + box[2].start), best[2]


def run_case(state, case: Case, start: str, engine: str, cancel=None) -> Run:
    spacing = np.asarray(case.volume.geometry.spacing)[::-1]
    run = Run(engine, case.dataset, case.name, start)
    first = first_box(case) if start == "box" else Point(_lps(case.volume, interior_point(case.truth, spacing)))
    prompts, mask = Prompts((first,)), None
    for step in range(1 + CORRECTIONS):
        check(cancel)
        if step:
            click = corrective_click(case.truth, mask, spacing)
            if click is None:  # perfect: nothing left to correct
                run.dice.append(run.dice[-1])
                continue
            prompts = prompts.add(Point(_lps(case.volume, click[0]), click[1]))
        t = time.perf_counter()
        mask = np.asarray(state.predict(prompts, mask, cancel=cancel), bool)
        run.seconds.append(time.perf_counter() - t)
        run.dice.append(dice(mask, case.truth))
    return run


# -- the objects ------------------------------------------------------------------------------------
def ct_cases(n: int = 2, both_kidneys: bool = False) -> list[Case]:
    from scipy import ndimage as ndi

    from core.geometry import Geometry
    from inference.training.synth_ct import Phantom

    grid = Geometry((200, 150, 150), (2.0, 2.0, 2.5), (-200.0, -150.0, -300.0))
    out = []
    for seed in range(9000, 9000 + n):
        hu, labels = Phantom(np.random.default_rng(seed)).render(grid)
        vol = Volume(hu, grid, modality="CT", description=f"CT phantom {seed}")
        out.append(Case("CT phantom organs", f"liver {seed}", vol, labels == 2))
        kid, _n = ndi.label(labels == 3)
        # the kidney on the patient's left: larger LPS x (index x grows to the left on this grid)
        xs = ndi.center_of_mass(np.ones_like(kid), kid, range(1, _n + 1))
        left = 1 + int(np.argmax([c[2] for c in xs]))
        out.append(Case("CT phantom organs", f"left kidney {seed}", vol, kid == left))
        if both_kidneys:
            right = 1 + int(np.argmin([c[2] for c in xs]))
            out.append(Case("CT phantom organs", f"right kidney {seed}", vol, kid == right))
    return out


def brain_cases() -> list[Case]:
    from scipy import ndimage as ndi

    from formats import samples
    from formats.io import read_image

    vol = read_image(samples.path("mni152-t1"))
    wm = read_image(samples.path("mni152-wm"))
    t1 = vol.array.astype(np.float32)
    wmp = wm.array.astype(np.float32) / max(float(wm.array.max()), 1e-6)
    level = float(np.median(t1[wmp > 0.5]))
    nx, ny, nz = vol.geometry.size
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    w = vol.geometry.index_to_world(np.stack([i, j, k], -1).astype(np.float32))
    x, y_ras, z = w[..., 0], -w[..., 1], w[..., 2]  # LPS x: + is the patient's left
    central = (np.abs(x) < 35) & (y_ras > -50) & (y_ras < 35) & (z > -5) & (z < 40) & (t1 < 0.4 * level)
    out = []
    for side, name in ((x > 0, "left lateral ventricle"), (x < 0, "right lateral ventricle")):
        lab, n = ndi.label(central & side)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        out.append(Case("MNI152 brain (real template)", name, vol, lab == int(np.argmax(sizes))))
    return out


def us_cases(n: int = 4) -> list[Case]:
    from scipy import ndimage as ndi

    from inference.training import synth_us

    out = []
    for seed in range(9000, 9000 + n):
        img, mask = synth_us.image(np.random.default_rng(seed), 256, pixel_mm=synth_us.PIXEL_MM)
        lab, count = ndi.label(mask > 0)
        if count == 0:
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        vol = Volume.from_array(img[None], spacing=(synth_us.PIXEL_MM, synth_us.PIXEL_MM, 1.0), modality="US")
        out.append(Case("Ultrasound lesions", f"lesion {seed}", vol, (lab == int(np.argmax(sizes)))[None]))
    return out


def all_cases(quick: bool = False) -> list[Case]:
    return ct_cases(1 if quick else 2) + brain_cases()[: 1 if quick else 2] + us_cases(2 if quick else 4)


# -- the whole benchmark ----------------------------------------------------------------------------
def usable_engines(names: Optional[list[str]] = None) -> tuple[list[str], dict[str, str]]:
    """(engines to run, {engine: why not} for the registered ones that cannot run here)."""
    from inference.interactive.engine import engines

    known = engines()
    run, skipped = [], {}
    for name in names or sorted(known, key=lambda n: (n != "classical", n)):
        if name not in known:
            skipped[name] = "not registered"
            continue
        why = known[name].available()
        if why is None:
            run.append(name)
        else:
            skipped[name] = why
    return run, skipped


def benchmark(names: Optional[list[str]] = None, quick: bool = False, device=None,
              progress: Callable = no_progress, cancel=None, log: Callable = print) -> tuple[list[Run], dict]:
    from inference.interactive.engine import make_engine

    run_names, skipped = usable_engines(names)
    for name, why in skipped.items():
        log(f"skipped engine {name}: {why}")
    cases = all_cases(quick)
    runs: list[Run] = []
    total = max(len(run_names) * len(cases), 1)
    done = 0
    for name in run_names:
        engine = make_engine(name, device)
        for case in cases:
            progress(done / total, f"{name}: {case.dataset} {case.name}")
            state = engine.open(case.volume)
            for start in ("click", "box"):
                r = run_case(state, case, start, name, cancel)
                runs.append(r)
                log(f"{name:14s} {case.dataset:30s} {case.name:24s} {start:5s} Dice "
                    + " ".join(f"{d:.3f}" for d in r.dice) + f"  median {np.median(r.seconds):.2f} s/prompt")
            done += 1
    progress(1.0, "done")
    return runs, skipped


def table(runs: list[Run], skipped: dict) -> str:
    rows = ["| Data set | Engine | First prompt | Objects | Dice after 1 | Dice after 6 | DSC AUC | "
            "Prompts to 0.85 | Prompts to 0.90 | Median latency (s) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r.dataset, r.engine, r.start) for r in runs},
                  key=lambda k: (k[0], k[2] != "click", k[1] != "classical", k[1]))
    for ds, eng, start in keys:
        rs = [r for r in runs if (r.dataset, r.engine, r.start) == (ds, eng, start)]
        d = np.array([r.dice for r in rs])
        reach = []
        for t in THRESHOLDS:
            n = np.array([r.prompts_to(t) for r in rs])
            reach.append(f"{n.mean():.1f} ({int(np.sum(n < NEVER))}/{len(rs)})")
        lat = np.median(np.concatenate([r.seconds for r in rs]))
        rows.append(f"| {ds} | {eng} | {start} | {len(rs)} | {d[:, 0].mean():.3f} | {d[:, -1].mean():.3f} | "
                    f"{np.mean([r.auc for r in rs]):.3f} | {reach[0]} | {reach[1]} | {lat:.2f} |")
    notes = [f"\nPrompts to a Dice: mean over objects, one that never reaches it counted as {NEVER} "
             "(in brackets: how many reached it). Dice after 6 = after the first prompt and 5 corrective clicks."]
    for name, why in skipped.items():
        notes.append(f"Not run: engine {name} ({why}).")
    return "\n".join(rows) + "\n" + "\n".join(notes) + "\n"


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r.dataset for r in runs})
    engines = sorted({r.engine for r in runs}, key=lambda n: (n != "classical", n))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ds in zip(axes[0], datasets):
        for e, eng in enumerate(engines):
            for start, style in (("click", "-"), ("box", "--")):
                rs = [r for r in runs if (r.dataset, r.engine, r.start) == (ds, eng, start)]
                if rs:
                    d = np.mean([r.dice for r in rs], axis=0)
                    ax.plot(np.arange(1, len(d) + 1), d, style, marker="o", ms=3, color=colours[e % len(colours)],
                            label=f"{eng}, first {start}")
        ax.set_title(ds, fontsize=9)
        ax.set_xlabel("prompts (first + corrective clicks)")
        ax.set_ylim(0, 1)
        ax.axhline(0.9, color="grey", lw=0.5, ls=":")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean Dice")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(runs: list[Run], skipped: dict, out: Path, header: str = "") -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, png = out / "benchmark.md", out / "dice-vs-clicks.png"
    text = "# Interactive segmentation benchmark\n\n" + header + "\n" + table(runs, skipped)
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(text + f"\n![Dice vs clicks]({png.name})\n")
    tmp.replace(md)
    plot(runs, png)
    return md, png
