"""segment, explain, models and import-model: running, explaining, listing and importing models."""
from __future__ import annotations

import sys

from cli.paths import resolve
from cli.progress import progress_bar


def _device(p) -> None:
    from inference.card import DEVICES

    p.add_argument("--device", choices=DEVICES, default="auto")


def segment_arguments(p) -> None:
    p.add_argument("input", help="image file, DICOM folder or sample name")
    p.add_argument("output", help="label map: .nii.gz, .nrrd/.seg.nrrd, .mha")
    p.add_argument("--model", help="model id (default: the default model for the image's modality)")
    p.add_argument("--version", help="model version (default: the latest)")
    _device(p)
    p.add_argument("--series", help="series key/UID/number in a DICOM folder")
    p.add_argument("--frame", type=int, default=1, metavar="N",
                   help="time point N (1-based) of a 3D series over time, e.g. a 4D NIfTI (default: the first)")


def cmd_segment(args) -> int:
    from app.actions import opening, segmenting
    from app.actions.models import default_model
    from formats.io import write_labelmap
    from inference.registry import Registry

    def reading(fraction: float, message: str = "") -> None:
        # the image decodes in a child process, forked before its first word: import the model's
        # modules meanwhile (a thread started before the fork would cost the reader a fresh interpreter)
        segmenting.prefetch()
        progress_bar(fraction, message)

    vol = opening.read(args.input, args.series, reading)
    if args.frame != 1:
        from core.time_series import select

        select(vol, args.frame - 1)
    reg = Registry()
    card = reg.get(args.model, args.version) if args.model else default_model(vol, reg)
    print(f"model: {card.summary()}", file=sys.stderr)
    guarded = segmenting.segment_checked(vol, card, args.device, progress_bar)
    for warning in guarded.warnings:  # the out-of-distribution guard: said, not fatal (exit 0)
        print(f"warning: {card.id} may not be made for this image: {warning}", file=sys.stderr)
    seg = guarded.run
    if seg.removed_outside_body:
        ml = seg.removed_outside_body * vol.geometry.voxel_volume_ml()
        print(f"note: {ml:.1f} ml lying outside the body removed, as the card says ({card.id} inside_body)", file=sys.stderr)
    if seg.removed_pieces:
        ml = seg.removed_pieces * vol.geometry.voxel_volume_ml()
        names = ", ".join(lab.name for lab in card.labels if str(lab.value) in card.most_pieces["labels"])
        print(f"note: {ml:.1f} ml of {names} in pieces beyond the largest the card allows removed "
              f"({card.id} most_pieces)", file=sys.stderr)
    write_labelmap(seg.labels, args.output)
    vols = seg.labels.volumes_ml()
    print(f"wrote {args.output} on {seg.device} in {seg.seconds:.1f} s: " +
          ", ".join(f"{lab.name} {vols.get(lab.value, 0):.1f} ml" for lab in seg.labels.table))
    return 0


def models_arguments(p) -> None:
    p.add_argument("--markdown", action="store_true", help="as a Markdown table")


def cmd_models(args) -> int:
    from inference.registry import Registry

    reg = Registry()
    if args.markdown:  # the README's table
        print("| model | network | trained on | held-out Dice |")
        print("|---|---|---|---|")
        for c in reg.cards():
            dice = "; ".join(f"{m.name.replace('Dice ', '')} {m.value:.3f}" for m in c.metrics)
            print(f"| `{c.id}` v{c.version}: {c.name} | {c.architecture} {c.spatial_dims}D, "
                  f"{'at ' + 'x'.join(f'{v:g}' for v in c.spacing) + ' mm' if c.spacing else 'native grid'} "
                  f"| {c.training_data.split('. ')[0][:140]} (see the card) | {dice} |")
        return 0
    for card in reg.cards():
        print(card.summary())
        print(f"    {card.folder}")
    for problem in reg.problems:
        print(f"refused: {problem}", file=sys.stderr)
    return 0


def explain_arguments(p) -> None:
    from inference.xai_text import METHODS

    p.add_argument("input", help="image file, DICOM folder or sample name")
    p.add_argument("output", help="map image: .nii.gz, .nrrd, .mha")
    p.add_argument("--model", help="model id (default: the default model for the modality)")
    p.add_argument("--label", help="label name or value (default: the first)")
    p.add_argument("--method", default="gradcam", choices=METHODS)
    _device(p)
    p.add_argument("--series", help="series key/UID/number in a DICOM folder")


def cmd_explain(args) -> int:
    from app.actions import explaining, opening
    from app.actions.models import default_model
    from core.volume import Volume
    from formats.io import write_image
    from inference.registry import Registry

    vol = opening.read(args.input, args.series, progress_bar)
    reg = Registry()
    card = reg.get(args.model) if args.model else default_model(vol, reg)
    result = explaining.explain_model(vol, card, args.method, args.label, args.device, progress_bar)
    write_image(Volume(result.values, vol.geometry, modality="OT", description=f"{args.method} {card.id}"),
                args.output)
    extra = result.extra
    if args.method == "uncertainty":
        print(f"case uncertainty {extra['case']:.3f}; per segment: "
              + ", ".join(f"{card.labels.get(v).name} {s:.3f}" for v, s in extra["per_segment"].items()))
    print(f"wrote {args.output} ({args.method}, {card.id} v{card.version})")
    return 0


def import_arguments(p) -> None:
    from app.actions.models import IMPORT_NORMALISATIONS, KINDS

    p.add_argument("kind", choices=KINDS)
    p.add_argument("path", help="model file, bundle folder, or nnU-Net Trainer__Plans__configuration folder")
    p.add_argument("--id", help="model id (required for TorchScript/ONNX)")
    p.add_argument("--modality", help="CT, MR, US, ... (what the files do not say)")
    p.add_argument("--labels", help="label names, e.g. 1=liver,2=tumour")
    p.add_argument("--patch", help="patch size in the network's array order, e.g. 96,96,96")
    p.add_argument("--spacing", help="model spacing x,y,z in mm (omit: the image's own grid)")
    p.add_argument("--norm", default="zscore", choices=IMPORT_NORMALISATIONS)
    p.add_argument("--window", help="for --norm ct_window: low,high in HU")
    p.add_argument("--fold", default="0", help="nnU-Net fold")
    p.add_argument("--trust-code", action="store_true",
                   help="TorchScript only: the model is a program; run its code (in a confined child process). "
                        "Without this it is refused; prefer ONNX, which holds no code")


def cmd_import(args) -> int:
    from app.actions.models import ImportSpec, import_model

    spec = ImportSpec.from_text(args.kind, args.path, id=args.id, modality=args.modality, labels=args.labels,
                                patch=args.patch, spacing=args.spacing, norm=args.norm, window=args.window,
                                fold=args.fold, trust_code=args.trust_code)
    card = import_model(spec, progress=progress_bar)
    print(card.summary())
    print(f"    {card.folder}")
    return 0


COMMANDS = (
    ("segment", "run a segmentation model; writes a label map on the input's exact grid", segment_arguments,
     cmd_segment),
    ("models", "list the registered models and their cards", models_arguments, cmd_models),
    ("explain", "saliency (Grad-CAM, occlusion, integrated gradients) or uncertainty map of a model on an image, "
                "written with the image's geometry", explain_arguments, cmd_explain),
    ("import-model", "turn a TorchScript / ONNX / MONAI bundle / nnU-Net v2 model into a registry entry with a "
                     "card (in the user's model folder)", import_arguments, cmd_import),
)
