"""Time points of a 4D NIfTI read one at a time (core.time_series). The header was checked when the
first time point was opened (in the decoding child: sizes, that the file holds every declared byte,
the rescale); this reads one volume's bytes at a known offset. A plain .nii seeks straight to it; a
.nii.gz keeps one ISA-L gzip stream open, so playing forward inflates each volume once (nibabel's
dataobj slicing, without indexed_gzip, inflates from the start of the file on every slice)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from isal import igzip
import numpy as np

from core.errors import FormatError
from core.time_series import TimeSeries


class NiftiTimeSeries(TimeSeries):
    def __init__(self, path: str | Path, offset: int, shape_zyx: tuple, dtype: str, count: int,
                 slope: float = 1.0, inter: float = 0.0, frame_time_ms: Optional[float] = None) -> None:
        super().__init__(count, frame_time_ms)
        self.path = str(Path(path).absolute())
        self.offset, self.shape, self.dtype = int(offset), tuple(int(s) for s in shape_zyx), np.dtype(dtype)
        self.slope, self.inter = float(slope), float(inter)
        self.gz = self.path.lower().endswith(".gz")
        self.reads: list[int] = []  # time points read from the file, in order (tests, benches)
        self._stream = None

    @property
    def volume_bytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getstate__(self) -> dict:  # crosses from the decoding child without an open file
        return {**self.__dict__, "_stream": None}

    def _read(self, k: int) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        start = self.offset + k * self.volume_bytes
        try:
            got = self._read_gz(start, buf) if self.gz else self._read_plain(start, buf)
        except (OSError, EOFError, ValueError) as exc:
            self.close()
            raise FormatError(self.path, f"time point {k + 1} cannot be read ({exc})") from None
        if got < len(buf):
            raise FormatError(self.path, f"time point {k + 1} ends after {got} of {len(buf)} bytes: truncated")
        self.reads.append(k)
        if not self.dtype.isnative:
            out = out.byteswap(inplace=True).view(self.dtype.newbyteorder("="))
        if self.slope != 1 or self.inter != 0:  # as the first time point was scaled (formats.nifti)
            scaled = np.multiply(out, np.float32(self.slope), dtype=np.float32, casting="unsafe")
            scaled += np.float32(self.inter)
            return scaled
        return out

    def _read_plain(self, start: int, buf: memoryview) -> int:
        with open(self.path, "rb") as fh:
            fh.seek(start)
            return _fill(fh, buf)

    def _read_gz(self, start: int, buf: memoryview) -> int:
        if self._stream is None or self._stream.tell() > start:  # backwards: inflate again from the start
            self.close()
            self._stream = igzip.open(self.path, "rb")
        self._stream.seek(start)  # forwards: inflates only what lies between
        return _fill(self._stream, buf)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _fill(fh, buf: memoryview) -> int:
    got = 0
    while got < len(buf):
        n = fh.readinto(buf[got:])
        if not n:
            break
        got += n
    return got
