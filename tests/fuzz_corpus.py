"""A seeded mutation corpus of hostile images, written in code at test time (nothing committed).

Seeds: small DICOM files from pydicom's test data (CT, MR, US RGB, multi-frame MR, JPEG 2000,
deflated), and NIfTI, NRRD and MetaImage files built here. Mutants: byte flips, truncations,
huge or nonsense header fields, decompression bombs and detached-file traversal, plus folders
that hide a bad file among good slices. ``REGRESSIONS`` holds every file that once crashed a
reader natively; they are always in the corpus.
"""
from __future__ import annotations

import gzip
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pydicom
from pydicom.data import get_testdata_file


@dataclass
class Case:
    name: str
    path: Path
    origin: str  # the seed and the mutation, for the report


DICOM_SEEDS = {
    "ct": "CT_small.dcm",
    "mr": "MR_small.dcm",
    "us_rgb": "US1_UNCR.dcm",
    "mf_mr": "emri_small.dcm",
    "j2k_mr": "MR_small_jp2klossless.dcm",
    "deflated": "image_dfl.dcm",
}


# ---------------------------------------------------------------- seeds written here

def _grid(shape=(6, 8, 10), dtype=np.int16) -> np.ndarray:
    z, y, x = np.indices(shape)
    return ((x * 7 + y * 3 + z * 11) % 200 - 50).astype(dtype)


def _nifti_bytes(data_xyz: np.ndarray, mutate: Callable | None = None) -> bytes:
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(data_xyz.shape)
    hdr.set_data_dtype(data_xyz.dtype)
    hdr.set_sform(np.diag([-0.8, -0.8, 1.5, 1.0]), code=1)
    hdr.set_qform(np.diag([-0.8, -0.8, 1.5, 1.0]), code=1)
    hdr["vox_offset"] = 352
    hdr["magic"] = b"n+1"
    if mutate is not None:
        mutate(hdr)
    return hdr.binaryblock + b"\x00" * 4 + data_xyz.tobytes(order="F")


def _meta_header(fields: dict[str, str]) -> bytes:
    return "".join(f"{k} = {v}\n" for k, v in fields.items()).encode("latin-1")


_META = {"ObjectType": "Image", "NDims": "3", "BinaryData": "True", "BinaryDataByteOrderMSB": "False",
         "CompressedData": "False", "TransformMatrix": "1 0 0 0 1 0 0 0 1", "Offset": "-10 -20 30",
         "ElementSpacing": "0.9 0.9 2", "DimSize": "10 8 6", "ElementType": "MET_SHORT",
         "ElementDataFile": "LOCAL"}
_NRRD = {"type": "short", "dimension": "3", "space": "left-posterior-superior", "sizes": "10 8 6",
         "space directions": "(0.9,0,0) (0,0.9,0) (0,0,2)", "endian": "little", "encoding": "raw",
         "space origin": "(-10,-20,30)"}


def _nrrd_header(fields: dict[str, str]) -> bytes:
    return ("NRRD0004\n" + "".join(f"{k}: {v}\n" for k, v in fields.items()) + "\n").encode("latin-1")


def write_meta(folder: Path, name: str, fields: dict | None = None, data: bytes | None = None,
               compressed: bool = False, detached: bool = False) -> Path:
    f = {k: v for k, v in _META.items() if k != "ElementDataFile"}
    f.update(fields or {})
    raw = _grid().tobytes() if data is None else data
    if compressed:
        f["CompressedData"] = "True"
        raw = zlib.compress(raw)
        f.setdefault("CompressedDataSize", str(len(raw)))
    datafile = f.pop("ElementDataFile", name + ".raw" if detached else "LOCAL")
    f["ElementDataFile"] = datafile  # MetaIO reads data right after this last field
    return _write(folder, name, _meta_header(f), raw, ".mhd" if detached else ".mha", detached)


def write_nrrd(folder: Path, name: str, fields: dict | None = None, data: bytes | None = None,
               gz: bool = False, detached: bool = False) -> Path:
    f = dict(_NRRD, **(fields or {}))
    raw = _grid().tobytes() if data is None else data
    if gz:
        f["encoding"] = "gzip"
        raw = gzip.compress(raw)
    if detached:
        f.setdefault("data file", name + ".raw")
    return _write(folder, name, _nrrd_header(f), raw, ".nhdr" if detached else ".nrrd", detached)


