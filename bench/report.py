#!/usr/bin/env python3
"""The one-page review report (PDF) of a 512x512x300 CT right after approval, through the GUI's
own path (app.actions.exporting: case_from_session, export_case -> export.report: statistics with
Dice/HD95 against the AI draft, key images, the 3D snapshot), against rendering one matplotlib A4
page of the same size in the same run (three 512x512 slices and a table, saved as PDF).
Goal: <= 10 s on this machine. The case is bench/store.py's (`--size 0.5`: 1/8 of the voxels).
Without an OpenGL context (EGL or X) the 3D picture is left out (the report says so)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.store import cpu_timed, review_session  # noqa: E402


def matplotlib_page(slices, path: Path) -> None:
    """The baseline: one A4 page with three images and an 8-row table, as PDF."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))
    for n, img in enumerate(slices):
        ax = fig.add_axes((0.05 + n * 0.3, 0.55, 0.29, 0.25))
        ax.imshow(img, cmap="gray", interpolation="antialiased")
        ax.axis("off")
    tab = fig.add_axes((0.05, 0.2, 0.9, 0.2))
    tab.axis("off")
    tab.table(cellText=[[str(r * c) for c in range(6)] for r in range(8)], loc="upper center")
    fig.text(0.05, 0.95, "baseline page", fontsize=16)
    with PdfPages(path) as pdf:
        pdf.savefig(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=1.0, help="scale per axis (default 1: 512x512x300)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top entries of the report")
    args = ap.parse_args()
    import matplotlib.backends.backend_pdf  # noqa: F401  (imports are once a session, not what is measured)
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (the GUI's 3D view has VTK loaded)

    import formats.itk_formats  # noqa: F401

    import export.case  # noqa: F401
    import export.report  # noqa: F401
    from app.actions import review
    from app.actions.exporting import case_from_session, export_case

    s = review_session(args.size)
    g = s.volume.geometry.size
    print(f"CT {g[0]}x{g[1]}x{g[2]} int16, 6 segments (one added by the reviewer), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="delineate-bench-report-"))
    case_id, n = review.save_correction(review.correction_request(s, "approved", "dr.bench"), tmp / "store")
    s.mark_saved(case_id, n, "approved")
    arr = s.volume.array
    mid = [arr[arr.shape[0] // 2], arr[:, arr.shape[1] // 2], arr[:, :, arr.shape[2] // 2]]
    base_t, base_cpu, _ = cpu_timed(lambda: matplotlib_page(mid, tmp / "baseline.pdf"))

    def report():
        return export_case("report", case_from_session(s, "dr.bench"), tmp / "report.pdf")

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        t, cpu, written = cpu_timed(lambda: prof.runcall(report))
        pstats.Stats(prof).sort_stats(os.environ.get("BENCH_SORT", "tottime")).print_stats(int(os.environ.get("BENCH_TOP", 15)))
    else:
        t, cpu, written = cpu_timed(report)
    print("                                   wall s (CPU s)")
    print(f"matplotlib page (3 slices, table)  {base_t:6.2f} ({base_cpu:5.2f}) = 1.00x")
    print(f"review report (PDF)                {t:6.2f} ({cpu:5.2f}) = {t / base_t:5.2f}x   "
          f"goal <= 10 s: {'met' if t <= 10 else 'NOT met'}   {written[0].stat().st_size / 2**10:.0f} KiB")


if __name__ == "__main__":
    main()
