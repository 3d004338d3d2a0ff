"""NRRD, MetaImage (.mha/.mhd) through SimpleITK, after our own header check for hostile sizes."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from core.errors import FormatError
from core.geometry import Geometry
from core.labels import LabelMap, LabelTable
from core.modality import modality_of
from core.volume import Volume
from formats import labeltable_io
from formats.atomic import atomic_output
from formats.limits import check_allocation, check_file_holds, inflated_size
from formats.sandbox import output_array

_META_TYPES = {
    "MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
    "MET_UINT": "u4", "MET_LONG": "i8", "MET_ULONG": "u8", "MET_LONG_LONG": "i8",
    "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}
_NRRD_TYPES = {
    "signed char": "i1", "int8": "i1", "int8_t": "i1", "uchar": "u1", "unsigned char": "u1",
    "uint8": "u1", "uint8_t": "u1", "short": "i2", "short int": "i2", "signed short": "i2",
    "int16": "i2", "int16_t": "i2", "ushort": "u2", "unsigned short": "u2", "uint16": "u2",
    "uint16_t": "u2", "int": "i4", "signed int": "i4", "int32": "i4", "int32_t": "i4",
    "uint": "u4", "unsigned int": "u4", "uint32": "u4", "uint32_t": "u4", "longlong": "i8",
    "long long": "i8", "int64": "i8", "int64_t": "i8", "ulonglong": "u8", "uint64": "u8",
    "uint64_t": "u8", "float": "f4", "double": "f8",
}
_HEADER_LIMIT = 1 << 20
_MAX_DIMS = 4  # 2D, 3D, 3D + time/channels; more is refused before ITK parses it


def _read_header_text(path: Path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_LIMIT)
    return head.decode("latin-1"), len(head)


def _inside(path: Path, name: str, field: str) -> Path:
    """A detached data file named in a header, refused unless it lies inside the header's folder."""
    folder = path.parent.resolve()
    try:
        target = (folder / name).resolve()
    except (ValueError, OSError):
        raise FormatError(path, f"{field} {name[:60]!r} is not a file name; refused") from None
    if Path(name).is_absolute() or not target.is_relative_to(folder):
        raise FormatError(path, f"{field} {name!r} points outside the header's folder; refused")
    return target


def _numbers(path: Path, field: str, text: str, count: int) -> None:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise FormatError(path, f"{field} {text[:60]!r} is not a list of numbers") from None
    if not all(np.isfinite(values)):
        raise FormatError(path, f"{field} holds non-finite numbers ({text[:60]}); refused")
    if len(values) != count:
        raise FormatError(path, f"{field} has {len(values)} values; NDims {int(count ** 0.5) if count > 4 else count} "
                                f"needs {count}")


