"""info and convert: what an image is, and the same image in another format."""
from __future__ import annotations

import json
import sys

from cli.paths import resolve
from cli.progress import progress_bar


def info_arguments(p) -> None:
    p.add_argument("path", nargs="?", default="mni152-t1", help="image file, DICOM folder or sample name")
    p.add_argument("--series", help="series key/UID/number in a DICOM folder (default: the largest)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--samples", action="store_true", help="list the bundled sample names")


def cmd_info(args) -> int:
    from pathlib import Path

    from core.time_series import time_series_of
    from formats import samples
    from formats.io import kind_of, read_image

    if args.samples:
        for name in samples.names():
            print(f"{name:16s} {samples.describe(name)['description']}")
        return 0
    target = resolve(args.path)
    if kind_of(target) == "dicom" and Path(target).is_dir():
        from formats.io import list_series

        series = list_series(target, progress_bar)
        print(f"{len(series)} series/stacks in {target}:")
        for s in series:
            d = s.summary()
            print(f"  [{d['key']}] {d['modality']:3s} {d['images']:4d} images {d['size']:>9s}  "
                  f"{d['study']} / {d['series']} {d['note']}")
        for path, why in series[0].skipped if series else []:
            print(f"  skipped {path}: {why}")
    vol = read_image(target, progress_bar, series=args.series)
    d = vol.describe()
    series = time_series_of(vol)
    d["time_points"] = series.count if series is not None else 1
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"source:      {d['source']}")
    print(f"description: {d['description']}")
    print(f"modality:    {d['modality']}   dtype: {d['dtype']}   channels: {d['channels']}")
    print(f"size (xyz):  {d['size_xyz']}")
    if series is not None:
        apart = f", {series.frame_time_ms / 1000:g} s apart" if series.frame_time_ms else ""
        print(f"time points: {series.count}{apart} (a 3D series over time; the first is read unless asked)")
    print(f"spacing mm:  {[round(v, 6) for v in d['spacing_mm']]}")
    print(f"origin mm:   {[round(v, 4) for v in d['origin_lps_mm']]} (LPS)")
    print(f"orientation: {d['orientation']}{' (oblique)' if d['oblique'] else ''}")
    print(f"value range: {d['value_range']}")
    if d["window_presets"]:
        print("windows:     " + ", ".join(f"{n} C{c:g}/W{w:g}" for n, c, w in d["window_presets"]))
    for w in d["warnings"]:
        print(f"warning:     {w}")
    return 0


def convert_arguments(p) -> None:
    p.add_argument("input")
    p.add_argument("output", help=".nii/.nii.gz, .nrrd, .mha/.mhd, .png, .tif, or a folder for a DICOM series")
    p.add_argument("--labels", action="store_true", help="the input is a label map (keeps its label table)")
    p.add_argument("--series", help="series key/UID/number in a DICOM folder")


def cmd_convert(args) -> int:
    from formats.io import read_image, read_labelmap, write_image, write_labelmap

    src = resolve(args.input)
    if args.labels:
        lm = read_labelmap(src)
        write_labelmap(lm, args.output)
        print(f"wrote label map {args.output} ({len(lm.table)} labels)")
    else:
        vol = read_image(src, progress_bar, series=args.series)
        for w in vol.warnings:
            print(f"warning: {w}", file=sys.stderr)
        write_image(vol, args.output, progress_bar)
        print(f"wrote {args.output}")
    return 0


COMMANDS = (
    ("info", "print the series, size, spacing, orientation, modality and value range", info_arguments, cmd_info),
    ("convert", "convert an image or label map between formats (by file suffix)", convert_arguments, cmd_convert),
)
