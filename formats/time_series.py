"""Time points of a 4D NIfTI read one at a time (core.time_series). The header was checked when the
first time point was opened (in the decoding child: sizes, that the file holds every declared byte,
the rescale); this reads one volume's bytes at a known offset. A plain .nii seeks straight to it. A
.nii.gz cannot seek: its stream is inflated forwards once, remembering zlib's state at time-point
boundaries on the way (a zran-style index), so a later step back or a jump along the slider inflates
from the nearest remembered boundary, not from the start of the file (nibabel's dataobj slicing,
without indexed_gzip, inflates from the start on every slice).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import zlib

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
        except (OSError, EOFError, ValueError, zlib.error) as exc:
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
        if self._stream is None:
            self._stream = _IndexedGzip(self.path, self.offset, self.volume_bytes, self.count)
        return self._stream.read(start, buf)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class _IndexedGzip:
    """A gzip stream read at volume boundaries; zlib's inflater copied at up to MAX_MARKS of them."""

    MAX_MARKS = 64  # at most ~64 x (32 KiB window + CHUNK of input) remembered
    CHUNK = 64 << 10

    def __init__(self, path: str, offset: int, step: int, count: int) -> None:
        self.fh = open(path, "rb")
        every = max(1, -(-count // self.MAX_MARKS))
        self.wanted = {offset + k * step for k in range(every, count, every)}
        self.marks: dict[int, tuple] = {}  # stream position -> (file position, inflater, input pending)
        self.inflated = 0  # bytes inflated in all (tests: a step back costs one volume, not k)
        self._restart(0, (0, None, b""))

    def _restart(self, pos: int, mark: tuple) -> None:
        fpos, inflate, pending = mark
        self.fh.seek(fpos)
        self.inflate = inflate.copy() if inflate is not None else zlib.decompressobj(47)
        self.pending, self.pos = pending, pos

    def read(self, start: int, buf: memoryview) -> int:
        best = max((p for p in self.marks if p <= start), default=0)
        if self.pos > start or best > self.pos:
            self._restart(best, self.marks[best] if best else (0, None, b""))
        if self._produce(None, start - self.pos) < start - self.pos:
            return 0
        return self._produce(buf, len(buf))

    def _produce(self, out: memoryview | None, n: int) -> int:
        """Inflate ``n`` bytes into ``out`` (or drop them), marking wanted boundaries on the way."""
        got, ended = 0, False
        while got < n:
            if self.pos in self.wanted and self.pos not in self.marks:
                self.marks[self.pos] = (self.fh.tell(), self.inflate.copy(), self.pending)
            if not self.pending and not ended:
                self.pending = self.fh.read(self.CHUNK)
                ended = not self.pending
            after = min((p for p in self.wanted if p > self.pos), default=self.pos + n)  # stop at the next mark
            data = self.inflate.decompress(self.pending, min(n - got, after - self.pos, 8 << 20))
            self.pending = self.inflate.unconsumed_tail
            if self.inflate.eof:  # a multi-member gzip: the next member starts in what is left
                self.pending = self.inflate.unused_data + self.pending
                self.inflate = zlib.decompressobj(47)
            if not data and ended and not self.pending:
                break
            if out is not None:
                out[got:got + len(data)] = data
            got += len(data)
            self.pos += len(data)
            self.inflated += len(data)
        return got

    def close(self) -> None:
        self.fh.close()


def _fill(fh, buf: memoryview) -> int:
    got = 0
    while got < len(buf):
        n = fh.readinto(buf[got:])
        if not n:
            break
        got += n
    return got
