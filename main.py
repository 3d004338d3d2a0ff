#!/usr/bin/env python3
"""Delineate: review and correct AI segmentations of medical images.

No arguments: open the GUI on the bundled sample. Subcommands run the same code headless.
"""
from __future__ import annotations

import argparse
import json
import sys


def _progress_bar(fraction: float, message: str = "") -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(round(width * max(0.0, min(1.0, fraction))))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {message[:50]:<50}")
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _resolve(path: str) -> str:
    """A sample name (see `info --samples`) or a path."""
    from pathlib import Path

    if not Path(path).exists():
        from formats import samples

        if path in samples.names():
            return str(samples.path(path))
    return path


def cmd_info(args) -> int:
    from pathlib import Path

    from formats import samples
    from formats.io import kind_of, read_image

    if args.samples:
        for name in samples.names():
            print(f"{name:16s} {samples.describe(name)['description']}")
        return 0
    target = _resolve(args.path)
    if kind_of(target) == "dicom" and Path(target).is_dir():
        from formats.io import list_series

        series = list_series(target, _progress_bar)
        print(f"{len(series)} series/stacks in {target}:")
        for s in series:
            d = s.summary()
            print(f"  [{d['key']}] {d['modality']:3s} {d['images']:4d} images {d['size']:>9s}  "
                  f"{d['study']} / {d['series']} {d['note']}")
        for path, why in series[0].skipped if series else []:
            print(f"  skipped {path}: {why}")
    vol = read_image(target, _progress_bar, series=args.series)
    d = vol.describe()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"source:      {d['source']}")
    print(f"description: {d['description']}")
    print(f"modality:    {d['modality']}   dtype: {d['dtype']}   channels: {d['channels']}")
    print(f"size (xyz):  {d['size_xyz']}")
    print(f"spacing mm:  {[round(v, 6) for v in d['spacing_mm']]}")
    print(f"origin mm:   {[round(v, 4) for v in d['origin_lps_mm']]} (LPS)")
    print(f"orientation: {d['orientation']}{' (oblique)' if d['oblique'] else ''}")
    print(f"value range: {d['value_range']}")
    if d["window_presets"]:
        print("windows:     " + ", ".join(f"{n} C{c:g}/W{w:g}" for n, c, w in d["window_presets"]))
    for w in d["warnings"]:
        print(f"warning:     {w}")
    return 0


def cmd_convert(args) -> int:
    from formats.io import read_image, read_labelmap, write_image, write_labelmap

    src = _resolve(args.input)
    if args.labels:
        lm = read_labelmap(src)
        write_labelmap(lm, args.output)
        print(f"wrote label map {args.output} ({len(lm.table)} labels)")
    else:
        vol = read_image(src, _progress_bar, series=args.series)
        for w in vol.warnings:
            print(f"warning: {w}", file=sys.stderr)
        write_image(vol, args.output, _progress_bar)
        print(f"wrote {args.output}")
    return 0


def cmd_segment(args) -> int:
    from formats.io import read_image, write_labelmap
    from inference.registry import Registry
    from inference.runner import segment

    vol = read_image(_resolve(args.input), _progress_bar, series=args.series)
    reg = Registry()
    card = reg.get(args.model, args.version) if args.model else reg.default_for(vol.modality, 2 if vol.is_2d else 3)
    print(f"model: {card.summary()}", file=sys.stderr)
    seg = segment(vol, card, _progress_bar, device=args.device)
    write_labelmap(seg.labels, args.output)
    vols = seg.labels.volumes_ml()
    print(f"wrote {args.output} on {seg.device} in {seg.seconds:.1f} s: " +
          ", ".join(f"{lab.name} {vols.get(lab.value, 0):.1f} ml" for lab in seg.labels.table))
    return 0


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