def _check_meta(path: Path) -> None:
    text, _ = _read_header_text(path)
    fields, header_len = {}, None
    pos = 0
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        pos += len(line)
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k.strip()] = v.strip()
            if k.strip() == "ElementDataFile":
                header_len = pos
                break
    if "DimSize" not in fields or "ElementType" not in fields:
        raise FormatError(path, "not a MetaImage header (DimSize/ElementType missing)")
    try:
        ndims = int(fields.get("NDims", "0"))
    except ValueError:
        raise FormatError(path, f"NDims {fields['NDims'][:20]!r} is not a number") from None
    if not 2 <= ndims <= _MAX_DIMS:  # ITK corrupts its heap on NDims = 99
        raise FormatError(path, f"NDims = {ndims}: only 2 to {_MAX_DIMS} dimensions are images; refused")
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        channels = int(fields.get("ElementNumberOfChannels", "1"))
        dtype = np.dtype(_META_TYPES[fields["ElementType"]])
    except (ValueError, KeyError) as exc:
        raise FormatError(path, f"invalid MetaImage header field ({exc})") from None
    if len(dims) != ndims or min(dims) < 1:
        raise FormatError(path, f"DimSize {fields['DimSize'][:60]!r} does not give {ndims} positive sizes (NDims)")
    if not 1 <= channels <= 4:
        raise FormatError(path, f"ElementNumberOfChannels = {channels}: 1 to 4 expected; refused")
    for field in ("ElementSpacing", "ElementSize", "Offset", "Position", "Origin", "CenterOfRotation"):
        if field in fields:
            _numbers(path, field, fields[field], ndims)
    for field in ("TransformMatrix", "Rotation", "Orientation"):
        if field in fields:
            _numbers(path, field, fields[field], ndims * ndims)
    shape = dims + ([channels] if channels > 1 else [])
    declared = check_allocation(path, shape, dtype, "MetaImage")
    datafile = fields.get("ElementDataFile", "LOCAL")
    compressed = fields.get("CompressedData", "False").lower() == "true"
    if datafile == "LOCAL":
        source, offset = path, header_len or 0
    elif datafile.split()[0] == "LIST":
        for name in (ln.strip() for ln in lines[i + 1:] if ln.strip()):
            _inside(path, name, "ElementDataFile LIST entry")
        return
    elif "%" in datafile:  # a printf pattern with its range: the pattern's folder must be inside
        _inside(path, datafile.split()[0], "ElementDataFile pattern")
        return
    else:
        source, offset = _inside(path, datafile, "ElementDataFile"), 0
        if not source.is_file():
            raise FormatError(path, f"data file {datafile} named in the header does not exist")
    if compressed:
        check_file_holds(path, declared, inflated_size(source, offset, declared, zlib_wbits=15),
                         "uncompressed MetaImage data")
    else:
        check_file_holds(path, declared, source.stat().st_size - offset)


def _check_nrrd(path: Path) -> None:
    text, _ = _read_header_text(path)
    if not text.startswith("NRRD"):
        raise FormatError(path, "not a NRRD file (no NRRD magic)")
    fields, header_len, pos = {}, None, 0
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        pos += len(line)
        if not line.strip():
            header_len = pos
            break
        m = re.match(r"([^:#]+):=?\s*(.*)", line)
        if m and not line.startswith("#"):
            fields[m.group(1).strip().lower()] = m.group(2).strip()
    try:
        ndims = int(fields.get("dimension", "0"))
        dims = [int(v) for v in fields["sizes"].split()]
        dtype = np.dtype(_NRRD_TYPES[fields["type"].lower()])
    except (ValueError, KeyError) as exc:
        raise FormatError(path, f"invalid NRRD header (dimension/sizes/type: {exc})") from None
    if not 1 <= ndims <= _MAX_DIMS:
        raise FormatError(path, f"dimension: {ndims}: only 1 to {_MAX_DIMS} are images; refused")
    if len(dims) != ndims or min(dims) < 1:
        raise FormatError(path, f"sizes {fields['sizes'][:60]!r} does not give {ndims} positive sizes (dimension)")
    declared = check_allocation(path, dims, dtype, "NRRD image")
    encoding = fields.get("encoding", "raw").lower()
    datafile = fields.get("data file") or fields.get("datafile")
    if datafile and datafile.split()[0] == "LIST":
        for name in (ln.strip() for ln in lines[i + 1:] if ln.strip()):
            _inside(path, name, "data file LIST entry")
        return
    if datafile and "%" in datafile:
        _inside(path, datafile.split()[0], "data file pattern")
        return
    target = path if not datafile else _inside(path, datafile, "data file")
    if not target.is_file():
        raise FormatError(path, f"data file {datafile} named in the header does not exist")
    offset = 0 if datafile else (header_len or 0)
    if encoding == "raw":
        check_file_holds(path, declared, target.stat().st_size - offset)
    elif encoding in ("gzip", "gz"):
        check_file_holds(path, declared, inflated_size(target, offset, declared), "uncompressed NRRD data")


