"""One entry point to read and write images and label maps, chosen by path."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pydicom

from core.errors import DelineateError, FormatError, GeometryError
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
    except GeometryError as exc:  # nonsense spacing/origin/direction in the header: name the file
        raise FormatError(path, str(exc)) from None
    except DelineateError:
        raise
    except MemoryError:
        raise FormatError(path, "needs more memory than is available") from None
    except Exception as exc:  # a reader library's own error: report it against the file
        raise FormatError(path, f"cannot be read ({type(exc).__name__}: {exc})") from None


def read_image(path: str | Path, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
               series: Optional[str] = None, on_first_slice=None, isolate: Optional[bool] = None) -> Volume:
    """A file or DICOM folder -> Volume, decoded in a child process (formats.sandbox) unless
    ``isolate`` is False, $DELINEATE_DECODE_IN_PROCESS is set or it is a bundled sample: a reader
    that crashes or hangs on a hostile file then costs a FormatError, not the caller."""
    if not Path(path).exists():
        raise FormatError(path, "does not exist")
    if not _isolated(isolate, path):
        return _read_image_here(path, series, progress, cancel, on_first_slice)
    from formats import sandbox

    return sandbox.call(path, _read_image_here, str(Path(path).absolute()), series,
                        progress=progress, cancel=cancel, on_first_slice=on_first_slice, preload=_readers_for(path))


def read_labelmap(path: str | Path, reference: Optional[Volume] = None, isolate: Optional[bool] = None) -> LabelMap:
    if not Path(path).exists():
        raise FormatError(path, "does not exist")
    if _isolated(isolate, path):
        from formats import sandbox

        lm = sandbox.call(path, _read_labelmap_here, str(Path(path).absolute()), preload=_readers_for(path))
    else:
        lm = _read_labelmap_here(path)
    if reference is not None and not lm.geometry.same_grid(reference.geometry, tol=1e-4):
        raise FormatError(path, "label map is not on the image's grid (size, spacing, origin or direction differ)")
    return lm


def list_series(folder: str | Path, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
                isolate: Optional[bool] = None):
    """The series in a DICOM folder (formats.dicom.scan.list_series), scanned in a child process."""
    from formats.dicom.scan import list_series as scan

    if not _isolated(isolate):
        return _guard(folder, scan, folder, progress, cancel)
    from formats import sandbox

    return sandbox.call(folder, _guard, str(Path(folder).absolute()), scan, str(Path(folder).absolute()),
                        progress=progress, cancel=cancel, preload=("formats.dicom.scan",))


def load_series(info, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
                on_first_slice=None, isolate: Optional[bool] = None) -> Volume:
    """One scanned series (formats.dicom.load.load_series), decoded in a child process."""
    from formats.dicom.load import load_series as load

    source = str(info.files[0].parent if len(info.files) > 1 else info.files[0])
    if not _isolated(isolate):
        return _guard(source, load, info, progress, cancel, on_first_slice)
    from formats import sandbox

    return sandbox.call(source, _load_series_here, info, progress=progress, cancel=cancel,
                        on_first_slice=on_first_slice, preload=("formats.dicom.load",))


def _readers_for(path) -> tuple[str, ...]:
    name = Path(path).name.lower()
    for kind, suffixes in IMAGE_SUFFIXES.items():
        if name.endswith(suffixes):
            return ("formats.dicom.load",) if kind == "dicom" else (_module(kind).__name__,)
    return ("formats.dicom.load",)


def _isolated(isolate: Optional[bool], path=None) -> bool:
    """Decode in a child unless told otherwise, or the file is one of the bundled samples."""
    from formats.sandbox import in_process

    if isolate is not None:
        return isolate
    return not in_process() and not (path is not None and _is_sample(path))


def _is_sample(path) -> bool:
    global _SAMPLE_FILES
    if _SAMPLE_FILES is None:
        from formats import samples

        found = set()
        for name in samples.names():
            try:
                found.add(samples.path(name).resolve())
            except DelineateError:
                pass
        _SAMPLE_FILES = frozenset(found)
    try:
        return Path(path).resolve() in _SAMPLE_FILES
    except (OSError, ValueError):
        return False


_SAMPLE_FILES: Optional[frozenset] = None


def _read_image_here(path, series=None, progress: ProgressFn = no_progress, cancel=None,
                     on_first_slice=None) -> Volume:
    kind = kind_of(path)
    if kind == "dicom":
        from formats.dicom.load import load_dicom
        return _guard(path, load_dicom, path, progress, cancel, series, on_first_slice)
    progress(0.0, f"reading {Path(path).name}")
    vol = _guard(path, _module(kind).read_volume, path)
    progress(1.0, "loaded")
    return vol


def _read_labelmap_here(path, progress: ProgressFn = no_progress) -> LabelMap:
    kind = kind_of(path)
    if kind == "dicom":
        raise FormatError(path, "DICOM label maps (SEG/RTSTRUCT) are read by the export module")
    return _guard(path, _module(kind).read_labelmap, path)


def _load_series_here(info, progress: ProgressFn = no_progress, on_first_slice=None) -> Volume:
    from formats.dicom.load import load_series as load

    source = str(info.files[0].parent if len(info.files) > 1 else info.files[0])
    return _guard(source, load, info, progress, None, on_first_slice)


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
