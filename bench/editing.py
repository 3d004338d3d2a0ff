#!/usr/bin/env python3
"""Editing on a 512x512x300 label map in the main window (Xvfb: `xvfb-run -a python bench/editing.py`).
Ratios against a baseline measured in the same run (lower is better):
- brush dab (5 mm disc on the axial slice) including the overlay refresh and paint, vs a bare
  redraw of the same slice (image + labels, painted)                       goal <= 2x
- undo of a large 3D edit (a 40 mm sphere), vs the same bare redraw
- memory held by 1,000 edits in the history vs the label map's size      goal: ~ changed voxels
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from bench.viewer import best, window_on_phantom
    from core import editing

    app, win, vol, lm, _heat = window_on_phantom(with_heat=False)
    axial = win.views["axial"]
    panel = win.edit_panel
    panel.label.setCurrentIndex(panel.label.findData(4))
    panel.radius.setValue(5.0)
    k = win.model.slice_index("axial")

    def bare():
        axial._draw_image()
        axial._draw_labels()
        app.processEvents()

    state = {"x": 150}

    def dab():
        state["x"] = 150 + (state["x"] - 149) % 200
        ijk = np.array([state["x"], 250.0, k])
        panel.on_view("axial", win.model.display.grid.world_to_index(lm.geometry.index_to_world(ijk)), "click")
        app.processEvents()

    for fn in (bare, dab):
        for _ in range(3):
            fn()
    t_bare, t_dab = best(bare), best(dab)
    print(f"bare redraw of the axial slice (image + labels)   {t_bare * 1e3:7.2f} ms = 1.00x")
    print(f"brush dab + overlay refresh + paint               {t_dab * 1e3:7.2f} ms = {t_dab / t_bare:.2f}x"
          f"   (goal <= 2x)")
    edit = editing.brush(lm, (256, 256, 150), 40.0, 5)
    panel.history.push(edit)
    win.model.labels_changed()
    app.processEvents()
    win.view3d.flush_surfaces()
    t0 = time.perf_counter()
    panel.undo()
    app.processEvents()
    t_undo = time.perf_counter() - t0
    t0 = time.perf_counter()
    win.view3d.flush_surfaces()
    t_mesh = time.perf_counter() - t0
    print(f"undo of a 40 mm sphere ({int((edit.before != edit.after).sum())} voxels), slices redrawn "
          f"{t_undo * 1e3:7.1f} ms = {t_undo / t_bare:.1f}x; its 3D surface, rebuilt when editing pauses, "
          f"{t_mesh * 1e3:.0f} ms")
    hist = editing.History(lm)
    changed = 0
    rng = np.random.default_rng(0)
    for _ in range(1000):
        e = editing.brush(lm, rng.uniform(50, 450, 3) * [1, 1, 0.5], 3.0, int(rng.integers(1, 7)), plane_axis=2)
        if hist.push(e) is not None:
            changed += int((e.before != e.after).sum())
    print(f"1,000 dabs in the history: {hist.nbytes / 2**20:.2f} MiB for {changed} changed voxels "
          f"({hist.nbytes / max(changed, 1):.1f} bytes per changed voxel; the map is {lm.array.nbytes / 2**20:.0f} MiB)")
    win.close()


if __name__ == "__main__":
    main()
