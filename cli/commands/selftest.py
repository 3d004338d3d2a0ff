"""selftest (``delineate --selftest``): does this installation work? The first thing support asks for.

Opens the bundled sample, runs its default model, writes a DICOM SEG to a temporary folder and
reads it back, shows the main window offscreen (when started from ``delineate``/``main.py``, which
pass the window check: cli does not import Qt), then prints versions, the device, the GPU, the
OpenGL renderer and where user data lives. One PASS/FAIL line per check; exit 0 when all pass."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

#: (volume, labelmap) -> (detail, extra summary rows); raises on failure
WindowCheck = Callable[[object, object], tuple]


def selftest_arguments(p) -> None:
    p.add_argument("--device", default="auto", help="where the model runs: auto, cpu, cuda or mps")


def cmd_selftest(args) -> int:
    return run(args)


def run(args, window: Optional[WindowCheck] = None) -> int:
    import tempfile
    import time

    from app import logs

    results: list[tuple[str, bool, str]] = []
    found: dict = {}
    extra: list[tuple[str, str]] = []
    print(f"Delineate {logs.versions()['delineate']} self-test (research software, not for clinical use)")
    with tempfile.TemporaryDirectory(prefix="delineate-selftest-") as tmp:
        for name, check in (("open sample", _open), ("default model", _model), ("segment", _segment),
                            ("write DICOM SEG", _export), ("read SEG back", _read_back), ("main window", _window)):
            t0 = time.perf_counter()
            try:
                detail = check(found, args=args, tmp=Path(tmp), window=window, extra=extra)
                ok = True
            except Exception as exc:  # a failed check is a FAIL line, never a traceback
                ok, detail = False, f"{type(exc).__name__}: {exc}"
                logs.log.error("selftest %s failed", name, exc_info=True)
            results.append((name, ok, f"{detail} ({time.perf_counter() - t0:.1f} s)"))
            print(f"{'PASS' if ok else 'FAIL'}  {name:16s} {results[-1][2]}", flush=True)
    _summary(args, extra)
    failed = [name for name, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    logs.log.info("selftest: %d/%d passed%s", len(results) - len(failed), len(results),
                  f"; failed: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


def _need(found: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in found]
    if missing:
        raise RuntimeError(f"skipped: no {', '.join(missing)} (an earlier check failed)")


def _open(found, **_) -> str:
    from app.actions import opening
    from formats import samples

    vol = opening.read(samples.DEFAULT)
    found["volume"] = vol
    return f"{samples.DEFAULT}: {vol.modality} {'x'.join(map(str, vol.geometry.size))}"


def _model(found, **_) -> str:
    from app.actions.models import default_model

    _need(found, "volume")
    card = found["card"] = default_model(found["volume"])
    return f"{card.id} v{card.version} ({card.architecture})"


def _segment(found, args, **_) -> str:
    import numpy as np

    from app.actions import segmenting

    _need(found, "volume", "card")
    seg = found["segmentation"] = segmenting.segment(found["volume"], found["card"], args.device)
    present = set(np.unique(seg.labels.array).tolist()) - {0}
    names = [lab.name for lab in seg.labels.table if lab.value in present]
    expected = {lab.value for lab in seg.labels.table}
    if present != expected:
        raise RuntimeError(f"labels {sorted(present)} found, {sorted(expected)} expected")
    return f"on {seg.device} in {seg.seconds:.1f} s: {', '.join(names)}"


def _export(found, tmp, **_) -> str:
    from app.actions.exporting import CaseExport, export_case

    _need(found, "segmentation")
    seg, card = found["segmentation"], found["card"]
    case = CaseExport(found["volume"], seg.labels, model_ref=f"{card.id}/{card.version}")
    files = export_case("seg", case, tmp / "selftest-seg.dcm")
    found["seg_file"] = files[0]
    return f"{files[0].name}, {files[0].stat().st_size // 1024} KB (+{len(files) - 1} source files)"


def _read_back(found, **_) -> str:
    import numpy as np
    import pydicom

    from app.actions.segmentation_io import load_segmentation

    _need(found, "seg_file")
    ds = pydicom.dcmread(found["seg_file"], stop_before_pixels=True)
    if ds.Modality != "SEG" or len(ds.SegmentSequence) != len(found["segmentation"].labels.table):
        raise RuntimeError(f"{ds.Modality} with {len(ds.get('SegmentSequence', []))} segments")
    back = load_segmentation(found["seg_file"], found["volume"])
    wrote = found["segmentation"].labels.array
    differ = int(np.count_nonzero(back.array != wrote))
    if differ:
        raise RuntimeError(f"{differ} voxels differ from the segmentation written")
    return f"{len(ds.SegmentSequence)} segments, {int(np.count_nonzero(wrote))} voxels identical"


def _window(found, window, extra, **_) -> str:
    if window is None:
        raise RuntimeError("not checked: run `delineate --selftest` (python -m cli cannot open windows)")
    _need(found, "volume")  # without a segmentation (its check failed) the window is still tried
    seg = found.get("segmentation")
    detail, rows = window(found["volume"], seg.labels if seg is not None else None)
    extra.extend(rows)
    return detail


def _summary(args, extra: list) -> None:
    from app import logs

    v = logs.versions()
    rows = [("versions", f"python {v['python']}, torch {v['torch']}, monai {v['monai']}, PySide6 {v['PySide6-Essentials']}"),
            ("", f"VTK {v['vtk']}, pydicom {v['pydicom']}, highdicom {v['highdicom']}, SimpleITK {v['SimpleITK']}"),
            ("platform", _platform())]
    rows += _devices(args.device)
    rows += extra
    from inference.registry import user_models_dir
    from store.corrections import default_root
    from store.location import redacted
    from store.recovery import recovery_path

    rows += [("user data", f"models   {user_models_dir()}"), ("", f"store    {redacted(str(default_root()))}"),
             ("", f"recovery {recovery_path()}"), ("", f"logs     {logs.log_dir()}")]
    for key, value in rows:
        print(f"{key:10s} {value}")


def _platform() -> str:
    import platform

    return f"{platform.system()} {platform.release()} {platform.machine()}, {sys.executable}"


def _devices(preference: str) -> list:
    try:
        import torch

        from inference.device import pick

        cuda = (f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                else f"no CUDA GPU{'' if torch.version.cuda else ' (CPU build of torch)'}")
        mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        return [("device", f"{pick(preference)} (preference {preference}); {cuda}{'; Apple MPS' if mps else ''}")]
    except Exception as exc:
        return [("device", f"unknown ({type(exc).__name__}: {exc})")]


COMMANDS = (
    ("selftest", "check this installation: open the sample, segment, write and read a DICOM SEG, open the window "
                 "(also --selftest)", selftest_arguments, cmd_selftest),
)
