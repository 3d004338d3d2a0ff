#!/usr/bin/env python3
"""DICOM SEG export of a 512x512x300 CT with 5 segments: time and file size, ours vs highdicom's
plain defaults (numpy one-hot segments, frames matched to the source images, no workers),
measured in the same run. Also RTSTRUCT and the STL surfaces of the same segments."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def phantom_labels(shape) -> np.ndarray:
    """Five organ-sized ellipsoids (~2-600 ml at 0.7 x 0.7 x 1.5 mm)."""
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    lab = np.zeros(shape, np.uint8)
    for v, (cz, cy, cx, rz, ry, rx) in enumerate([(150, 250, 180, 60, 90, 80), (150, 260, 340, 50, 60, 50),
                                                  (200, 330, 200, 25, 30, 30), (200, 330, 320, 25, 30, 30),
                                                  (120, 200, 256, 6, 8, 8)], start=1):
        lab[((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1] = v
    return lab


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    import highdicom as hd
    import pydicom

    from core.labels import LabelMap, LabelTable
    from core.volume import Volume
    from export.case import ExportRequest, export
    from formats.dicom.rtstruct import write_rtstruct
    from formats.dicom.seg import JPEG2000_LOSSLESS, read_seg, write_seg
    from formats.dicom.write import write_series
    from formats.io import read_image

    shape = (300, 512, 512)
    tmp = Path(tempfile.mkdtemp(prefix="delineate-bench-export-"))
    rng = np.random.default_rng(0)
    arr = rng.integers(-100, 100, shape, dtype=np.int16)
    write_series(Volume.from_array(arr, spacing=(0.7, 0.7, 1.5), modality="CT"), tmp / "ct")
    vol = read_image(tmp / "ct")
    files = sorted((tmp / "ct").iterdir())
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    by_uid = {s.SOPInstanceUID: s for s in sources}
    ordered = [by_uid[pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID] for f in files]
    lab = phantom_labels(shape)
    lm = LabelMap(lab, vol.geometry, LabelTable.from_names(["liver", "spleen", "kidney R", "kidney L", "lesion"]))
    print(f"CT {shape[2]}x{shape[1]}x{shape[0]}, 5 segments, {np.count_nonzero(lab) / lab.size * 100:.1f} % labelled")

    def plain():
        onehot = np.stack([lab == v for v in range(1, 6)], axis=-1).astype(np.uint8)
        descs = [hd.seg.SegmentDescription(v, f"s{v}", hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
                                           hd.sr.CodedConcept("85756007", "SCT", "Tissue"), "MANUAL")
                 for v in range(1, 6)]
        seg = hd.seg.Segmentation(ordered, onehot, "BINARY", descs, hd.UID(), 1, hd.UID(), 1, "x", "x", "1", "1")
        seg.save_as(tmp / "plain.dcm")

    base_t, _ = timed(plain)
    base_size = (tmp / "plain.dcm").stat().st_size
    print(f"highdicom plain defaults     {base_t:7.2f} s = 1.00x   {base_size / 2**20:7.1f} MiB = 1.00x")
    for name, kw in (("ours (label-map input)", {}),
                     ("ours, --compress (JPEG 2000)", {"transfer_syntax": JPEG2000_LOSSLESS})):
        t, path = timed(lambda kw=kw: write_seg(lm, sources, tmp / "ours.dcm", **kw))
        size = path.stat().st_size
        print(f"{name:28s} {t:7.2f} s = {t / base_t:4.2f}x   {size / 2**20:7.1f} MiB = {size / base_size:4.2f}x")
    t, back = timed(lambda: read_seg(tmp / "ours.dcm", vol.geometry))
    print(f"read back onto the CT grid   {t:7.2f} s   exact: {np.array_equal(back.array, lab)}")
    t, path = timed(lambda: write_rtstruct(lm, sources, tmp / "rt.dcm"))
    print(f"RTSTRUCT                     {t:7.2f} s = {t / base_t:4.2f}x   {path.stat().st_size / 2**20:7.1f} MiB")
    t, written = timed(lambda: export(ExportRequest("stl", vol, lm, tmp / "stl")))
    print(f"STL surfaces (5, full res)   {t:7.2f} s = {t / base_t:4.2f}x   "
          f"{sum(p.stat().st_size for p in written) / 2**20:7.1f} MiB")


if __name__ == "__main__":
    main()