def _read_image(path: Path) -> sitk.Image:
    suffix = path.name.lower()
    if suffix.endswith((".mha", ".mhd")):
        _check_meta(path)
    elif suffix.endswith((".nrrd", ".nhdr")):
        _check_nrrd(path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise FormatError(path, f"cannot be read by ITK ({first})") from None


def _geometry_of(img: sitk.Image) -> Geometry:
    dim = img.GetDimension()
    if dim == 2:
        d2 = np.asarray(img.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d2
        return Geometry(tuple(img.GetSize()) + (1,), tuple(img.GetSpacing()) + (1.0,),
                        tuple(img.GetOrigin()) + (0.0,), direction)
    if dim != 3:
        raise ValueError(f"{dim}D images are not supported")
    return Geometry(img.GetSize(), img.GetSpacing(), img.GetOrigin(),
                    np.asarray(img.GetDirection()).reshape(3, 3))


def _array_of(img: sitk.Image) -> np.ndarray:
    view = sitk.GetArrayViewFromImage(img)
    arr = output_array(view.shape, view.dtype)  # one copy, into the array a sandbox hands back
    arr[...] = view
    del view
    if img.GetDimension() == 2:
        arr = arr[np.newaxis]
    return arr


def _meta(img: sitk.Image) -> dict[str, str]:
    out = {}
    for k in img.GetMetaDataKeys():
        try:
            out[k] = img.GetMetaData(k)
        except (TypeError, RuntimeError, UnicodeError):  # a key or value that is not text: not ours
            pass
    return out


def read_volume(path: str | Path) -> Volume:
    path = Path(path)
    img = _read_image(path)
    if img.GetDimension() not in (2, 3):
        raise FormatError(path, f"{img.GetDimension()}D image; only 2D and 3D images are supported")
    arr = _array_of(img)
    if img.GetNumberOfComponentsPerPixel() > 1 and arr.shape[-1] not in (3, 4):
        raise FormatError(path, f"{img.GetNumberOfComponentsPerPixel()}-component pixels are not an image Delineate shows")
    meta = _meta(img)
    modality, said = meta.get("Modality", "").replace("MET_MOD_", ""), []
    if modality in ("", "OT", "UNKNOWN"):
        modality, said = modality_of(arr, "OT") if img.GetNumberOfComponentsPerPixel() == 1 else ("OT", [])
    return Volume(arr, _geometry_of(img), modality=modality, description=path.name, source=str(path), warnings=said)


def read_labelmap(path: str | Path) -> LabelMap:
    path = Path(path)
    img = _read_image(path)
    if img.GetNumberOfComponentsPerPixel() != 1 or img.GetDimension() not in (2, 3):
        raise FormatError(path, "label maps must be single-layer 2D/3D integer images")
    arr = _array_of(img)
    if not np.issubdtype(arr.dtype, np.integer):
        raise FormatError(path, f"label map has {arr.dtype} voxels; integer labels expected")
    meta = _meta(img)
    table = (labeltable_io.from_json(meta.get(labeltable_io.KEY))
             or labeltable_io.from_slicer_fields(meta) or LabelTable())
    return LabelMap(arr, _geometry_of(img), table)


def _to_sitk(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(array, isVector=array.ndim == 4)
    img.SetSpacing([float(v) for v in geometry.spacing])
    img.SetOrigin([float(v) for v in geometry.origin])
    img.SetDirection([float(v) for v in geometry.direction.reshape(-1)])
    return img


def _write(img: sitk.Image, path: Path) -> None:
    with atomic_output(path) as tmp:
        try:
            sitk.WriteImage(img, str(tmp), True)
        except RuntimeError as exc:
            raise FormatError(path, f"ITK could not write it ({str(exc).strip().splitlines()[-1]})") from None


def write_volume(volume: Volume, path: str | Path) -> None:
    img = _to_sitk(volume.array, volume.geometry)
    img.SetMetaData("Modality", volume.modality)
    _write(img, Path(path))


def write_labelmap(labelmap: LabelMap, path: str | Path) -> None:
    img = _to_sitk(labelmap.array, labelmap.geometry)
    img.SetMetaData(labeltable_io.KEY, labeltable_io.to_json(labelmap.table))
    if str(path).lower().endswith((".nrrd", ".nhdr")):
        for k, v in labeltable_io.slicer_fields(labelmap.table).items():
            img.SetMetaData(k, v)
    _write(img, Path(path))
