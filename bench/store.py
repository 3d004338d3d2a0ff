#!/usr/bin/env python3
"""Approve-and-save of a 512x512x300 CT through the GUI's own path (app.actions.review:
correction_request, then save_correction into a fresh store: a new case, so its image is written
too), against writing the same three arrays (image, AI draft, corrected mask) in the same run
with np.save (raw) and with nibabel's .nii.gz defaults. Goal: <= 3 s on this machine.

The case: a CT-like image (air, body, five organs, noise), the AI's five segments, and a
reviewer's edits (a lesion painted where the AI drew nothing, part of the spleen erased) made
through core.editing so the session's history is real. `--size 0.5` runs it at half the size
per axis (1/8 of the voxels) to profile quickly; `--profile` prints cProfile's top entries.
Modules are imported before the clock starts (once a session: SimpleITK alone takes ~1 s here)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPE = (300, 512, 512)
ORGANS = [(150, 250, 180, 60, 90, 80), (150, 260, 340, 50, 60, 50), (200, 330, 200, 25, 30, 30),
          (200, 330, 320, 25, 30, 30), (120, 200, 256, 6, 8, 8)]  # centre z, y, x, radii z, y, x


def review_session(scale: float = 1.0):
    """A CaseSession holding the CT, the AI's five segments and the reviewer's two edits."""
    from app.session import CaseSession
    from core import editing
    from core.labels import LabelMap, LabelTable
    from core.volume import Volume

    shape = tuple(max(int(round(n * scale)), 2) for n in SHAPE)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    rng = np.random.default_rng(0)
    f = shape[1] / SHAPE[1]
    body = ((y - 256 * f) / (200 * f)) ** 2 + ((x - 256 * f) / (240 * f)) ** 2 < 1
    arr = np.where(body, rng.normal(40, 15, shape), -1000).astype(np.int16)
    lab = np.zeros(shape, np.uint8)
    fz = shape[0] / SHAPE[0]
    for v, (cz, cy, cx, rz, ry, rx) in enumerate(ORGANS, start=1):
        inside = ((z - cz * fz) / (rz * fz)) ** 2 + ((y - cy * f) / (ry * f)) ** 2 + ((x - cx * f) / (rx * f)) ** 2 < 1
        lab[inside] = v
        arr[inside] += np.int16(20 * v)
    vol = Volume.from_array(arr, spacing=(0.7 / f, 0.7 / f, 1.5 / fz), modality="CT")
    table = LabelTable.from_names(["liver", "spleen", "kidney R", "kidney L", "lesion", "new lesion"])
    s = CaseSession()
    s.set_image(vol)
    s.set_labelmap(LabelMap(lab, vol.geometry, table))
    painted = tuple(slice(int(a * k), int(b * k)) for (a, b), k in zip(((60, 72), (120, 150), (240, 270)), (fz, f, f)))
    s.apply(editing.apply(s.labelmap, "paint", 6, np.ones(tuple(p.stop - p.start for p in painted), bool),
                          offset=painted))
    erased = tuple(slice(int(a * k), int(b * k)) for (a, b), k in zip(((140, 160), (240, 300), (330, 400)), (fz, f, f)))
    s.apply(editing.apply(s.labelmap, "erase", 0, np.ones(tuple(p.stop - p.start for p in erased), bool),
                          offset=erased))
    return s


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def cpu_timed(fn):
    """(wall s, this process's CPU s over all its threads, result): on a loaded machine the CPU
    time bounds what the wall time would be on an idle one (the save hashes, compresses and
    compares in parallel threads, so an idle machine with two cores needs less)."""
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=1.0, help="scale per axis (default 1: 512x512x300)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top entries of the save")
    args = ap.parse_args()
    import nibabel as nib

    import formats.itk_formats  # noqa: F401  (imports are once a session, not what is measured)
    import store.corrections  # noqa: F401
    from app.actions import review

    s = review_session(args.size)
    vol, lm = s.volume, s.labelmap
    g = vol.geometry.size
    print(f"CT {g[0]}x{g[1]}x{g[2]} int16, 6 segments (one added by the reviewer), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="delineate-bench-store-"))
    arrays = (vol.array, s.ai_draft().array, lm.array)
    raw_t, raw_cpu, _ = cpu_timed(lambda: [np.save(tmp / f"a{n}.npy", a) for n, a in enumerate(arrays)])
    nib_t, nib_cpu, _ = cpu_timed(lambda: [nib.save(nib.Nifti1Image(a, np.eye(4)), str(tmp / f"a{n}.nii.gz"))
                              for n, a in enumerate(arrays)])

    def approve():
        req = review.correction_request(s, "approved", "dr.bench")
        return review.save_correction(req, tmp / "store")

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        t, cpu, saved = cpu_timed(lambda: prof.runcall(approve))
        pstats.Stats(prof).sort_stats(os.environ.get("BENCH_SORT", "tottime")).print_stats(int(os.environ.get("BENCH_TOP", 15)))
    else:
        t, cpu, saved = cpu_timed(approve)
    print("                                     wall s (CPU s)")
    print(f"np.save of the 3 arrays (raw)        {raw_t:6.2f} ({raw_cpu:5.2f}) = 1.00x")
    print(f"nibabel .nii.gz of the 3 arrays      {nib_t:6.2f} ({nib_cpu:5.2f}) = {nib_t / raw_t:5.2f}x raw")
    print(f"approve and save (new case)          {t:6.2f} ({cpu:5.2f}) = {t / raw_t:5.2f}x raw = "
          f"{t / nib_t:4.2f}x nibabel   goal <= 3 s: {'met' if t <= 3 else 'NOT met'}")
    t2, cpu2, _ = cpu_timed(approve)
    print(f"approve and save again (known case)  {t2:6.2f} ({cpu2:5.2f}) = {t2 / raw_t:5.2f}x raw = "
          f"{t2 / nib_t:4.2f}x nibabel")
    print(f"store case {saved[0]}")


if __name__ == "__main__":
    main()
