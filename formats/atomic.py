"""Atomic writes: write into a hidden temp folder beside the target, fsync, then rename into place.

A temp *folder* (not a temp name) keeps the final file names, so writers that choose compression
by suffix (.nii.gz) or reference companion files by name (.mhd -> .raw) behave as for the target.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temp path with the target's file name; on success move it (and any companion
    files written beside it) into place, the named file last."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=".delineate-", dir=path.parent))
    try:
        tmp = tmpdir / path.name
        yield tmp
        written = sorted(tmpdir.iterdir(), key=lambda p: p.name == path.name)
        for item in written:
            _fsync(item)
            if item.is_file():  # some writers create 0600 files: give saved files the usual 0644
                os.chmod(item, 0o644)
            os.replace(item, path.parent / item.name)
        with contextlib.suppress(OSError):
            _fsync(path.parent)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
