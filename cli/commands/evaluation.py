"""calibrate-guard and evaluate: what a model was made for, and how it does on a site's own cases."""
from __future__ import annotations

import sys

from cli.progress import progress_bar


def calibrate_arguments(p) -> None:
    p.add_argument("model", help="model id[/version]")
    p.add_argument("--cases", type=int, default=12, help="held-out generated cases to measure (default 12)")


def cmd_calibrate(args) -> int:
    from inference.guard_calibration import calibrate_card
    from inference.registry import Registry

    model_id, _, version = args.model.partition("/")
    card = Registry().get(model_id, version or None)
    env = calibrate_card(card, args.cases, progress=progress_bar)
    card.envelope = env.to_dict()
    card.save(card.folder)
    print(f"{card.id} v{card.version}: envelope from {env.calibrated_on}; uncertainty threshold "
          f"{env.uncertainty_max:.3f}; written to {card.folder / 'card.json'}", file=sys.stderr)
    return 0


def evaluate_arguments(p) -> None:
    from inference.card import DEVICES

    p.add_argument("model", help="model id[/version]")
    p.add_argument("images", help="an image file, or a folder of images")
    p.add_argument("labels", help="its label map, or a folder of label maps named like the images")
    p.add_argument("--device", choices=DEVICES, default="auto")


def cmd_evaluate(args) -> int:
    from app.actions.evaluating import evaluate
    from inference.registry import Registry

    model_id, _, version = args.model.partition("/")
    card = Registry().get(model_id, version or None)
    result = evaluate(card, args.images, args.labels, args.device, progress_bar)
    print(f"{result.model} on {len({c for c, _ in result.rows})} case(s), labels matched by {result.matched_by}")
    print(f"{'case':24s} {'label':16s} {'Dice':>6s} {'IoU':>6s} {'HD95 mm':>8s}")
    for case, r in result.rows:
        print(f"{case[:24]:24s} {r.name[:16]:16s} {r.dice:6.3f} {r.iou:6.3f} {r.hausdorff95_mm:8.1f}")
    for name, (d, i, hd, n) in result.means().items():
        print(f"{'mean (' + str(n) + ')':24s} {name[:16]:16s} {d:6.3f} {i:6.3f} {hd:8.1f}")
    for case, warnings in result.warnings.items():
        print(f"warning: {case}: " + "; ".join(warnings), file=sys.stderr)
    return 0


def confidence_arguments(p) -> None:
    p.add_argument("model", help="model id[/version]")
    p.add_argument("--cases", type=int, default=8, help="held-out generated cases to measure (default 8)")
    p.add_argument("--plot", help="also write the reliability diagram and uncertainty-vs-Dice plot (PNG)")
    p.add_argument("--dry-run", action="store_true", help="print only; leave the card as it is")


def cmd_confidence(args) -> int:
    from inference.registry import Registry
    from inference.xai_calibration import measure, plot

    model_id, _, version = args.model.partition("/")
    card = Registry().get(model_id, version or None)
    cal = measure(card, args.cases, progress=progress_bar)
    rho = cal["spearman_uncertainty_dice"]
    print(f"{card.id} v{card.version}: ECE {cal['ece']:.4f} (labelled voxels; {cal['ece_all_voxels']:.4f} over every "
          f"voxel); case uncertainty vs Dice Spearman "
          f"{'n/a' if rho is None else f'{rho:.2f}'} on {cal['measured_on']}")
    for c, a, n in zip(cal["confidence"], cal["accuracy"], cal["voxels"]):
        if n:
            print(f"  confidence {c:.3f}  accuracy {a:.3f}  ({n} voxels)")
    if args.plot:
        plot(cal, f"{card.id} v{card.version}: {cal['measured_on'].split(',')[0]}", args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    if not args.dry_run:
        card.calibration = cal
        card.save(card.folder)
        print(f"written to {card.folder / 'card.json'}", file=sys.stderr)
    return 0


COMMANDS = (
    ("evaluate", "Dice / IoU / HD95 per label of a model on your own labelled cases (files or folders)",
     evaluate_arguments, cmd_evaluate),
    ("calibrate-guard", "measure a model's out-of-distribution envelope on held-out generated cases and write it "
                        "into its card", calibrate_arguments, cmd_calibrate),
    ("calibrate-confidence", "measure a model's calibration (reliability, ECE) and case uncertainty vs Dice on "
                             "held-out generated cases and write it into its card", confidence_arguments, cmd_confidence),
)
