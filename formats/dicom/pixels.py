"""Fetch frame pixels: a direct read of native little-endian data, else pydicom's decoders."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import JPEG2000TransferSyntaxes

from core.errors import FormatError, TooLargeError
from formats.dicom.deflated import inflate, is_deflated
from formats.dicom.frames import FrameRef, pixel_extent
from formats.dicom.pixel_format import PixelFormat
from formats.dicom.validate import check_j2k_frames
from formats.limits import check_file_holds

#: native frames are read this many bytes at a time, so a huge frame is never held twice
BLOCK_BYTES = 2 << 20


class PixelSource:
    """Reads frames from files; decoded multi-frame files are cached (thread-safe)."""

    def __init__(self) -> None:
        self._decoded: dict[Path, np.ndarray] = {}
        self._inflated: dict[Path, tuple] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Drop the inflated copies of deflated files (temporary files once large)."""
        with self._lock:
            for fh, _ in self._inflated.values():
                fh.close()
            self._inflated.clear()

    def frame(self, ref: FrameRef) -> np.ndarray:
        fmt = ref.format
        index = ref.frame or 0
        if ref.deflated and fmt.direct_ok(True):
            return self._inflated_frame(ref, fmt, index)
        if fmt.direct_ok(ref.location is not None):
            check_file_holds(ref.path, fmt.stored_bytes, ref.location.length)
            arr = np.fromfile(ref.path, dtype=fmt.native_dtype, count=fmt.rows * fmt.cols * fmt.spp,
                              offset=ref.location.offset + index * fmt.frame_bytes)
            return _shaped(arr, fmt)
        return self._decoded_frame(ref, fmt, index)

    def blocks(self, ref: FrameRef, whole: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """The frame as (first row, rows) blocks: native data is read straight from the file (or the
        inflated copy) at most BLOCK_BYTES at a time, so the caller can rescale each into its
        output and a 1 GB frame costs 1 GB, not three; decoded data and ``whole`` come in one block."""
        fmt = ref.format
        direct = fmt.direct_ok(True) if ref.deflated else fmt.direct_ok(ref.location is not None)
        if whole or not direct:
            yield 0, self.frame(ref)
            return
        index = ref.frame or 0
        row_bytes = fmt.frame_bytes // fmt.rows
        step = max(1, BLOCK_BYTES // max(row_bytes, 1))
        if not ref.deflated:
            check_file_holds(ref.path, fmt.stored_bytes, ref.location.length)
        for r0 in range(0, fmt.rows, step):
            n = min(step, fmt.rows - r0)
            at = index * fmt.frame_bytes + r0 * row_bytes
            if ref.deflated:
                arr = self._inflated_bytes(ref, fmt, at, n * row_bytes)
            else:
                arr = np.fromfile(ref.path, dtype=fmt.native_dtype, count=n * fmt.cols * fmt.spp,
                                  offset=ref.location.offset + at)
            yield r0, _shaped(arr, fmt, n)

    def _inflated_frame(self, ref: FrameRef, fmt: PixelFormat, index: int) -> np.ndarray:
        """A frame read from the file's inflated copy: never the whole pixel data in memory at once."""
        return _shaped(self._inflated_bytes(ref, fmt, index * fmt.frame_bytes, fmt.frame_bytes), fmt)

    def _inflated_bytes(self, ref: FrameRef, fmt: PixelFormat, at: int, size: int) -> np.ndarray:
        with self._lock:
            if ref.path not in self._inflated:
                inflated = inflate(ref.path)
                ds = pydicom.dcmread(inflated.file, stop_before_pixels=True)
                _, loc = pixel_extent(inflated.file, ds, inflated.data_offset + inflated.size)
                if loc is None:
                    raise FormatError(ref.path, "the inflated data set holds no pixel data")
                check_file_holds(ref.path, fmt.stored_bytes, loc.length)
                self._inflated[ref.path] = (inflated.file, loc)
            fh, loc = self._inflated[ref.path]
            fh.seek(loc.offset + at)
            data = fh.read(size)
        return np.frombuffer(data, dtype=fmt.native_dtype).copy()

    def _decoded_frame(self, ref: FrameRef, fmt: PixelFormat, index: int) -> np.ndarray:
        with self._lock:
            arr = self._decoded.get(ref.path)
            if arr is None:
                arr = self._decode(ref.path, fmt)
                _check_shape(ref.path, arr, fmt)
                if fmt.frames > 1:
                    self._decoded[ref.path] = arr
        return arr[index] if fmt.frames > 1 else arr

    @staticmethod
    def _decode(path: Path, fmt: PixelFormat) -> np.ndarray:
        try:
            ds = _read(path)
            if "TransferSyntaxUID" not in ds.file_meta:
                implicit, little = ds.original_encoding
                ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                                  pydicom.uid.ExplicitVRLittleEndian if little else
                                                  pydicom.uid.ExplicitVRBigEndian)
            if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
                raise FormatError(path, "header describes an image but the file has no pixel data")
            data = ds.PixelData if "PixelData" in ds else None
            if data is not None and not ds.file_meta.TransferSyntaxUID.is_compressed:
                check_file_holds(path, fmt.stored_bytes, len(data))
            if ds.file_meta.TransferSyntaxUID in JPEG2000TransferSyntaxes and data is not None:
                check_j2k_frames(path, fmt, generate_frames(data, number_of_frames=fmt.frames))
            arr = _pixel_array(ds)
            if fmt.photometric == "PALETTE COLOR":
                arr = pydicom.pixels.apply_color_lut(arr, ds)
                if arr.dtype != np.uint8:
                    arr = (arr >> 8).astype(np.uint8)
            return arr
        except (FormatError, TooLargeError):
            raise
        except MemoryError:
            raise TooLargeError(path, "decoding the pixel data needs more memory than is available") from None
        except Exception as exc:  # pydicom's decoders raise many types on corrupt or unsupported data
            ts = ""
            try:
                ts = f" ({pydicom.filereader.read_file_meta_info(path).TransferSyntaxUID.name})"
            except Exception:
                pass
            raise FormatError(path, f"pixel data cannot be decoded{ts}: {type(exc).__name__}: {exc}") from None


def _check_shape(path: Path, arr: np.ndarray, fmt: PixelFormat) -> None:
    """The decoded array must be what the header said, or frames would be cut or mixed."""
    channels = 3 if fmt.photometric == "PALETTE COLOR" else fmt.spp
    want = ((fmt.frames,) if fmt.frames > 1 else ()) + (fmt.rows, fmt.cols) + ((channels,) if channels > 1 else ())
    if arr.shape != want:
        raise FormatError(path, f"decoded pixel data is {'x'.join(map(str, arr.shape))} but the header says "
                                f"{'x'.join(map(str, want))} (NumberOfFrames, Rows, Columns, SamplesPerPixel); refused")


def _shaped(arr: np.ndarray, fmt: PixelFormat, rows: int | None = None) -> np.ndarray:
    if fmt.stored < fmt.bits:
        arr &= (1 << fmt.stored) - 1
    return arr.reshape((fmt.rows if rows is None else rows, fmt.cols) + ((fmt.spp,) if fmt.spp > 1 else ()))


def _read(path: Path) -> pydicom.Dataset:
    with open(path, "rb") as fp:
        if is_deflated(fp):
            return pydicom.dcmread(inflate(path).file)
    return pydicom.dcmread(path, force=True)


def _pixel_array(ds: pydicom.Dataset) -> np.ndarray:
    """Decode with the plugins that fail with an exception; GDCM only where nothing else can, as it
    aborts the process on data its checks reject (a JPEG 2000 stream whose components disagree with
    the header, a corrupt JPEG)."""
    ts = ds.file_meta.TransferSyntaxUID
    if not ts.is_compressed:
        return ds.pixel_array
    available = list(get_decoder(ts).available_plugins)
    plugins = [p for p in available if p != "gdcm"] or available
    if not plugins:
        return ds.pixel_array  # pydicom says which package would decode it
    failures = []
    for plugin in plugins:
        try:
            ds.pixel_array_options(decoding_plugin=plugin)
            return ds.pixel_array
        except MemoryError:
            raise
        except Exception as exc:
            failures.append(f"{plugin}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise ValueError("; ".join(failures))