def cmd_train(args) -> int:
    from pathlib import Path

    import torch

    from inference.registry import SHIPPED
    from inference.training.recipes import RECIPES
    from inference.training.train import train

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.from_store:
        from inference.registry import Registry, user_models_dir
        from inference.training.from_store import retrain
        from store.corrections import CorrectionsStore

        reg = Registry()
        base = reg.get(args.base or args.recipe and {"brain": "brain-tissue", "ct": "ct-torso-phantom",
                                                      "us": "us-lesion-2d"}[args.recipe])
        store = CorrectionsStore(Path(args.store) if args.store else None)
        try:
            card = retrain(store, base, Path(args.out) if args.out else user_models_dir(),
                           args.iterations or 200, versions=[c.version for c in reg.versions(base.id)])
        finally:
            store.close()
        print(card.summary())
        return 0
    if args.recipe is None:
        raise SystemExit("name a recipe (brain, ct, us), or --from-store --base MODEL")
    recipe = RECIPES[args.recipe]()
    parent = None
    if args.init:
        from inference.registry import Registry

        model_id, _, version = args.init.partition("/")
        parent = Registry().get(model_id, version or None)
    card = train(recipe, Path(args.out) if args.out else SHIPPED, args.iterations, seed=args.seed,
                 heldout_cases=args.heldout, parent=parent, version=args.version, lr=args.lr)
    print(card.summary())
    return 0


def _ints(text):
    return [int(v) for v in text.split(",")] if text else None


def _floats(text):
    return [float(v) for v in text.split(",")] if text else None


def cmd_import(args) -> int:
    from pathlib import Path

    from inference import importers
    from inference.registry import user_models_dir

    from core.errors import DelineateError

    try:
        labels = dict((int(k), v) for k, v in (item.split("=", 1) for item in args.labels.split(","))) \
            if args.labels else None
        norm = {"kind": args.norm}
        if args.norm == "ct_window":
            lo, hi = _floats(args.window) or (-1000.0, 1000.0)
            norm.update(low=lo, high=hi)
        _ints(args.patch), _floats(args.spacing)
    except ValueError:
        raise DelineateError("--labels is VALUE=NAME,..., --window LOW,HIGH, --patch and --spacing are "
                             "comma-separated numbers") from None
    src = Path(args.path)
    root = user_models_dir()  # every import writes inside it, under a sanitised <id>/<version>

    if args.kind == "torchscript":
        if not (args.id and args.patch and args.modality):
            raise SystemExit("torchscript import needs --id, --patch and --modality")
        patch = _ints(args.patch)
        card = importers.import_torchscript(src, root, model_id=args.id, spatial_dims=len(patch),
                                            patch_size=patch, modality=args.modality, normalisation=norm,
                                            labels=labels, spacing=_floats(args.spacing), trust_code=args.trust_code)
    elif args.kind == "onnx":
        if not (args.id and args.modality):
            raise SystemExit("onnx import needs --id and --modality")
        card = importers.import_onnx(src, root, model_id=args.id, modality=args.modality,
                                     normalisation=norm, labels=labels, patch_size=_ints(args.patch),
                                     spacing=_floats(args.spacing))
    elif args.kind == "monai-bundle":
        card = importers.import_monai_bundle(src, root, model_id=args.id, modality=args.modality)
    else:
        card = importers.import_nnunet(src, root, model_id=args.id, modality=args.modality, fold=args.fold)
    print(card.summary())
    print(f"    {card.folder}")
    return 0


def cmd_explain(args) -> int:
    from core.volume import Volume
    from formats.io import read_image, write_image
    from inference.registry import Registry
    from inference.xai import explain

    vol = read_image(_resolve(args.input), _progress_bar, series=args.series)
    reg = Registry()
    card = reg.get(args.model) if args.model else reg.default_for(vol.modality, 2 if vol.is_2d else 3)
    label = 0
    if args.method != "uncertainty":
        lab = card.labels.by_name(args.label) if args.label else next(iter(card.labels))
        if lab is None and args.label and args.label.isdigit():
            lab = card.labels.get(int(args.label))
        if lab is None:
            raise SystemExit(f"{card.id} has no label {args.label!r}; labels: "
                             + ", ".join(x.name for x in card.labels))
        label = lab.value
    result = explain(vol, card, label, args.method, progress=_progress_bar, device=args.device)
    write_image(Volume(result.values, vol.geometry, modality="OT", description=f"{args.method} {card.id}"),
                args.output)
    extra = result.extra
    if args.method == "uncertainty":
        print(f"case uncertainty {extra['case']:.3f}; per segment: "
              + ", ".join(f"{card.labels.get(v).name} {s:.3f}" for v, s in extra["per_segment"].items()))
    print(f"wrote {args.output} ({args.method}, {card.id} v{card.version})")
    return 0


def cmd_export_dataset(args) -> int:
    from pathlib import Path

    from store.corrections import CorrectionsStore
    from store.dataset import export

    store = CorrectionsStore(Path(args.store) if args.store else None)
    try:
        counts = export(store, Path(args.output), args.format, args.name)
    finally:
        store.close()
    print(f"wrote {counts['train']} training and {counts['holdout']} held-out cases to {args.output} ({args.format})")
    return 0


