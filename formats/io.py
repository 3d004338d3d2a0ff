"""One entry point to read and write images and label maps, chosen by path."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pydicom

from core.errors import DelineateError, FormatError
from core.labels import LabelMap
from core.progress import CancelToken, ProgressFn, no_progress
from core.volume import Volume

IMAGE_SUFFIXES = {
    "nifti": (".nii", ".nii.gz"),
    "itk": (".nrrd", ".nhdr", ".mha", ".mhd"),
    "raster": (".png", ".tif", ".tiff"),
    "dicom": (".dcm", ".dicom", ".ima"),
}


def kind_of(path: str | Path) -> str:
    """'nifti' | 'itk' | 'raster' | 'dicom' for a path (a folder is DICOM)."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return "dicom"
    for kind, suffixes in IMAGE_SUFFIXES.items():
        if name.endswith(suffixes):
            return kind
    if p.is_file() and _has_dicm_preamble(p):
        return "dicom"
    raise FormatError(path, "unknown file type (expected DICOM, .nii/.nii.gz, .nrrd, .mha/.mhd, .png or .tif)")


def _has_dicm_preamble(p: Path) -> bool:
    with open(p, "rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return True
    try:
        pydicom.dcmread(p, stop_before_pixels=True)
        return True
    except Exception:
        return False


def _module(kind: str):
    if kind == "nifti":
        from formats import nifti as mod
    elif kind == "itk":
        from formats import itk_formats as mod
    elif kind == "raster":
        from formats import raster as mod
    else:
        raise ValueError(kind)
    return mod


def _guard(path, fn, *args, **kw):
    """Errors of ours pass through; anything a third-party reader throws names the file."""
    if not Path(path).exists():
        raise FormatError(path, "does not exist")
    try:
        return fn(*args, **kw)
    except DelineateError:
        raise
    except MemoryError:
        raise FormatError(path, "needs more memory than is available") from None
    except Exception as exc:  # a reader library's own error: report it against the file
        raise FormatError(path, f"cannot be read ({type(exc).__name__}: {exc})") from None


def read_image(path: str | Path, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
               series: Optional[str] = None, on_first_slice=None) -> Volume:
    kind = kind_of(path)
    if kind == "dicom":
        from formats.dicom.load import load_dicom
        return _guard(path, load_dicom, path, progress, cancel, series, on_first_slice)
    progress(0.0, f"reading {Path(path).name}")
    vol = _guard(path, _module(kind).read_volume, path)
    progress(1.0, "loaded")
    return vol


def read_labelmap(path: str | Path, reference: Optional[Volume] = None) -> LabelMap:
    kind = kind_of(path)
    if kind == "dicom":
        raise FormatError(path, "DICOM label maps (SEG/RTSTRUCT) are read by the export module")
    lm = _guard(path, _module(kind).read_labelmap, path)
    if reference is not None and not lm.geometry.same_grid(reference.geometry, tol=1e-4):
        raise FormatError(path, "label map is not on the image's grid (size, spacing, origin or direction differ)")
    return lm


def write_image(volume: Volume, path: str | Path, progress: ProgressFn = no_progress,
                cancel: Optional[CancelToken] = None) -> None:
    p = Path(path)
    if p.suffix == "" or p.is_dir() or p.name.lower().endswith(IMAGE_SUFFIXES["dicom"]):
        from formats.dicom.write import write_series
        write_series(volume, p if p.suffix == "" or p.is_dir() else p.parent, progress=progress, cancel=cancel)
        return
    _module(kind_of(p)).write_volume(volume, p)
    progress(1.0, f"wrote {p.name}")


def write_labelmap(labelmap: LabelMap, path: str | Path) -> None:
    kind = kind_of(path)
    if kind == "dicom":
        raise FormatError(path, "write label maps to DICOM as SEG or RTSTRUCT with the export command")
    _module(kind).write_labelmap(labelmap, path)
