"""Refuse hostile or huge files before allocating: a header's word is checked, never trusted."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from core.errors import FormatError, TooLargeError

_ENV = "DELINEATE_MAX_IMAGE_BYTES"


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def memory_budget() -> int:
    """Largest single image allocation allowed: half the free memory, or $DELINEATE_MAX_IMAGE_BYTES."""
    env = os.environ.get(_ENV)
    if env:
        return int(env)
    return _available_memory() // 2


def decode_address_limit() -> int:
    """Address space a decoding child may reserve beyond what it starts with (formats.sandbox):
    room for the largest image the budget allows decoded twice, plus the decoders' working
    memory; $DELINEATE_DECODE_MAX_BYTES overrides."""
    env = os.environ.get("DELINEATE_DECODE_MAX_BYTES")
    if env:
        return int(env)
    return 2 * memory_budget() + (1 << 30)


def declared_bytes(shape, dtype) -> int:
    n = 1
    for s in shape:
        s = int(s)
        if s < 0:
            raise ValueError(f"negative dimension {s}")
        n *= s
    return n * np.dtype(dtype).itemsize


def human(n: float) -> str:
    """A byte count for messages: 1.5 GiB."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_allocation(path: str | Path, shape, dtype, what: str = "image") -> int:
    """Raise TooLargeError if an array of ``shape``/``dtype`` would exceed the memory budget."""
    try:
        nbytes = declared_bytes(shape, dtype)
    except ValueError as exc:
        raise TooLargeError(path, f"header declares an invalid {what} size {tuple(shape)}: {exc}") from None
    if nbytes == 0:
        raise TooLargeError(path, f"header declares an empty {what} {tuple(shape)}")
    budget = memory_budget()
    if nbytes > budget:
        raise TooLargeError(
            path, f"header declares a {what} of {tuple(int(s) for s in shape)} {np.dtype(dtype).name} "
                  f"= {human(nbytes)}, more than the {human(budget)} this machine can spare; refused")
    return nbytes


def check_file_holds(path: str | Path, declared: int, available: int, what: str = "pixel data") -> None:
    """Raise TooLargeError if a header declares more uncompressed bytes than the file holds."""
    if declared > available:
        raise TooLargeError(
            path, f"header declares {human(declared)} of {what} but the file holds only "
                  f"{human(available)}: truncated or corrupt")


def check_rescale(path: str | Path, slope: float, intercept: float, slope_field: str, intercept_field: str,
                  stored_dtype) -> None:
    """Refuse a value rescale that is not finite or would carry stored integers past float32's range."""
    for name, v in ((slope_field, slope), (intercept_field, intercept)):
        if not np.isfinite(v):
            raise FormatError(path, f"{name} is {v}: not a finite number; refused")
    dt = np.dtype(stored_dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        reach = abs(slope) * max(abs(float(info.min)), float(info.max)) + abs(intercept)
        if reach > float(np.finfo(np.float32).max):
            raise FormatError(path, f"{slope_field} {slope:g} / {intercept_field} {intercept:g} would put {dt.name} "
                                    f"values beyond float32's range (infinite intensities); refused")


def read_into(path: str | Path, offset: int, out: memoryview, gz: bool, chunk: int = 8 << 20) -> int:
    """Fill ``out`` with the bytes at ``offset`` of the file (of its gunzipped stream when ``gz``)
    without a second copy of the whole; never inflates more than ``out`` holds. Returns the count
    filled (less than ``len(out)`` if the data end early)."""
    got = 0
    with open(path, "rb") as fh:
        if not gz:
            fh.seek(offset)
            while got < len(out):
                n = fh.readinto(out[got:got + chunk])
                if not n:
                    break
                got += n
            return got
        inflate, pending, skip = zlib.decompressobj(47), b"", offset
        while got < len(out):
            if not pending:
                pending = fh.read(1 << 20)
                if not pending:
                    break
            data = inflate.decompress(pending, chunk)
            pending = inflate.unconsumed_tail
            if inflate.eof:  # a multi-member gzip: the next member starts in what is left
                pending = inflate.unused_data + pending
                inflate = zlib.decompressobj(47)
            if skip:
                k = min(skip, len(data))
                data, skip = data[k:], skip - k
            n = min(len(data), len(out) - got)
            out[got:got + n] = data[:n]
            got += n
    return got


def inflated_size(path: str | Path, offset: int, cap: int, zlib_wbits: int = 47) -> int:
    """Bytes the zlib/gzip stream at ``offset`` inflates to, counted in chunks and never past
    ``cap`` (a bomb costs its cap in CPU, not memory). Unreadable streams count what inflated."""
    total, inflate = 0, zlib.decompressobj(zlib_wbits)
    with open(path, "rb") as fh:
        fh.seek(offset)
        pending = b""
        while total < cap:
            if not pending:
                pending = fh.read(1 << 20)
                if not pending:
                    break
            try:
                total += len(inflate.decompress(pending, min(8 << 20, cap - total)))
            except zlib.error:
                break
            pending = inflate.unconsumed_tail
            if inflate.eof:
                if not inflate.unused_data:
                    break
                pending = inflate.unused_data + pending
                inflate = zlib.decompressobj(zlib_wbits)
    return total


def gzip_isize(path: str | Path) -> int:
    """Uncompressed size (mod 2**32) a single-member gzip file declares in its trailer."""
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return struct.unpack("<I", fh.read(4))[0]