def _write(folder: Path, name: str, header: bytes, raw: bytes, suffix: str, detached: bool) -> Path:
    """The header file, with the data after it or beside it in ``name``.raw."""
    if detached:
        (folder / (name + ".raw")).write_bytes(raw)
    p = folder / (name + suffix)
    p.write_bytes(header if detached else header + raw)
    return p


def write_nifti(folder: Path, name: str, mutate: Callable | None = None, gz: bool = False,
                data: np.ndarray | None = None) -> Path:
    blob = _nifti_bytes(_grid().transpose(2, 1, 0) if data is None else data, mutate)
    p = folder / (name + (".nii.gz" if gz else ".nii"))
    p.write_bytes(gzip.compress(blob, 1) if gz else blob)
    return p


def nifti_bomb(path: Path, declared_bytes: int) -> Path:
    """A .nii.gz of zeros declaring ``declared_bytes`` of int16: ~1/1000 of that on disk."""
    nz = max(1, declared_bytes // (512 * 512 * 2))
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((512, 512, nz))
    hdr.set_data_dtype(np.int16)
    hdr["vox_offset"] = 352
    hdr["magic"] = b"n+1"
    hdr.set_sform(np.eye(4), code=1)
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = bytes(512 * 512 * 2 * 16)
    with open(path, "wb") as fh:
        fh.write(deflate.compress(hdr.binaryblock + b"\x00" * 4))
        for k in range(0, nz, 16):
            fh.write(deflate.compress(zeros[: 512 * 512 * 2 * min(16, nz - k)]))
        fh.write(deflate.flush())
    return path


# ---------------------------------------------------------------- the files that once crashed

def _j2k_ybr(folder: Path, name: str, pi: str, spp: int) -> Path:
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.PhotometricInterpretation = pi
    ds.SamplesPerPixel = spp
    if spp == 3:
        ds.PlanarConfiguration = 0
    p = folder / f"{name}.dcm"
    ds.save_as(p)
    return p


def _ndims99(folder: Path, name: str, compressed: bool) -> Path:
    return write_meta(folder, name, {"NDims": "99"}, compressed=compressed)


#: name -> writer(folder) -> path: SIGABRT in GDCM (J2K with a YBR/RGB header over one component)
#: and ITK heap corruption (MetaImage NDims = 99) before the sandbox and header checks
REGRESSIONS: dict[str, Callable[[Path], Path]] = {
    "j2k_ybr_rct_1spp": lambda d: _j2k_ybr(d, "j2k_ybr_rct_1spp", "YBR_RCT", 1),
    "j2k_ybr_full_1spp": lambda d: _j2k_ybr(d, "j2k_ybr_full_1spp", "YBR_FULL", 1),
    "j2k_rgb_3spp": lambda d: _j2k_ybr(d, "j2k_rgb_3spp", "RGB", 3),
    "mha_ndims99_raw": lambda d: _ndims99(d, "mha_ndims99_raw", False),
    "mha_ndims99_zlib": lambda d: _ndims99(d, "mha_ndims99_zlib", True),
}


# ---------------------------------------------------------------- mutations

def _flip(data: bytes, rng: random.Random, header: int) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        span = header if rng.random() < 0.8 else len(b)
        b[rng.randrange(min(span, len(b)))] = rng.randrange(256)
    return bytes(b)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randint(0, max(1, len(data) - 1))]


