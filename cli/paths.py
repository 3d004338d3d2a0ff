"""Image arguments: a path, or the name of a bundled sample (``info --samples``)."""
from __future__ import annotations

from pathlib import Path

# formats.io.IMAGE_SUFFIXES, not imported: the parser and --help stay free of numpy
_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".tif", ".tiff", ".dcm", ".dicom", ".ima")


def resolve(path: str) -> str:
    """A sample name (see `info --samples`) or a path, as a path (app.actions.opening.resolve,
    imported when used: the parser and --help stay free of numpy)."""
    from app.actions.opening import resolve as as_path

    return as_path(path)


def existing(path: str) -> str:
    """``resolve``, and a one-line error when nothing is there (said before any window opens)."""
    from core.errors import DelineateError

    found = resolve(path)
    if not Path(found).exists():
        raise DelineateError(f"{path}: no such file or folder (nor a sample name: info --samples)")
    return found


def is_image(text: str) -> bool:
    """Whether a first argument names something to open (an existing path or a sample), not a command.
    Something written as a path (a folder separator, an image file's suffix) is one even when it
    does not exist: the viewer then says so, rather than argparse listing the commands."""
    if not text or text.startswith("-"):
        return False
    if Path(text).exists() or "/" in text or "\\" in text or text.lower().endswith(_SUFFIXES):
        return True
    from formats import samples

    return text in samples.names()
