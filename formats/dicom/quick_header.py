"""A header-only walk of an ordinary DICOM image file that keeps only the attributes the scan needs.

pydicom reads and converts every element of every file; a 300-file series then spends most of its
opening time on headers whose values are the same in every file. This walk reads the raw bytes of
the few attributes the scan uses, so files whose attributes differ only in ImagePositionPatient,
InstanceNumber and their times share one ``key``: the scan checks that shared part once, through
pydicom and its own checks (scan.py), and parses only the position, instance number and times per file.

Anything out of the ordinary (no DICM preamble, a transfer syntax other than native little endian,
functional groups, an element it cannot walk, a number it would have to interpret) makes ``read``
return None: the file then goes the full pydicom way, with its checks and messages.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from struct import Struct, unpack_from
from typing import Optional

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.datadict import tag_for_keyword
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR
from pydicom.values import convert_string

from formats.dicom.frames import PixelLocation
from formats.dicom.validate import POSITION_LIMIT, PixelExtent

#: every attribute scan.py and frames.py read from a header to describe its frames and series
_KEYWORDS = ("SpecificCharacterSet", "SOPClassUID", "Modality", "PatientName", "PatientID", "StudyDescription",
             "SeriesDescription", "SeriesNumber", "SeriesInstanceUID", "Rows", "Columns", "BitsAllocated",
             "BitsStored", "PixelRepresentation", "SamplesPerPixel", "NumberOfFrames", "PlanarConfiguration",
             "PhotometricInterpretation", "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing",
             "SliceThickness", "RescaleSlope", "RescaleIntercept", "AcquisitionNumber", "EchoNumbers",
             "TemporalPositionIdentifier", "ImagePositionPatient", "InstanceNumber", "TriggerTime",
             "AcquisitionTime", "ContentTime")
_WANTED = frozenset(tag_for_keyword(k) for k in _KEYWORDS)
POSITION, INSTANCE = tag_for_keyword("ImagePositionPatient"), tag_for_keyword("InstanceNumber")
#: times that may change file by file (slice by slice, time point by time point): parsed per file
#: (formats.dicom.temporal), not part of the key, or no two files of a dynamic series would share it
TIMES = tuple(tag_for_keyword(k) for k in ("TriggerTime", "AcquisitionTime", "ContentTime"))
_PER_FILE = frozenset((POSITION, INSTANCE) + TIMES)
_SERIES_UID = tag_for_keyword("SeriesInstanceUID")
#: frames described per frame: left to the full reader
_LEAVE = frozenset(tag_for_keyword(k) for k in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"))

_TS = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}  # native little endian -> implicit VR
_VRS = {v.encode(default_encoding): str(v) for v in VR}
_LONG = {v.encode(default_encoding) for v in EXPLICIT_VR_LENGTH_32}
_PIXEL, _STOP = 0x7FE00010, frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_EXPLICIT, _IMPLICIT = Struct("<HH2sH").unpack_from, Struct("<HHL").unpack_from
_LENGTH = Struct("<L").unpack_from
_FIRST_READ, _MAX_HEADER = 32 << 10, 4 << 20
_MAX_DEPTH = 16  # sequences nested deeper are left to pydicom
_DS = re.compile(rb" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})? *")
_IS = re.compile(rb" *[+-]?\d{1,9} *")


class _Short(Exception):
    """The header goes on past the bytes read so far."""


class _Odd(Exception):
    """Something this walk leaves to pydicom."""


@dataclass
class QuickHeader:
    #: tag -> (VR or None when implicit, length, raw value, where the value starts)
    elements: dict[int, tuple]
    implicit: bool
    location: PixelLocation
    extent: PixelExtent
    #: the raw bytes of every wanted attribute except the per-file position and instance number
    key: tuple

    def dataset(self) -> pydicom.Dataset:
        """The shared attributes as a pydicom Dataset (converted by pydicom when read)."""
        ds = pydicom.Dataset({BaseTag(t): RawDataElement(BaseTag(t), vr, n, value, at, self.implicit, True)
                              for t, (vr, n, value, at) in self.elements.items() if t not in (POSITION, INSTANCE)})
        charset = self.elements.get(0x00080005)
        encoding = convert_encodings(convert_string(charset[2] or b"", True)) if charset else default_encoding
        ds.set_original_encoding(self.implicit, True, encoding)
        return ds

    def position(self) -> Optional[list[float]]:
        """ImagePositionPatient as three finite numbers within the checks' limit, [] when absent (what
        pydicom makes of it is then None), None when pydicom should judge it."""
        elem = self.elements.get(POSITION)
        if elem is None:
            return []
        if elem[0] not in (None, "DS"):
            return None
        parts = (elem[2] or b"").split(b"\\")
        if len(parts) != 3 or not all(_DS.fullmatch(p) for p in parts):
            return None
        values = [float(p) for p in parts]
        return values if all(abs(v) <= POSITION_LIMIT for v in values) else None

    def time_texts(self) -> tuple:
        """The raw TriggerTime, AcquisitionTime and ContentTime values (None where absent or of
        another VR), for formats.dicom.temporal to parse."""
        out = []
        for tag, vr in zip(TIMES, ("DS", "TM", "TM")):
            elem = self.elements.get(tag)
            out.append(elem[2] if elem is not None and elem[0] in (None, vr) and elem[2] else None)
        return tuple(out)

    def instance(self) -> Optional[int]:
        """InstanceNumber (0 when absent or empty), None when pydicom should judge it."""
        elem = self.elements.get(INSTANCE)
        if elem is not None and elem[0] not in (None, "IS"):
            return None
        value = (elem[2] or b"").strip(b" ") if elem is not None else b""
        if not value:
            return 0
        return int(value) if _IS.fullmatch(value) else None


def read(path: Path) -> Optional[QuickHeader]:
    """The quick header of ``path``, or None when the file needs the full reader."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fp:
            buf = fp.read(_FIRST_READ)
            while True:
                try:
                    return _parse(buf, size)
                except _Short:
                    if len(buf) >= min(size, _MAX_HEADER):
                        return None
                    buf += fp.read(len(buf))
    except (_Odd, OSError, ValueError, OverflowError, struct.error):
        return None