def cmd_check_store(args) -> int:
    from pathlib import Path

    from store.corrections import CorrectionsStore

    if args.store and not (Path(args.store) / "index.sqlite").is_file():
        raise SystemExit(f"error: {args.store}: not a Delineate store (no index.sqlite)")
    store = CorrectionsStore(Path(args.store) if args.store else None)
    try:
        for path in store.repair() if args.repair else []:
            print(f"removed {path}")
        problems = store.check()
        n = len(store.cases())
    finally:
        store.close()
    for p in problems:
        print(p)
    print(f"{store.root}: {n} cases, " + (f"{len(problems)} problems" if problems else "healthy"))
    return 1 if problems else 0


def _export_case(args):
    """(volume, corrected, ai, model ref, stored card snapshot, reviewer, state, case id) from an image
    path or a store case."""
    from pathlib import Path

    from core.errors import DelineateError
    from formats.io import read_image, read_labelmap
    from store.corrections import CorrectionsStore, image_hash

    if Path(_resolve(args.case)).exists():
        if not args.labels:
            raise DelineateError("exporting an image needs --labels (the label map to export)")
        vol = read_image(_resolve(args.case), _progress_bar, series=args.series)
        fixed = read_labelmap(args.labels, vol)
        ai = read_labelmap(args.ai, vol) if args.ai else None
        return vol, fixed, ai, args.model, None, args.reviewer or "", "", ""
    store = CorrectionsStore(Path(args.store) if args.store else None)
    try:
        matches = [c for c in store.cases() if c.id.startswith(args.case)]
        if len(matches) != 1:
            raise DelineateError(f"{args.case!r} is neither a file nor {'a unique' if matches else 'a'} store case id")
        case = matches[0]
        vol, ai, fixed = store.load(case.id)
        latest = store.latest(case.id)
    finally:
        store.close()
    if args.source:  # the original DICOM, so SEG/RTSTRUCT reference its instances (checked by content)
        original = read_image(args.source, _progress_bar, series=args.series)
        if image_hash(original) != case.image_hash:
            raise DelineateError(f"{args.source} is not the image of case {case.id} (content differs)")
        fixed.geometry = ai.geometry = original.geometry
        vol = original
    model = args.model or (f"{latest['model_id']}/{latest['model_version']}" if latest.get("model_id") else None)
    snapshot = None if args.model else latest.get("card")  # the card as it was when the correction was saved
    return vol, fixed, ai, model, snapshot, args.reviewer or latest.get("reviewer") or "", case.state, case.id


def cmd_export(args) -> int:
    from pathlib import Path

    from export.case import ExportRequest, export

    from core.errors import DelineateError

    vol, fixed, ai, model_ref, snapshot, reviewer, state, case_id = _export_case(args)
    card, model = None, snapshot
    if model_ref and (snapshot is None or args.fractional):
        from inference.registry import Registry

        model_id, _, version = model_ref.partition("/")
        try:
            card = Registry().get(model_id, version or None)
            model = card.report_dict()
        except DelineateError:
            if args.model or args.fractional:
                raise
            # a store case from before card snapshots, whose model is gone: what the store knows
            model = {"id": model_id, "version": version, "name": f"{model_id} (no longer registered)"}
    probs = None
    if args.fractional:
        from inference.runner import segment

        if card is None:
            raise DelineateError("a fractional SEG holds a model's probabilities: name the model with --model")
        probs = segment(vol, card, _progress_bar).probabilities[1:]
    req = ExportRequest(args.format, vol, fixed, Path(args.output), ai=ai, probabilities=probs,
                        deidentify=args.deidentify, compress=args.compress, model=model,
                        reviewer=reviewer, state=state, case_id=case_id)
    written = export(req, _progress_bar)
    print(f"wrote {written[0]}" + (f" (+{len(written) - 1} files)" if len(written) > 1 else ""))
    return 0


def cmd_benchmark(args) -> int:
    from pathlib import Path

    from inference import benchmark

    budget = None if args.iterations else args.budget
    if args.one:  # one architecture, in this (child) process
        benchmark.run_one(args.task, args.one, budget * 60 if budget else None, args.iterations, Path(args.out),
                          Path(args.models), args.heldout, log=lambda m: print(m, file=sys.stderr))
        return 0
    rows = benchmark.run(args.task, Path(args.out), budget, args.iterations, args.only.split(",") if args.only else None,
                         args.heldout, Path(args.models) if args.models else None)
    print(f"wrote {Path(args.out) / f'benchmark-{args.task}.md'} ({len(rows)} models)")
    return 0