def _dicom_fields() -> list[tuple[str, Callable]]:
    def setter(**kw):
        def f(ds):
            for k, v in kw.items():
                setattr(ds, k, v)
        return f

    def drop_pixels(ds):
        del ds.PixelData

    def short_pixels(ds):
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]

    return [
        ("frames_max", setter(NumberOfFrames=2147483647)),
        ("frames_big", setter(NumberOfFrames=100000)),
        ("rows_cols_max", setter(Rows=65535, Columns=65535)),
        ("bits_0", setter(BitsAllocated=0)),
        ("bits_3", setter(BitsAllocated=3, BitsStored=3, HighBit=2)),
        ("bits_64", setter(BitsAllocated=64, BitsStored=64, HighBit=63)),
        ("spp_0", setter(SamplesPerPixel=0)),
        ("spp_4", setter(SamplesPerPixel=4)),
        ("pi_ybr", setter(PhotometricInterpretation="YBR_FULL")),
        ("pi_palette", setter(PhotometricInterpretation="PALETTE COLOR")),
        ("spacing_huge", setter(PixelSpacing=["1e308", "1e308"])),
        ("spacing_zero", setter(PixelSpacing=["0", "0"])),
        ("spacing_nan", setter(PixelSpacing=["nan", "1"])),
        ("position_huge", setter(ImagePositionPatient=["1e308", "0", "0"])),
        ("orientation_nan", setter(ImageOrientationPatient=["nan", "0", "0", "0", "1", "0"])),
        ("orientation_zero", setter(ImageOrientationPatient=["0"] * 6)),
        ("slope_huge", setter(RescaleSlope="1e308")),
        ("slope_nan", setter(RescaleSlope="nan")),
        ("no_pixels", drop_pixels),
        ("short_pixels", short_pixels),
    ]


def _nifti_fields() -> list[tuple[str, Callable]]:
    def dim(values):
        def f(h):
            d = h["dim"].copy()
            for i, v in values.items():
                d[i] = v
            h["dim"] = d
        return f

    def field(name, value):
        def f(h):
            h[name] = value
        return f

    return [
        ("dim0_99", dim({0: 99})), ("dim0_0", dim({0: 0})), ("dim_huge", dim({1: 32767, 2: 32767, 3: 32767})),
        ("dim_negative", dim({1: -5})), ("dim_zero", dim({2: 0})), ("dim4_huge", dim({0: 4, 4: 32767})),
        ("datatype_bad", field("datatype", 999)), ("bitpix_bad", field("bitpix", 7)),
        ("vox_offset_huge", field("vox_offset", 1e9)), ("pixdim_nan", field("pixdim", [1, np.nan, 1, 1, 1, 1, 1, 1])),
        ("srow_huge", field("srow_x", [3e38, 0, 0, 0])), ("srow_nan", field("srow_y", [0, np.nan, 0, 0])),
        ("quatern_nan", lambda h: (h.set_sform(None, code=0), h.__setitem__("quatern_b", np.nan))),
        ("slope_inf", field("scl_slope", np.inf)), ("slope_huge", field("scl_slope", 3e38)),
        ("inter_nan", lambda h: (h.__setitem__("scl_slope", 2.0), h.__setitem__("scl_inter", np.nan))),
    ]


_META_FIELDS = [
    ("ndims_0", {"NDims": "0"}), ("ndims_neg", {"NDims": "-3"}), ("ndims_1e9", {"NDims": "1000000000"}),
    ("ndims_5", {"NDims": "5"}), ("dimsize_huge", {"DimSize": "100000 100000 100000"}),
    ("dimsize_neg", {"DimSize": "10 -8 6"}), ("dimsize_short", {"DimSize": "10 8"}),
    ("dimsize_text", {"DimSize": "ten eight six"}), ("type_bogus", {"ElementType": "MET_BOGUS"}),
    ("channels_huge", {"ElementNumberOfChannels": "100000"}), ("spacing_nan", {"ElementSpacing": "nan 1 1"}),
    ("spacing_huge", {"ElementSpacing": "1e308 1 1"}), ("spacing_zero", {"ElementSpacing": "0 1 1"}),
    ("offset_huge", {"Offset": "1e300 0 0"}), ("matrix_nan", {"TransformMatrix": "nan 0 0 0 1 0 0 0 1"}),
    ("matrix_short", {"TransformMatrix": "1 0 0"}), ("matrix_shear", {"TransformMatrix": "1 1 0 0 1 0 0 0 1"}),
    ("datafile_passwd", {"ElementDataFile": "../../../../etc/passwd"}),
    ("datafile_abs", {"ElementDataFile": "/etc/passwd"}),
    ("datafile_list", {"ElementDataFile": "LIST"}),
    ("datafile_pattern", {"ElementDataFile": "../../etc/x%03d.raw 1 3 1"}),
]