def _parse(buf: bytes, size: int) -> QuickHeader:
    if buf[128:132] != b"DICM":
        raise _Short if len(buf) < 132 else _Odd
    pos, meta = 132, {}
    while True:
        if pos + 8 > len(buf):
            raise _Short
        if unpack_from("<H", buf, pos)[0] != 2:
            break
        tag, _, length, at = _element(buf, pos, False)
        if length == _UNDEFINED:
            raise _Odd
        pos = at + length
        meta[tag] = buf[at:pos]
    implicit = _TS.get(meta.get(0x00020010, b"").rstrip(b"\0 ").decode("ascii", "replace"))
    if implicit is None:
        raise _Odd
    first_vr = buf[pos + 4:pos + 6]
    if (not (0x40 < first_vr[0] < 0x5B and 0x40 < first_vr[1] < 0x5B)) != implicit:
        raise _Odd  # the data set is not encoded as the meta says: pydicom decides
    found, key = {}, [implicit]
    end = len(buf)
    while True:  # the top level, inline: it runs for every element of every file
        if pos + 8 > end:
            raise _Short
        at = pos + 8
        if implicit:
            group, elem, length = _IMPLICIT(buf, pos)
            vr = None
        else:
            group, elem, raw, length = _EXPLICIT(buf, pos)
            vr = _VRS.get(raw)
            if vr is None:
                raise _Odd
            if raw in _LONG:
                if pos + 12 > end:
                    raise _Short
                length, at = _LENGTH(buf, at)[0], pos + 12
        tag = group << 16 | elem
        if tag in _STOP:
            if tag != _PIXEL or length == _UNDEFINED:
                raise _Odd
            uid = found.get(_SERIES_UID)
            if uid is None or not uid[2].strip(b"\0 "):
                raise _Odd  # each such file is a series of its own, named by its path
            available = max(min(length, size - at), 0)
            return QuickHeader(found, implicit, PixelLocation(at, available), PixelExtent(length, available),
                               tuple(key))
        if tag < 0x00080000 or tag > _PIXEL or tag in _LEAVE:
            raise _Odd
        if tag in _WANTED:
            if length == _UNDEFINED or tag in found:
                raise _Odd
            if at + length > end:
                raise _Short
            value = buf[at:at + length] if length else empty_value_for_VR(vr, raw=True)
            found[tag] = (vr, length, value, at)
            if tag not in _PER_FILE:
                key.append((tag, vr, value))
        pos = at + length if length != _UNDEFINED else _skip(buf, vr, length, at, implicit)


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, Optional[str], int, int]:
    """(tag, VR or None, length, where its value starts) of the element at ``pos``."""
    if pos + 8 > len(buf):
        raise _Short
    group, elem = unpack_from("<HH", buf, pos)
    if implicit or group == 0xFFFE:  # items and delimiters carry no VR
        return group << 16 | elem, None, unpack_from("<L", buf, pos + 4)[0], pos + 8
    raw = buf[pos + 4:pos + 6]
    vr = _VRS.get(raw)
    if vr is None:
        raise _Odd
    if raw in _LONG:
        if pos + 12 > len(buf):
            raise _Short
        return group << 16 | elem, vr, unpack_from("<L", buf, pos + 8)[0], pos + 12
    return group << 16 | elem, vr, unpack_from("<H", buf, pos + 6)[0], pos + 8


def _skip(buf: bytes, vr: Optional[str], length: int, at: int, implicit: bool, depth: int = 0) -> int:
    """Where the element whose value starts at ``at`` ends; sequences of undefined length are walked."""
    if length != _UNDEFINED:
        return at + length
    if vr not in ("SQ", None) or depth > _MAX_DEPTH:  # UN of undefined length holds implicit VR data
        raise _Odd
    while True:
        tag, _, length, at = _element(buf, at, True)
        if tag == _SEQ_END:
            return at
        if tag != _ITEM:
            raise _Odd
        if length != _UNDEFINED:
            at += length
            continue
        while True:  # an item of undefined length: its elements up to the item delimiter
            tag, vr, length, at = _element(buf, at, implicit)
            if tag == _ITEM_END:
                break
            at = _skip(buf, vr, length, at, implicit, depth + 1)
