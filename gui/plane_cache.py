"""Sagittal planes of z-major volumes, gathered a few at a time.

A sagittal plane of a (z, y, x) array takes one element from every row, each in a different cache
line: the gather is bound by cache misses (~1.5 ms for 300x512 int16 here), three times over for
image, labels and heat map. The cache lines it misses also hold the neighbouring planes, so one
pass copies a block of ``WIDTH`` adjacent planes for about the cost of one; scrolling or dragging
the crosshair to a neighbouring plane then reads the small block (~0.2 ms) instead of the volume.
A copy of the volume in x-major order would make every plane cheap but cost as much memory as the
volume; the blocks cost ``WIDTH`` planes per array (2.3 MiB for a 300x512 int16 image). Blocks of
8 planes cost no more to gather than blocks of 4 (~2 ms an array here: 16 bytes of each 64-byte
line instead of 8) and halve a drag's gathers: crosshair move 2.79x -> 2.67x the bare redraw in
the viewer bench (medians of 3 runs in turns), for 2.3 MiB more than 4 (0.016x the volume; peak
memory with the 3D view stays 2.77-2.80x, within its 3x). 4 were kept while that figure had no room.

A block is kept plane by plane ((width, nz, ny)), so each plane served is contiguous: colouring a
plane strided through the interleaved block cost ~0.1 ms more a sagittal step (NumPy's casts and
lookups run their strided loops). The gather still reads each row's planes as one wide element,
a few slices at a time into a small scratch block, and spreads them into the planes from there
(as fast as gathering into the interleaved block: the scratch stays in the cache).
"""
from __future__ import annotations

import weakref
from typing import Optional

import numpy as np

WIDTH = 8  # planes per block: 8 int16 planes are 16 bytes of each row, within one cache line
CHUNK = 16  # slices gathered into the scratch block at a time (16 x 512 rows x 8 bytes: 64 KiB)


class PlaneBlocks:
    """Planes ``array[:, :, i]`` of named arrays, served from the last gathered block of each."""

    def __init__(self, width: int = WIDTH) -> None:
        self.width = width
        # name -> (weak reference to the array, first plane, block (width, nz, ny)): a replaced array
        # is neither served nor kept alive
        self._blocks: dict[str, tuple] = {}
        self._scratch: dict[tuple, np.ndarray] = {}  # (dtype, ny) -> (CHUNK, ny, width) rows being gathered

    def plane(self, name: str, array: np.ndarray, index: int) -> np.ndarray:
        """``array[:, :, index]`` (equal values; a view into the block when it comes from one)."""
        w = self.width
        start = index - index % w
        if array.ndim != 3 or array.strides[2] != array.itemsize or start + w > array.shape[2]:
            return array[:, :, index]  # a flipped x axis or the last, partial block: gathered directly
        cached = self._blocks.get(name)
        same = cached is not None and cached[0]() is array
        if not same or cached[1] != start:
            block = self._gather(array, start, cached[2] if same else None)
            cached = self._blocks[name] = (weakref.ref(array), start, block)
        return cached[2][index - start]

    def _gather(self, array: np.ndarray, start: int, block: Optional[np.ndarray]) -> np.ndarray:
        w, (nz, ny) = self.width, array.shape[:2]
        if block is None:
            block = np.empty((w, nz, ny), array.dtype)
        # each row's planes as one wide element (a single strided copy of whole chunks), CHUNK
        # slices at a time, then spread into the planes while still in the cache
        wide = np.dtype(f"V{w * array.itemsize}")
        scratch = self._scratch.get((array.dtype, ny))
        if scratch is None or scratch.shape[2] != w:
            scratch = self._scratch[(array.dtype, ny)] = np.empty((CHUNK, ny, w), array.dtype)
        for z in range(0, nz, CHUNK):
            n = min(CHUNK, nz - z)
            np.copyto(scratch[:n].view(wide)[:, :, 0], array[z:z + n, :, start:start + w].view(wide)[:, :, 0])
            np.copyto(block[:, z:z + n], scratch[:n].transpose(2, 0, 1))
        return block

    def forget(self, prefix: str = "") -> None:
        """Drop the blocks whose names start with ``prefix`` (their arrays were edited in place or
        replaced); every block by default."""
        for name in [n for n in self._blocks if n.startswith(prefix)]:
            del self._blocks[name]