_NRRD_FIELDS = [
    ("dimension_99", {"dimension": "99"}), ("dimension_0", {"dimension": "0"}),
    ("sizes_huge", {"sizes": "100000 100000 100000"}), ("sizes_short", {"sizes": "10 8"}),
    ("sizes_neg", {"sizes": "10 -8 6"}), ("type_bogus", {"type": "quaternion"}),
    ("encoding_bogus", {"encoding": "lz77"}), ("endian_bogus", {"endian": "middle"}),
    ("directions_nan", {"space directions": "(nan,0,0) (0,1,0) (0,0,1)"}),
    ("directions_huge", {"space directions": "(1e308,0,0) (0,1,0) (0,0,1)"}),
    ("origin_huge", {"space origin": "(1e300,0,0)"}),
    ("datafile_passwd", {"data file": "../../../../etc/passwd", "encoding": "raw", "sizes": "8 8 8",
                         "type": "uchar"}),
    ("datafile_abs", {"data file": "/etc/passwd"}),
]


# ---------------------------------------------------------------- the corpus

def _dicom_seed_bytes(name: str) -> bytes:
    return Path(get_testdata_file(DICOM_SEEDS[name])).read_bytes()


def build(root: Path, seed: int = 14, flips: int = 7, cuts: int = 3) -> list[Case]:
    """Write the corpus under ``root``; every case in a folder of its own (detached pairs,
    traversal targets). Deterministic for a given ``seed``."""
    rng = random.Random(seed)
    cases: list[Case] = []
    n = 0

    def slot() -> Path:
        nonlocal n
        n += 1
        d = root / "a" / "b" / f"{n:04d}"
        d.mkdir(parents=True)
        return d

    def add_bytes(origin: str, filename: str, data: bytes) -> None:
        p = slot() / filename
        p.write_bytes(data)
        cases.append(Case(p.name, p, origin))

    for name, writer in REGRESSIONS.items():
        cases.append(Case(name, writer(slot()), f"regression {name}"))

    # DICOM: the seed, flips, cuts, then each header field attack
    fields = _dicom_fields()
    for key in DICOM_SEEDS:
        data = _dicom_seed_bytes(key)
        add_bytes(f"dicom {key} seed", f"{key}.dcm", data)
        for i in range(flips):
            add_bytes(f"dicom {key} flip", f"{key}_flip{i}.dcm", _flip(data, rng, 1024))
        for i in range(cuts):
            add_bytes(f"dicom {key} cut", f"{key}_cut{i}.dcm", _truncate(data, rng))
        for fname, fn in fields:
            if key == "deflated" and fname not in ("frames_max", "rows_cols_max", "short_pixels", "spacing_huge"):
                continue
            ds = pydicom.dcmread(get_testdata_file(DICOM_SEEDS[key]))
            try:
                fn(ds)
            except (AttributeError, TypeError, ValueError):
                continue
            p = slot() / f"{key}_{fname}.dcm"
            try:
                ds.save_as(p)
            except Exception:  # noqa: BLE001 - pydicom refuses to write some nonsense; not a case
                continue
            cases.append(Case(p.name, p, f"dicom {key} {fname}"))
    # a deflated file whose deflate stream is corrupt
    data = _dicom_seed_bytes("deflated")
    add_bytes("dicom deflated corrupt stream", "deflated_zcorrupt.dcm", data[:600] + bytes(rng.randrange(256) for _ in range(400)) + data[1000:])

    # NIfTI
    for gz in (False, True):
        ext = ".nii.gz" if gz else ".nii"
        p = write_nifti(slot(), "seed", gz=gz)
        cases.append(Case(p.name, p, f"nifti{ext} seed"))
        plain = _nifti_bytes(_grid().transpose(2, 1, 0))
        for i in range(flips):
            blob = _flip(plain, rng, 352)
            add_bytes(f"nifti{ext} flip", f"flip{i}{ext}", gzip.compress(blob, 1) if gz else blob)
        for i in range(cuts):
            blob = gzip.compress(plain, 1) if gz else plain
            add_bytes(f"nifti{ext} cut", f"cut{i}{ext}", _truncate(blob, rng))
        for fname, fn in _nifti_fields():
            p = write_nifti(slot(), fname, fn, gz=gz)
            cases.append(Case(p.name, p, f"nifti{ext} {fname}"))

    # MetaImage and NRRD: raw, compressed, detached
    for variant in ("raw", "zlib", "detached"):
        kw = {"compressed": variant == "zlib", "detached": variant == "detached"}
        p = write_meta(slot(), "seed", **kw)
        cases.append(Case(p.name, p, f"meta {variant} seed"))
        for i in range(flips):
            d = slot()
            p = write_meta(d, "m", **kw)
            if variant == "detached":
                p.write_bytes(_flip(p.read_bytes(), rng, 400))
            else:
                p.write_bytes(_flip(p.read_bytes(), rng, 300))
            cases.append(Case(p.name, p, f"meta {variant} flip"))
        for i in range(cuts):
            d = slot()
            p = write_meta(d, "m", **kw)
            p.write_bytes(_truncate(p.read_bytes(), rng))
            cases.append(Case(p.name, p, f"meta {variant} cut"))
        for fname, fields_ in _META_FIELDS:
            if fname.startswith("datafile") and variant == "zlib":
                continue
            p = write_meta(slot(), fname, fields_, **kw)
            cases.append(Case(p.name, p, f"meta {variant} {fname}"))
        p = write_nrrd(slot(), "seed", gz=variant == "zlib", detached=variant == "detached")
        cases.append(Case(p.name, p, f"nrrd {variant} seed"))
        for i in range(flips):
            p = write_nrrd(slot(), "n", gz=variant == "zlib", detached=variant == "detached")
            p.write_bytes(_flip(p.read_bytes(), rng, 250))
            cases.append(Case(p.name, p, f"nrrd {variant} flip"))
        for i in range(cuts):
            p = write_nrrd(slot(), "n", gz=variant == "zlib", detached=variant == "detached")
            p.write_bytes(_truncate(p.read_bytes(), rng))
            cases.append(Case(p.name, p, f"nrrd {variant} cut"))
        for fname, fields_ in _NRRD_FIELDS:
            p = write_nrrd(slot(), fname, dict(fields_), gz=variant == "zlib", detached=variant == "detached")
            cases.append(Case(p.name, p, f"nrrd {variant} {fname}"))
    # zlib bombs: declared sizes the budget allows, but the stream holds a little
    p = write_meta(slot(), "zbomb", {"DimSize": "512 512 400"}, data=bytes(4096), compressed=True)
    cases.append(Case(p.name, p, "meta zlib stream shorter than declared"))
    p = write_nrrd(slot(), "gzbomb", {"sizes": "512 512 400"}, data=bytes(4096), gz=True)
    cases.append(Case(p.name, p, "nrrd gzip stream shorter than declared"))

    # folders: good CT slices with one bad member
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    bad_members = {
        "truncated": lambda b: b[: len(b) // 2],
        "flipped": lambda b: _flip(b, rng, 1024),
        "header_only": None,
        "frames_max": "frames",
        "deflated_corrupt": "deflated",
        "j2k_ybr": "j2k",
    }
    for label, bad in bad_members.items():
        d = slot() / f"series_{label}"
        d.mkdir()
        uid = pydicom.uid.generate_uid()
        for k in range(4):
            ct.SOPInstanceUID = pydicom.uid.generate_uid()
            ct.SeriesInstanceUID = uid
            ct.InstanceNumber = k + 1
            ct.ImagePositionPatient = [0, 0, float(k * 5)]
            ct.save_as(d / f"IM{k:03d}.dcm")
        victim = d / "IM002.dcm"
        if callable(bad):
            victim.write_bytes(bad(victim.read_bytes()))
        elif bad is None:
            ds = pydicom.dcmread(victim)
            del ds.PixelData
            ds.save_as(victim)
        elif bad == "frames":
            ds = pydicom.dcmread(victim)
            ds.NumberOfFrames = 2147483647
            ds.save_as(victim)
        elif bad == "deflated":
            victim.unlink()
            data = _dicom_seed_bytes("deflated")
            (d / "zz.dcm").write_bytes(data[:700] + bytes(300) + data[1000:])
        else:
            victim.unlink()
            REGRESSIONS["j2k_ybr_rct_1spp"](d)
        cases.append(Case(d.name, d, f"folder CT + {label}"))
    junk = slot() / "junk_folder"
    junk.mkdir()
    (junk / "a.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 200)
    (junk / "b.txt").write_text("not an image")
    cases.append(Case(junk.name, junk, "folder of junk"))
    return cases
