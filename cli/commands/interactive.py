"""interactive and benchmark-interactive: a mask from prompts given in patient millimetres, and the
engines side by side under the interactive challenge's click protocol."""
from __future__ import annotations

import sys

from cli.progress import progress_bar

ENGINE_HELP = "auto (the promptable network where usable, else classical), network, classical, nninteractive"


def interactive_arguments(p) -> None:
    from inference.card import DEVICES

    p.add_argument("image", help="image file, DICOM folder or sample name")
    p.add_argument("output", help="binary label map on the image's grid: .nii/.nii.gz, .nrrd, .mha or .png")
    p.add_argument("--prompts", required=True, metavar="P.json",
                   help='prompts in patient LPS mm: {"points": [{"lps": [x, y, z], "positive": true}], '
                        '"boxes": [{"lps_min": [...], "lps_max": [...]}], "scribbles": [{"lps": [[x, y, z], ...], '
                        '"positive": true}], "lassos": [{"lps": [[x, y, z], ...]}]} (any key may be absent)')
    p.add_argument("--previous", metavar="MASK", help="label map on the image's grid: the object to refine (non-zero)")
    p.add_argument("--engine", default="auto", help=ENGINE_HELP)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--series", help="series key/UID/number in a DICOM folder")


def cmd_interactive(args) -> int:
    from app.actions.interactive import segment_file
    from cli.paths import resolve

    s = segment_file(resolve(args.image), args.prompts, args.output, previous=args.previous, engine=args.engine,
                     device=None if args.device == "auto" else args.device, progress=progress_bar,
                     series=args.series)
    print(f"wrote {args.output}: {s['voxels']} voxels ({s['ml']:.2f} ml) from {s['points']} points, {s['boxes']} "
          f"boxes, {s['scribbles']} scribbles, {s['lassos']} lassos; engine {s['engine']}, {s['seconds']:.2f} s",
          file=sys.stderr)
    return 0


def benchmark_arguments(p) -> None:
    from inference.card import DEVICES

    p.add_argument("--out", default="docs/interactive", help="folder for benchmark.md and dice-vs-clicks.png "
                                                             "(default docs/interactive)")
    p.add_argument("--engines", help="comma-separated engines (default: every registered engine usable here)")
    p.add_argument("--quick", action="store_true", help="fewer objects (a smoke run)")
    p.add_argument("--device", choices=DEVICES, default="auto")


def cmd_benchmark(args) -> int:
    import platform
    from pathlib import Path

    from inference.interactive import benchmark as bm

    names = [n.strip() for n in args.engines.split(",") if n.strip()] if args.engines else None
    runs, skipped = bm.benchmark(names, quick=args.quick, device=None if args.device == "auto" else args.device,
                                 progress=progress_bar, log=lambda m: print(m, file=sys.stderr))
    if not runs:
        from core.errors import DelineateError

        raise DelineateError("no interactive engine could run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"`python main.py benchmark-interactive{' --quick' if args.quick else ''}` on {platform.machine()}, "
              f"{os.cpu_count()} CPU cores (load average {load:.1f} when it ended), device {args.device}. "
              "Protocol and objects: inference/interactive/benchmark.py.\n")
    md, png = bm.write(runs, skipped, Path(args.out), header)
    print(bm.table(runs, skipped))
    print(f"wrote {md} and {png}", file=sys.stderr)
    return 0


COMMANDS = (
    ("interactive", "segment one object from prompts (points, boxes, scribbles, lassos in LPS mm); writes a binary "
                    "label map on the image's exact grid", interactive_arguments, cmd_interactive),
    ("benchmark-interactive", "the interactive engines side by side under the CVPR 2025 click protocol (Dice per "
                              "click, DSC AUC, clicks to 0.85/0.90, latency); writes a table and a plot",
     benchmark_arguments, cmd_benchmark),
)