def cmd_gui(args) -> int:
    from gui.app import run

    return run(_resolve(args.path) if args.path else None, model=not args.no_model)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="delineate", description=__doc__.strip().splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    g = sub.add_parser("gui", help="open the viewer (default when no command is given)")
    g.add_argument("path", nargs="?", help="image file, DICOM folder or sample name (default: the MNI152 T1 "
                                           "sample, segmented by the default brain model)")
    g.add_argument("--no-model", action="store_true", help="do not run the default model on the sample")
    g.set_defaults(func=cmd_gui)
    i = sub.add_parser("info", help="print the series, size, spacing, orientation, modality and value range")
    i.add_argument("path", nargs="?", default="mni152-t1", help="image file, DICOM folder or sample name")
    i.add_argument("--series", help="series key/UID/number in a DICOM folder (default: the largest)")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.add_argument("--samples", action="store_true", help="list the bundled sample names")
    i.set_defaults(func=cmd_info)
    c = sub.add_parser("convert", help="convert an image or label map between formats (by file suffix)")
    c.add_argument("input")
    c.add_argument("output", help=".nii/.nii.gz, .nrrd, .mha/.mhd, .png, .tif, or a folder for a DICOM series")
    c.add_argument("--labels", action="store_true", help="the input is a label map (keeps its label table)")
    c.add_argument("--series", help="series key/UID/number in a DICOM folder")
    c.set_defaults(func=cmd_convert)
    s = sub.add_parser("segment", help="run a segmentation model; writes a label map on the input's exact grid")
    s.add_argument("input", help="image file, DICOM folder or sample name")
    s.add_argument("output", help="label map: .nii.gz, .nrrd/.seg.nrrd, .mha")
    s.add_argument("--model", help="model id (default: the default model for the image's modality)")
    s.add_argument("--version", help="model version (default: the latest)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    s.add_argument("--series", help="series key/UID/number in a DICOM folder")
    s.set_defaults(func=cmd_segment)
    m = sub.add_parser("models", help="list the registered models and their cards")
    m.add_argument("--markdown", action="store_true", help="as a Markdown table")
    m.set_defaults(func=cmd_models)
    t = sub.add_parser("train", help="train a default model on generated data (CPU is fine)")
    t.add_argument("recipe", nargs="?", choices=("brain", "ct", "us"))
    t.add_argument("--from-store", action="store_true", help="fine-tune on the approved corrections in the store")
    t.add_argument("--base", help="with --from-store: the model to start from (default: the recipe's)")
    t.add_argument("--store", help="with --from-store: the store folder (default: the user's)")
    t.add_argument("--iterations", type=int, help="default: the recipe's")
    t.add_argument("--out", help="models folder (default: resources/models, the shipped models)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--heldout", type=int, default=4, help="held-out generated cases for the card's Dice")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--init", help="start from a registered model's weights, ID or ID/VERSION (fine-tuning)")
    t.add_argument("--version", help="version of the new model (default: the recipe's)")
    t.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("explain", help="saliency (Grad-CAM, occlusion, integrated gradients) or uncertainty map "
                                       "of a model on an image, written with the image's geometry")
    e.add_argument("input", help="image file, DICOM folder or sample name")
    e.add_argument("output", help="map image: .nii.gz, .nrrd, .mha")
    e.add_argument("--model", help="model id (default: the default model for the modality)")
    e.add_argument("--label", help="label name or value (default: the first)")
    e.add_argument("--method", default="gradcam", choices=("gradcam", "occlusion", "ig", "uncertainty"))
    e.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    e.add_argument("--series", help="series key/UID/number in a DICOM folder")
    e.set_defaults(func=cmd_explain)
    x = sub.add_parser("export-dataset", help="export approved corrections as an nnU-Net v2 or MONAI dataset")
    x.add_argument("output", help="folder")
    x.add_argument("--format", choices=("nnunet", "monai"), default="nnunet")
    x.add_argument("--name", default="Dataset500_Delineate", help="nnU-Net dataset name (DatasetNNN_Name)")
    x.add_argument("--store", help="corrections store folder (default: the user's)")
    x.set_defaults(func=cmd_export_dataset)
    cs = sub.add_parser("check-store", help="check the corrections store: index integrity, missing files, and the "
                                            "litter of interrupted saves (--repair removes that litter)")
    cs.add_argument("--repair", action="store_true", help="remove unreferenced files and temp folders first")
    cs.add_argument("--store", help="corrections store folder (default: the user's)")
    cs.set_defaults(func=cmd_check_store)
    ex = sub.add_parser("export", help="export a reviewed case: DICOM SEG / RTSTRUCT, NIfTI / NRRD label map, "
                                       "STL / OBJ / glTF surfaces, statistics or the review report")
    ex.add_argument("case", help="an image (file, DICOM folder or sample name; give --labels) or a store case id")
    ex.add_argument("output", help="file (folder for stl/obj)")
    ex.add_argument("--format", required=True, choices=("seg", "rtstruct", "nifti", "nrrd", "stl", "obj", "gltf",
                                                        "stats", "report"))
    ex.add_argument("--labels", help="label map to export (for an image path)")
    ex.add_argument("--ai", help="the AI's draft label map, for agreement statistics (for an image path)")
    ex.add_argument("--model", help="model id[/version] that made the draft (cards go into SEG and the report)")
    ex.add_argument("--fractional", action="store_true", help="SEG: the model's probabilities (FRACTIONAL)")
    ex.add_argument("--compress", action="store_true",
                    help="SEG: JPEG 2000 lossless frames (~30x smaller; not every viewer decodes them)")
    ex.add_argument("--deidentify", action="store_true",
                    help="DICOM PS3.15 Annex E basic profile on everything written (UIDs remapped consistently)")
    ex.add_argument("--source", help="store case: its original DICOM, so SEG/RTSTRUCT reference those instances")
    ex.add_argument("--series", help="which DICOM series, when a folder holds several")
    ex.add_argument("--reviewer", help="reviewer's name for the report")
    ex.add_argument("--store", help="corrections store folder (default: the user's)")
    ex.set_defaults(func=cmd_export)
    bm = sub.add_parser("benchmark-models", help="train every architecture on the same generated data and budget, "
                                                 "evaluate on the same held-out cases; Markdown + CSV + plot")
    bm.add_argument("--task", default="us", choices=("us", "ct", "brain"))
    bm.add_argument("--budget", type=float, default=2.0, help="training minutes per architecture (default 2)")
    bm.add_argument("--iterations", type=int, help="a fixed number of iterations instead of a time budget")
    bm.add_argument("--only", help="comma-separated architectures (e.g. UNet,SegNet)")
    bm.add_argument("--heldout", type=int, default=8, help="held-out generated cases")
    bm.add_argument("--out", default="docs", help="folder for benchmark-TASK.md/.csv/.png (default docs/)")
    bm.add_argument("--models", help="where the trained models are registered (default: the user's model folder)")
    bm.add_argument("--one", help=argparse.SUPPRESS)
    bm.set_defaults(func=cmd_benchmark)
    im = sub.add_parser("import-model", help="turn a TorchScript / ONNX / MONAI bundle / nnU-Net v2 model into a "
                                             "registry entry with a card (in the user's model folder)")
    im.add_argument("kind", choices=("torchscript", "onnx", "monai-bundle", "nnunet"))
    im.add_argument("path", help="model file, bundle folder, or nnU-Net Trainer__Plans__configuration folder")
    im.add_argument("--id", help="model id (required for TorchScript/ONNX)")
    im.add_argument("--modality", help="CT, MR, US, ... (what the files do not say)")
    im.add_argument("--labels", help="label names, e.g. 1=liver,2=tumour")
    im.add_argument("--patch", help="patch size in the network's array order, e.g. 96,96,96")
    im.add_argument("--spacing", help="model spacing x,y,z in mm (omit: the image's own grid)")
    im.add_argument("--norm", default="zscore", choices=("zscore", "ct_window", "percentile", "minmax", "none"))
    im.add_argument("--window", help="for --norm ct_window: low,high in HU")
    im.add_argument("--fold", default="0", help="nnU-Net fold")
    im.add_argument("--trust-code", action="store_true",
                    help="TorchScript only: the model is a program; run its code (in a confined child process). "
                         "Without this it is refused; prefer ONNX, which holds no code")
    im.set_defaults(func=cmd_import)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["gui"] + list(argv or []))
    from core.errors import DelineateError

    try:
        return args.func(args)
    except DelineateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 3: a model refused as unsafe (import-model)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
