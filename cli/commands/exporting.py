"""export: one reviewed case (an image with its label maps, or a store case) in any export format."""
from __future__ import annotations

from cli.paths import resolve
from cli.progress import progress_bar


def export_arguments(p) -> None:
    from export.case import FORMATS

    p.add_argument("case", help="an image (file, DICOM folder or sample name; give --labels) or a store case id")
    p.add_argument("output", help="file (folder for stl/obj)")
    p.add_argument("--format", required=True, choices=tuple(FORMATS))
    p.add_argument("--labels", help="label map to export (for an image path)")
    p.add_argument("--ai", help="the AI's draft label map, for agreement statistics (for an image path)")
    p.add_argument("--model", help="model id[/version] that made the draft (cards go into SEG and the report)")
    p.add_argument("--fractional", action="store_true", help="SEG: the model's probabilities (FRACTIONAL)")
    p.add_argument("--compress", action="store_true",
                   help="SEG: JPEG 2000 lossless frames (~30x smaller; not every viewer decodes them)")
    p.add_argument("--deidentify", action="store_true",
                   help="DICOM PS3.15 Annex E basic profile on everything written (UIDs remapped consistently)")
    p.add_argument("--source", help="store case: its original DICOM, so SEG/RTSTRUCT reference those instances")
    p.add_argument("--series", help="which DICOM series, when a folder holds several")
    p.add_argument("--reviewer", help="reviewer's name for the report")
    p.add_argument("--store", help="corrections store folder (default: the user's)")


def cmd_export(args) -> int:
    from app.actions.exporting import export_case, load_case

    case = load_case(resolve(args.case), labels=args.labels, ai=args.ai, model=args.model, reviewer=args.reviewer,
                     source=args.source, series=args.series, store=args.store, progress=progress_bar)
    written = export_case(args.format, case, args.output, fractional=args.fractional, deidentify=args.deidentify,
                          compress=args.compress, progress=progress_bar)
    print(f"wrote {written[0]}" + (f" (+{len(written) - 1} files)" if len(written) > 1 else ""))
    return 0


COMMANDS = (
    ("export", "export a reviewed case: DICOM SEG / RTSTRUCT, NIfTI / NRRD label map, STL / OBJ / glTF surfaces, "
               "statistics or the review report", export_arguments, cmd_export),
)
