"""Deflated Explicit VR Little Endian files, inflated as a stream under a cap.

pydicom inflates the whole data set with one ``zlib.decompress``: a 3 MB file of zeros becomes
gigabytes before any header is checked. Here the header is inflated first, the pixel data it
declares sets the cap, and inflation stops as soon as the stream passes it. The result is an
ordinary Explicit VR Little Endian file in a (spooled) temporary file that pydicom reads as usual.
"""
from __future__ import annotations

import io
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from core.errors import FormatError, TooLargeError
from formats.limits import human
from formats.limits import memory_budget

_STEP = 1 << 20
_HEADER_MAX = 64 << 20  # an enhanced multi-frame header with its functional groups stays well below
_SLACK = 1 << 20  # elements after the pixel data (padding, signatures)
_PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")
_SPOOL = 64 << 20


def is_deflated(fp: BinaryIO) -> bool:
    """Whether the file's meta information names the deflated transfer syntax (fp is left at 0)."""
    try:
        fp.seek(128)
        if fp.read(4) != b"DICM":
            return False
        fp.seek(0)
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
        return meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    except Exception:  # a broken meta group is for dcmread to report
        return False
    finally:
        fp.seek(0)


@dataclass
class Inflated:
    file: BinaryIO  # an Explicit VR Little Endian file: preamble, meta, inflated data set
    data_offset: int  # where the data set starts in ``file``
    size: int  # the inflated data set's length (the whole stream, even when not kept)


def _declared_pixel_bytes(ds) -> int:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits, spp = int(ds.get("BitsAllocated", 16)), int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(float(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError, AttributeError):
        return 0
    n = max(rows, 0) * max(cols, 0) * max(spp, 1) * max(frames, 1)
    return (n * bits + 7) // 8 if bits > 0 else 0


def _header_bytes(meta: pydicom.Dataset) -> bytes:
    meta = pydicom.dataset.FileMetaDataset(meta)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=False)
    return b"\x00" * 128 + b"DICM" + buf.getvalue()


def _pixel_position(head: bytes, body: bytearray) -> int | None:
    """Offset in ``body`` of the top-level pixel data element, once enough of it is inflated."""
    fp = io.BytesIO(head + bytes(body))
    try:
        pydicom.dcmread(fp, stop_before_pixels=True)
    except Exception:
        return None
    pos = fp.tell() - len(head)
    return pos if bytes(body[pos:pos + 4]) in _PIXEL_TAGS else None


def inflate(path: Path, header_only: bool = False) -> Inflated:
    """The deflated file at ``path`` as an Explicit VR Little Endian file, refusing a stream that
    inflates past what its header declares (or the memory budget), is corrupt or ends early.
    ``header_only`` keeps just the elements before the pixel data (the rest is inflated and counted)."""
    with open(path, "rb") as fh:
        read_preamble(fh, False)
        head = _header_bytes(_read_file_meta_info(fh))
        budget = memory_budget()
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        body, size, cap, pixel_at, probe = bytearray(), 0, min(_HEADER_MAX, budget), None, _STEP
        out = tempfile.SpooledTemporaryFile(_SPOOL) if not header_only else None
        pending, at_end = b"", False
        try:
            while not inflater.eof:
                if not pending:
                    pending = fh.read(_STEP)
                    at_end = not pending
                chunk = inflater.decompress(pending, _STEP)
                pending = inflater.unconsumed_tail
                if at_end and not chunk and not inflater.eof:
                    raise FormatError(path, f"deflated data set ends early after {size} inflated bytes: "
                                            f"truncated or corrupt")
                size += len(chunk)
                if pixel_at is None:
                    body += chunk
                    if len(body) >= probe or inflater.eof:
                        probe *= 2
                        pixel_at = _pixel_position(head, body)
                        if pixel_at is not None:
                            ds_head = pydicom.dcmread(io.BytesIO(head + bytes(body[:pixel_at])),
                                                      stop_before_pixels=True)
                            cap = min(budget, pixel_at + 12 + _declared_pixel_bytes(ds_head) + _SLACK)
                            if header_only:
                                del body[pixel_at + 12:]
                            if out is not None:
                                out.write(head + bytes(body))
                                body = bytearray()
                        elif len(body) > _HEADER_MAX:
                            cap, pixel_at = budget, len(body)  # no pixel data found: the budget is the cap
                            if out is not None:
                                out.write(head + bytes(body))
                                body = bytearray()
                elif out is not None:
                    out.write(chunk)
                if size > cap:
                    raise TooLargeError(path, f"deflated data set inflates to more than the {human(cap)} "
                                              f"its header accounts for: a decompression bomb; refused")
        except zlib.error as exc:
            raise FormatError(path, f"deflated data set is corrupt (zlib: {exc})") from None
    if out is None:
        out = io.BytesIO(head + bytes(body))
    elif body:
        out.write(head + bytes(body))
    out.seek(0)
    return Inflated(out, len(head), size)
