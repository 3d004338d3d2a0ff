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


COMMANDS = (
    ("interactive", "segment one object from prompts (points, boxes, scribbles, lassos in LPS mm); writes a binary "
                    "label map on the image's exact grid", interactive_arguments, cmd_interactive),
)
