"""NIfTI-1/2 (.nii, .nii.gz) with nibabel: RAS+ on disk, LPS in core; sform preferred, then qform."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from isal import igzip
import nibabel as nib
from nibabel.openers import ImageOpener
import numpy as np

from core.errors import FormatError
from core.geometry import Geometry
from core import time_series
from core.labels import LabelMap, LabelTable
from core.modality import modality_of
from core.volume import Volume
from formats import labeltable_io
from formats.atomic import atomic_output
from formats.sandbox import output_array
from formats.time_series import NiftiTimeSeries
from formats.limits import (check_allocation, check_file_holds, check_rescale, declared_bytes, gzip_isize,
                            read_into)

_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_EXT_PREFIX = labeltable_io.KEY + ":"



def _load_checked(path: Path):
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types on corrupt headers
        raise FormatError(path, f"not a readable NIfTI file ({exc})") from None
    hdr = img.header
    shape = hdr.get_data_shape()
    dtype = hdr.get_data_dtype()
    if len(shape) < 2:
        raise FormatError(path, f"NIfTI declares {len(shape)} dimension(s); an image needs at least 2")
    # a series over time holds one time point in memory (formats.time_series reads the others)
    held = shape[:3] if _time_points(img) > 1 else shape
    check_allocation(path, held, dtype if dtype.fields is None else np.uint8, "NIfTI image")
    declared = declared_bytes(shape, dtype) + int(hdr.get("vox_offset", 0))
    if str(path).endswith(".gz"):
        isize = gzip_isize(path)
        if declared < 2**32 and isize < declared:
            check_file_holds(path, declared, isize, "uncompressed NIfTI data")
    else:
        check_file_holds(path, declared, path.stat().st_size, "NIfTI data")
    return img


def _geometry(path: Path, img, shape3) -> tuple[Geometry, list[str], str]:
    hdr = img.header
    warnings = []
    sform_code, qform_code = int(hdr["sform_code"]), int(hdr["qform_code"])
    if sform_code > 0:
        affine, which = img.get_sform(), "sform"
    elif qform_code > 0:
        affine, which = img.get_qform(), "qform"
    else:
        affine, which = img.affine, "pixdim"
        warnings.append("NIfTI has neither sform nor qform: orientation is unknown, axes assumed RAS")
    if not np.all(np.isfinite(affine)):
        field = {"sform": "srow_x/y/z", "qform": "quatern_b/c/d, qoffset_x/y/z or pixdim",
                 "pixdim": "pixdim"}[which]
        raise FormatError(path, f"NIfTI {which} ({field}) holds non-finite numbers; refused")
    lps = _LPS_RAS @ affine
    m = lps[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    direction = m / spacing
    u, _, vt = np.linalg.svd(direction)
    ortho = u @ vt
    if not np.allclose(direction, ortho, atol=1e-4):
        warnings.append(f"NIfTI {which} has shear; direction orthogonalised (geometry approximated)")
    return Geometry(shape3, spacing, lps[:3, 3], ortho), warnings, which


def _labels_from_extensions(img) -> LabelTable | None:
    for ext in img.header.extensions:
        content = ext.get_content()
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        if text.startswith(_EXT_PREFIX):
            return labeltable_io.from_json(text[len(_EXT_PREFIX):])
    return None


def _scaling(path: Path, img) -> tuple[float, float]:
    """(slope, intercept); NaN or 0 slope means none (nibabel writes NaN), infinity is refused.
    Read from the file's own header: nibabel's loaded header hides an infinite slope as 'none'."""
    hdr = img.header
    try:
        with ImageOpener(str(path)) as fh:
            raw = type(hdr).from_fileobj(fh, check=False)
        slope, inter = float(raw["scl_slope"]), float(raw["scl_inter"])
    except Exception:  # noqa: BLE001 - nibabel read it a moment ago; fall back to its view
        slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)
    if np.isnan(slope) or slope == 0:
        return 1.0, 0.0
    check_rescale(path, slope, inter, "scl_slope", "scl_inter", hdr.get_data_dtype())
    return slope, inter


def _stream_first_volume(path: Path, img, volumes: int = 1) -> np.ndarray:
    """The first ``volumes`` 3D volumes stacked along z, [z, y, x], read straight into their array
    (no second copy, gzip decompressed in chunks, never past the declared size)."""
    hdr = img.header
    shape = tuple(int(s) for s in hdr.get_data_shape())
    shape3 = shape[:3] + (1,) * (3 - len(shape[:3]))
    dtype = hdr.get_data_dtype()
    out = output_array((shape3[2] * volumes,) + shape3[1::-1], dtype)
    buf = memoryview(out.reshape(-1).view(np.uint8))
    try:
        got = read_into(path, int(img.dataobj.offset), buf, str(path).lower().endswith(".gz"))
    except (OSError, zlib.error) as exc:
        raise FormatError(path, f"NIfTI data cannot be read ({exc})") from None
    if got < len(buf):
        raise FormatError(path, f"NIfTI data ends after {got} of {len(buf)} bytes: truncated")
    if not dtype.isnative:
        out = out.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return out


def _frames(img) -> int:
    """Time frames of a single-slice series (x, y, 1, t: a cine loop or a dynamic slice), else 1."""
    shape = img.header.get_data_shape()
    if len(shape) == 4 and shape[2] == 1 and shape[3] > 1 and img.header.get_data_dtype().fields is None:
        return int(shape[3])
    return 1


def _time_points(img) -> int:
    """Time points of a 3D series over time (x, y, z, t with z > 1: dynamic contrast, cardiac
    phases), else 1."""
    shape = img.header.get_data_shape()
    if (len(shape) >= 4 and shape[2] > 1 and shape[3] > 1 and all(s == 1 for s in shape[4:])
            and img.header.get_data_dtype().fields is None):
        return int(shape[3])
    return 1


def _frame_time_ms(img) -> float | None:
    """pixdim[4] in ms when the header says it is a time (xyzt_units), else None."""
    _, unit = img.header.get_xyzt_units()
    dt = float(img.header["pixdim"][4])
    scale = {"sec": 1000.0, "msec": 1.0, "usec": 1e-3}.get(unit)
    return dt * scale if scale and np.isfinite(dt) and dt > 0 else None


def _read_array(path: Path, img, frames: int = 1, series: bool = False) -> tuple[np.ndarray, list[str]]:
    warnings = []
    shape = img.header.get_data_shape()
    dtype = img.header.get_data_dtype()
    if dtype.fields is not None:  # RGB24 / RGBA32 structured voxels
        try:
            raw = np.asanyarray(img.dataobj)
        except (EOFError, OSError, ValueError, gzip.BadGzipFile) as exc:
            raise FormatError(path, f"NIfTI data cannot be read ({exc})") from None
        data = np.stack([raw[name] for name in dtype.names], axis=-1).astype(np.uint8)
        if data.ndim == 3:
            data = data[:, :, np.newaxis]
        if data.ndim > 4:
            data = data.reshape(data.shape[:3] + (-1, data.shape[-1]))[..., 0, :]
            warnings.append("NIfTI has several colour volumes (4D); showing the first")
        return np.ascontiguousarray(np.transpose(data, (2, 1, 0, 3))), warnings
    extra = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    if extra > 1 and frames == 1 and not series:
        warnings.append(f"NIfTI has {extra} volumes (4D); showing the first")
    slope, inter = _scaling(path, img)
    data = _stream_first_volume(path, img, frames)
    if slope != 1 or inter != 0:
        scaled = output_array(data.shape, np.float32)
        np.multiply(data, np.float32(slope), out=scaled, casting="unsafe")
        scaled += np.float32(inter)
        data = scaled
    return data, warnings


def read_volume(path: str | Path) -> Volume:
    path = Path(path)
    img = _load_checked(path)
    frames, times = _frames(img), _time_points(img)
    data, warnings = _read_array(path, img, frames, series=times > 1)
    geom, gw, which = _geometry(path, img, (data.shape[2], data.shape[1], data.shape[0]))
    meta = {"nifti_affine_from": which}
    if frames > 1:  # one slice over time: shown as a cine loop in the image's plane
        meta["frames_are_time"] = True
    if times > 1:  # a volume over time: the first time point now, the others when shown
        slope, inter = _scaling(path, img)
        meta[time_series.KEY] = NiftiTimeSeries(path, int(img.dataobj.offset), data.shape,
                                                img.header.get_data_dtype().str, times, slope, inter,
                                                _frame_time_ms(img))
    modality, said = modality_of(data, "MR")
    return Volume(data, geom, modality=modality, description=path.name, source=str(path), metadata=meta,
                  warnings=warnings + gw + said, frame_time_ms=_frame_time_ms(img) if frames > 1 else None)


def read_labelmap(path: str | Path) -> LabelMap:
    path = Path(path)
    img = _load_checked(path)
    data, _ = _read_array(path, img)
    if data.ndim != 3:
        raise FormatError(path, "a label map must be a grey-value image, not colour")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.mod(data, 1) == 0):
            raise FormatError(path, "label map holds non-integer values; is this an image, not labels?")
        data = data.astype(np.uint16 if data.max() > 255 else np.uint8)
    geom, _, _ = _geometry(path, img, (data.shape[2], data.shape[1], data.shape[0]))
    return LabelMap(data, geom, _labels_from_extensions(img) or LabelTable())


def _nifti_image(array: np.ndarray, geometry: Geometry):
    if array.ndim == 4:
        rgb = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
        packed = np.empty(array.shape[:3], dtype=rgb)
        for c, name in enumerate("RGB"):
            packed[name] = array[..., c]
        data = np.transpose(packed, (2, 1, 0))
    else:
        data = np.transpose(array, (2, 1, 0))
    affine = _LPS_RAS @ geometry.affine
    # NIfTI-1 stores sizes as int16: wider images (long ultrasound strips, slide scans) need NIfTI-2
    kind = nib.Nifti2Image if max(data.shape[:3]) > 32767 else nib.Nifti1Image
    img = kind(data, affine)
    img.header.set_xyzt_units("mm")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img


def write_volume(volume: Volume, path: str | Path) -> None:
    img = _nifti_image(volume.array, volume.geometry)
    with atomic_output(path) as tmp:
        if str(path).lower().endswith(".gz"):
            _write_gz(img, tmp)
        else:
            nib.save(img, str(tmp))


def _write_gz(img, path: Path) -> None:
    """gzip by ISA-L: ~4x zlib level 1's speed at a slightly smaller size, any gzip reader reads it
    (saving a 512x512x300 CT took seconds in zlib alone)."""
    with igzip.open(path, "wb", compresslevel=2) as f:
        f.write(img.to_bytes())


def write_labelmap(labelmap: LabelMap, path: str | Path) -> None:
    img = _nifti_image(labelmap.array, labelmap.geometry)
    text = _EXT_PREFIX + labeltable_io.to_json(labelmap.table)
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", text.encode("utf-8")))
    with atomic_output(path) as tmp:
        nib.save(img, str(tmp))
