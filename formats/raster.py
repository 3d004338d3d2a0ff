"""PNG and TIFF: 2D images (and TIFF stacks) such as histopathology tiles and exported slices.

Pixel spacing comes from the file's resolution (dpi / TIFF resolution unit) when present.
Files Delineate writes also carry the exact geometry and label table as JSON text, so
origin and direction survive a round-trip that the formats themselves cannot express.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin

from core.errors import FormatError
from core.geometry import MAX_SPACING_MM, Geometry
from core.labels import LabelMap, LabelTable
from core.volume import Volume
from formats import labeltable_io
from formats.atomic import atomic_output
from formats.limits import check_allocation

_GEOM_KEY = "DelineateGeometry"
Image.MAX_IMAGE_PIXELS = None  # our own budget check (formats.limits) replaces Pillow's fixed cap
Image.init()  # every plugin now, once: the decode sandbox preloads this module, so its children don't


def _geometry_json(g: Geometry, volume: Volume | None = None) -> str:
    d = {"spacing": g.spacing.tolist(), "origin": g.origin.tolist(), "direction": g.direction.tolist()}
    if volume is not None:  # what the original file did not say stays unsaid after a round-trip
        d.update(spacing_known=volume.spacing_known, orientation_known=volume.orientation_known)
    return json.dumps(d)


#: dpi that Qt, Windows and image editors write by default: a screen's, not a measured pixel size
_DEFAULT_DPI = (72.0, 96.0)


def _geometry(shape_zyx, text: str | None, spacing_xy=None) -> tuple[Geometry, bool, bool]:
    """The grid, and whether the file gave its pixel size and its patient orientation: only our
    own geometry text says where the patient is; a resolution tag says only the pixel size."""
    if text:
        try:
            d = json.loads(text)
            return (Geometry.for_array_shape(shape_zyx, d["spacing"], d["origin"], d["direction"]),
                    bool(d.get("spacing_known", True)), bool(d.get("orientation_known", True)))
        except (ValueError, KeyError, TypeError):
            pass
    sx, sy = spacing_xy or (1.0, 1.0)
    known = spacing_xy is not None
    if not (0 < sx <= MAX_SPACING_MM and 0 < sy <= MAX_SPACING_MM):  # an absurd dpi: ignore it
        sx, sy, known = 1.0, 1.0, False
    return Geometry.for_array_shape(shape_zyx, (sx, sy, 1.0)), known, False


def _png_read(path: Path):
    try:
        im = Image.open(path)
    except Exception as exc:
        raise FormatError(path, f"not a readable image ({exc})") from None
    with im:
        bands = len(im.getbands())
        check_allocation(path, (im.height, im.width, max(bands, 1)), np.uint16 if im.mode.startswith("I") else np.uint8)
        info = dict(im.info)
        if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
            im = im.convert("RGBA" if "transparency" in info or im.mode == "PA" else "RGB")
        elif im.mode == "LA":
            im = im.convert("L")
        try:
            arr = np.asarray(im)
        except OSError as exc:
            raise FormatError(path, f"image data is truncated or corrupt ({exc})") from None
    if arr.ndim == 3 and arr.shape[2] == 4 and np.all(arr[..., 3] == 255):
        arr = arr[..., :3]
    spacing = None
    dpi = info.get("dpi")
    if dpi and dpi[0] > 0 and dpi[1] > 0 and not all(round(float(d), 1) in _DEFAULT_DPI for d in dpi[:2]):
        spacing = (25.4 / float(dpi[0]), 25.4 / float(dpi[1]))
    return arr[np.newaxis], info, spacing


def _tiff_read(path: Path):
    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            check_allocation(path, series.shape, series.dtype, "TIFF image")
            page = tf.pages[0]
            desc = page.description or ""
            spacing = None
            xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
            unit = page.tags.get("ResolutionUnit")
            if xres and yres and unit and int(unit.value) in (2, 3):
                per_mm = {2: 25.4, 3: 10.0}[int(unit.value)]
                xr, yr = (v[0] / v[1] if v[1] else 0 for v in (xres.value, yres.value))
                if xr > 0 and yr > 0:
                    spacing = (per_mm / xr, per_mm / yr)
            arr = series.asarray()
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(path, f"not a readable TIFF ({exc})") from None
    axes = series.axes
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    elif arr.ndim == 3 and axes.endswith("S") and arr.shape[-1] in (3, 4):
        arr = arr[np.newaxis]
    elif arr.ndim > 4 or (arr.ndim == 4 and arr.shape[-1] not in (3, 4)):
        raise FormatError(path, f"TIFF with axes {axes} and shape {arr.shape} is not a 2D/3D image")
    info = {}
    if desc.startswith("{"):
        try:
            info = json.loads(desc)
        except ValueError:
            info = {}
    return arr, {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in info.items()}, spacing


def _read(path: Path):
    if path.suffix.lower() in (".tif", ".tiff"):
        return _tiff_read(path)
    return _png_read(path)


def read_volume(path: str | Path) -> Volume:
    path = Path(path)
    arr, info, spacing = _read(path)
    if arr.ndim == 4 and arr.dtype != np.uint8:
        arr = (arr / max(1, int(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1) * 255).astype(np.uint8)
    modality = "SM" if arr.ndim == 4 else "OT"
    geometry, spacing_known, orientation_known = _geometry(arr.shape, info.get(_GEOM_KEY), spacing)
    return Volume(np.ascontiguousarray(arr), geometry, modality=modality, description=path.name, source=str(path),
                  spacing_known=spacing_known, orientation_known=orientation_known)


def read_labelmap(path: str | Path) -> LabelMap:
    path = Path(path)
    arr, info, spacing = _read(path)
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise FormatError(path, f"a label map must be a grey integer image, got {arr.dtype} {arr.shape}")
    table = labeltable_io.from_json(info.get(labeltable_io.KEY)) or LabelTable()
    return LabelMap(np.ascontiguousarray(arr), _geometry(arr.shape, info.get(_GEOM_KEY), spacing)[0], table)


def _write(path: Path, array: np.ndarray, geometry: Geometry, extra: dict[str, str],
           volume: Volume | None = None) -> None:
    text = {_GEOM_KEY: _geometry_json(geometry, volume), **extra}
    dpi = tuple(25.4 / float(s) for s in geometry.spacing[:2])
    if path.suffix.lower() in (".tif", ".tiff"):
        data = array[0] if array.shape[0] == 1 else array
        with atomic_output(path) as tmp:
            tifffile.imwrite(tmp, data, description=json.dumps(text), metadata=None,
                             resolution=(10.0 / geometry.spacing[0], 10.0 / geometry.spacing[1]),
                             resolutionunit="CENTIMETER", photometric="rgb" if array.ndim == 4 else "minisblack")
        return
    if array.shape[0] != 1:
        raise FormatError(path, f"PNG holds one 2D image; this one has {array.shape[0]} slices (use TIFF, NIfTI or NRRD)")
    data = array[0]
    if data.ndim == 2 and data.dtype not in (np.uint8, np.uint16):
        if data.min() < 0 or data.max() > 65535 or not np.issubdtype(data.dtype, np.integer):
            raise FormatError(path, f"PNG stores 8/16-bit unsigned values; this image is {data.dtype} "
                                    f"in [{data.min()}, {data.max()}] (use NIfTI, NRRD or TIFF)")
        data = data.astype(np.uint16)
    png = PngImagePlugin.PngInfo()
    for k, v in text.items():
        png.add_itxt(k, v)
    with atomic_output(path) as tmp:
        Image.fromarray(data).save(tmp, format="PNG", pnginfo=png, dpi=dpi)


def write_volume(volume: Volume, path: str | Path) -> None:
    _write(Path(path), volume.array, volume.geometry, {}, volume)


def write_labelmap(labelmap: LabelMap, path: str | Path) -> None:
    _write(Path(path), labelmap.array, labelmap.geometry, {labeltable_io.KEY: labeltable_io.to_json(labelmap.table)})
