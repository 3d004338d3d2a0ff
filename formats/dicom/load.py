"""Assemble a Volume from a scanned series: geometry first, the slice the user sees first, then the rest."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.errors import FormatError, TooLargeError
from core.geometry import Geometry
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.volume import Volume, WindowPreset
from formats.dicom import validate
from formats.dicom.assemble import apply_shift, plan_stack, resample_positions
from formats.dicom.frames import FrameRef
from formats.dicom.pixels import PixelSource
from formats.dicom.scan import SeriesInfo, list_series, scan_files
from formats.dicom.validate import SPACING_LIMIT
from formats.limits import check_allocation, declared_bytes, human
from formats.sandbox import output_array

#: on_first_slice(k, slice_array, geometry): the middle slice of the stack as soon as it is ready,
#: with the whole stack's grid, so a viewer can place it before the rest arrives
FirstSliceFn = Callable[[int, np.ndarray, Geometry], None]


def _window_presets(ds) -> list[WindowPreset]:
    src = ds
    if "WindowCenter" not in ds:
        for seq_kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            seq = ds.get(seq_kw)
            voi = seq[0].get("FrameVOILUTSequence") if seq else None
            if voi:
                src = voi[0]
                break
    centers, widths = src.get("WindowCenter"), src.get("WindowWidth")
    if centers is None or widths is None:
        return []
    as_list = lambda v: list(v) if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") and not isinstance(v, str) else [v]
    names = src.get("WindowCenterWidthExplanation")
    names = as_list(names) if names is not None else []
    out = []
    pairs = list(zip(as_list(centers), as_list(widths)))
    for i, (c, w) in enumerate(pairs):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w > 0:  # an unexplained window is named by its place among several, else not at all
            out.append(WindowPreset(str(names[i]) if i < len(names) else ("" if len(pairs) == 1 else f"{i + 1}"), c, w))
    return out


def _output_dtype(frames: list[FrameRef]) -> np.dtype:
    """Integer rescales stay integer: int16 first (CT in HU), widened on overflow by the loader."""
    fmt = frames[0].format
    if fmt.spp > 1 or fmt.photometric == "PALETTE COLOR":
        return np.dtype(np.uint8)
    if {f.slope for f in frames} == {1.0} and all(float(f.intercept).is_integer() for f in frames):
        raw = fmt.native_dtype or np.dtype(np.int32)
        if raw.itemsize == 1 and {f.intercept for f in frames} == {0.0}:
            return raw
        return np.dtype(np.int16) if raw.itemsize <= 2 else np.dtype(np.int32)
    return np.dtype(np.float32)


class _Overflow(Exception):
    pass


def _rescaled(raw: np.ndarray, ref: FrameRef, dtype: np.dtype) -> np.ndarray:
    if not np.issubdtype(dtype, np.integer):
        value = raw.astype(np.float32)
        value *= np.float32(ref.slope)
        value += np.float32(ref.intercept)
        return value.astype(dtype, copy=False)
    value = raw
    if ref.intercept != 0.0:
        value = raw.astype(np.int32)
        value += int(ref.intercept)
    if value.dtype != dtype and value.size:
        info = np.iinfo(dtype)
        if value.min() < info.min or value.max() > info.max:
            raise _Overflow
    return value.astype(dtype, copy=False)


def _frame_time_ms(ds) -> Optional[float]:
    """Time between cine frames the file states: FrameTime (ms), else CineRate or
    RecommendedDisplayFrameRate (frames per second); None when it states none usable."""
    for kw, to_ms in (("FrameTime", lambda v: v), ("CineRate", lambda v: 1000.0 / v),
                      ("RecommendedDisplayFrameRate", lambda v: 1000.0 / v)):
        try:
            v = float(ds.get(kw))
        except (TypeError, ValueError):
            continue
        if np.isfinite(v) and v > 0 and 1.0 <= to_ms(v) <= 10_000.0:  # 1000 to 0.1 frames per second
            return float(to_ms(v))
    return None


_NO_SPACING = "no pixel spacing in the file: sizes are in pixels"


def _flat_geometry(info: SeriesInfo, n: int) -> tuple[Geometry, list[str]]:
    """Images without patient geometry (US, secondary capture): in-plane spacing only."""
    ds = info.header
    f0 = info.frames[0]
    warnings = []
    spacing = f0.pixel_spacing
    if spacing is None:
        for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
            delta = validate.finite(f0.path, [region.get("PhysicalDeltaY"), region.get("PhysicalDeltaX")],
                                    "PhysicalDeltaY/X (SequenceOfUltrasoundRegions)", 2, SPACING_LIMIT / 10)
            if delta is not None and np.all(delta != 0) and int(region.get("PhysicalUnitsXDirection", 0)) == 3:
                spacing = tuple(float(v) for v in np.abs(delta) * 10.0)  # cm -> mm
                break
    if spacing is None:
        spacing = (1.0, 1.0)
        warnings.append(_NO_SPACING)
    if n > 1:
        warnings.append(f"{n} frames without patient positions (cine or projection images): "
                        f"shown as a loop, one frame at a time; distances across frames are not mm")
    return Geometry((f0.columns, f0.rows, n), (spacing[1], spacing[0], 1.0)), warnings


#: the largest middle slice decoded apart from the stack (the rest of _WORKING_BYTES covers it)
_EARLY_BYTES = 64 << 20
#: address space a decode needs beyond its output: read blocks per worker, thread stacks, decoders' buffers
_WORKING_BYTES = 256 << 20


def _address_room() -> Optional[int]:
    """Bytes this process may still map under its address-space limit (a decoding child's, set by
    formats.sandbox), or None when unlimited."""
    try:
        import resource
    except ImportError:  # Windows: no limit to consult
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None
    return soft - used


def check_room(source, frames: list[FrameRef], out_bytes: int) -> None:
    """Refuse before reading any pixel (or inflating a deflated file) when the decoded stack cannot
    fit the memory limit: a too-large image then costs its header, not a failed decode. Native
    frames are read into the output in blocks; other frames are decoded whole first."""
    room = _address_room()
    if room is None:
        return
    fmt = frames[0].format
    native = all(f.format.direct_ok(True) if f.deflated else f.format.direct_ok(f.location is not None)
                 for f in frames)
    need = out_bytes + _WORKING_BYTES + (0 if native else out_bytes)
    if need > room:
        raise TooLargeError(source, f"{len(frames)} image(s) of {fmt.rows}x{fmt.cols} need {human(need)} to decode, "
                                    f"more than the {human(max(room, 0))} a reader may use here; refused")


class _BadMembers(Exception):
    """Some images of a multi-file series could not be read: (path, reason) for each."""

    def __init__(self, bad: dict[Path, str]):
        super().__init__(bad)
        self.bad = bad


#: a series loses at most this share of its files to unreadable members before it is refused
_MAX_BAD_SHARE = 0.2


def load_series(info: SeriesInfo, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
                on_first_slice: Optional[FirstSliceFn] = None, workers: int = 4,
                time_point: Optional[int] = None) -> Volume:
    """Decode a scanned series. An unreadable image in a multi-file series is skipped (named in the
    warnings) and its place filled like a missing slice; one file's own error is that file's. A
    series over time gives its first time point, with the others to read (formats.dicom.dynamic),
    or ``time_point``'s voxels alone."""
    source = str(info.files[0].parent if len(info.files) > 1 else info.files[0])
    if info.problem:
        raise FormatError(source, info.problem)
    frames, bad = info.frames if info.time_points is None else info.time_points[time_point or 0], {}
    notes = [f"skipped {Path(p).name}: {why}" for p, why in info.skipped] + info.warnings
    n_files = len({f.path for f in frames})
    while True:
        try:
            vol = _load_frames(info, frames, source, progress, cancel, on_first_slice, workers)
        except _BadMembers as exc:
            bad.update(exc.bad)
            if len(bad) > max(1, _MAX_BAD_SHARE * n_files):
                first, why = next(iter(bad.items()))
                raise FormatError(source, f"{len(bad)} of {n_files} images cannot be read (first: {first.name}: "
                                          f"{why}); refused rather than interpolating over them") from None
            frames = [f for f in frames if f.path not in bad]
            on_first_slice = None  # the grid may change: the final volume shows the slice
            continue
        vol.warnings[:0] = notes + [f"skipped {p.name}: {why}" for p, why in bad.items()]
        if info.time_points is not None and time_point is None:
            from formats.dicom.dynamic import attach

            attach(vol, info)
        return vol


def _load_frames(info, frames, source, progress, cancel, on_first_slice, workers) -> Volume:
    if info.has_geometry:
        plan = plan_stack(frames, source)
        frames, geometry, warnings = plan.frames, plan.geometry, list(plan.warnings)
    else:
        plan = None
        frames = sorted(frames, key=lambda f: (f.instance, str(f.path), f.frame or 0))
        geometry, warnings = _flat_geometry(info, len(frames))
    try:  # the type every time point of a series over time fits (rescales may differ between them)
        return _load(info, frames, plan, geometry, warnings, source, _output_dtype(info.frames),
                     progress, cancel, on_first_slice, workers)
    except _Overflow:
        return _load(info, frames, plan, geometry, warnings, source, np.dtype(np.int32),
                     progress, cancel, None, workers)


def _load(info, frames, plan, geometry, warnings, source, dtype, progress, cancel, on_first_slice, workers):
    fmt = frames[0].format
    colour = fmt.spp > 1 or fmt.photometric == "PALETTE COLOR"
    stack_shape = (len(frames), fmt.rows, fmt.cols) + ((3,) if colour else ())
    check_allocation(source, stack_shape, dtype, "DICOM series")
    if any(f.rows != fmt.rows or f.columns != fmt.cols for f in frames):
        raise FormatError(source, "images of different sizes in one stack")
    check_room(source, frames, declared_bytes(stack_shape, dtype))
    middle = len(frames) // 2
    # one frame is the whole image: sending it early would only copy it once more; resampled stacks
    # have no final slice until the end
    early = on_first_slice is not None and len(frames) > 1 and (plan is None or plan.targets is None)
    # the middle slice is decoded into an array of its own and shown before the stack is allocated (in
    # a decoding child the stack is a shared file, populated whole when created); a slice beyond
    # _EARLY_BYTES goes straight into the stack instead, so no image is held twice
    apart = early and declared_bytes(stack_shape[1:], dtype) <= _EARLY_BYTES
    first = np.empty(stack_shape[1:], dtype) if apart else None
    stack = None if first is not None else output_array(stack_shape, dtype)
    pixels = PixelSource()

    several_files = len({f.path for f in frames}) > 1
    shifted = plan is not None and plan.shifts is not None
    bad: dict[Path, str] = {}

    def put(k: int, r0: int, raw: np.ndarray) -> None:
        if colour and raw.ndim == 2:
            raise FormatError(frames[k].path, "a grey image inside a colour series")
        if raw.ndim == 3 and raw.shape[-1] == 4:
            raw = raw[..., :3]
        if colour and raw.dtype != np.uint8:  # 16/32-bit colour is shown as 8-bit RGB
            top = float((1 << min(fmt.stored, 32)) - 1)
            raw = np.clip(np.round(raw.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
        img = _rescaled(raw, frames[k], dtype)
        if shifted:
            img = apply_shift(img, plan.shifts[k])
        (first if stack is None else stack[k])[r0:r0 + img.shape[0]] = img

    def read(k: int) -> None:
        check(cancel)
        blocks = pixels.blocks(frames[k], whole=shifted)  # a tilt shift needs the whole slice
        while True:
            try:
                r0, raw = next(blocks)
            except StopIteration:
                return
            except FormatError as exc:
                if not several_files:
                    raise
                bad[frames[k].path] = exc.problem
                return
            put(k, r0, raw)

    try:
        read(middle)
        if early and not bad:
            on_first_slice(middle, first if stack is None else stack[middle], geometry)
        if stack is None:
            stack = output_array(stack_shape, dtype)  # in a decoding child: the shared file the caller maps
            stack[middle] = first
        rest = [k for k in range(len(frames)) if k != middle]
        done = 1
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for _ in pool.map(read, rest):
                done += 1
                if done % 8 == 0:
                    progress(done / len(frames), f"reading images {done}/{len(frames)}")
    finally:
        pixels.close()
    if bad:
        raise _BadMembers(bad)
    if plan is not None and plan.targets is not None:
        stack = resample_positions(stack, plan.positions, plan.targets)
    progress(1.0, "loaded")
    ds = info.header
    if fmt.photometric == "MONOCHROME1":
        warnings.append("MONOCHROME1: low values display bright (inverted grey scale)")
    desc = " / ".join(x for x in (info.study_description, info.series_description, info.note) if x)
    # a flat image's size may come from its ultrasound regions instead of PixelSpacing
    spacing_known = frames[0].pixel_spacing is not None if plan is not None else _NO_SPACING not in warnings
    return Volume(stack, geometry, modality=info.modality, description=desc or Path(source).name,
                  source=source, window_presets=_window_presets(ds), warnings=warnings,
                  spacing_known=spacing_known, orientation_known=plan is not None,
                  frame_time_ms=_frame_time_ms(ds) if plan is None and len(frames) > 1 else None,
                  metadata={"series_uid": info.series_uid, "photometric": fmt.photometric,
                            "patient": " ".join(x for x in (info.patient_name, info.patient_id) if x),
                            "frames_are_time": plan is None and len(frames) > 1,
                            "sop_instance_uids": [str(_sop(f)) for f in frames] if plan else []})


def _sop(ref: FrameRef) -> str:
    return f"{ref.path.name}#{ref.frame}" if ref.frame is not None else ref.path.name


def choose_series(series: list[SeriesInfo], source: Path, key: Optional[str] = None) -> tuple[SeriesInfo, list[str]]:
    if key is not None:
        for s in series:
            if s.key == key or s.series_uid == key or s.series_number == key:
                return s, []
        raise FormatError(source, f"no series {key!r} here; found: {', '.join(s.key for s in series)}")
    best = max(series, key=lambda s: s.n_images)
    notes = [] if len(series) == 1 else [
        f"{len(series)} series/stacks found; loaded the largest ({best.series_description or best.key}, "
        f"{best.n_images} images). Others: " + "; ".join(
            f"{s.series_description or s.key} {s.note}".strip() for s in series if s is not best)]
    return best, notes


def load_dicom(path: str | Path, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
               series_key: Optional[str] = None, on_first_slice: Optional[FirstSliceFn] = None) -> Volume:
    """A DICOM file or folder -> Volume (the largest series unless ``series_key`` names one)."""
    path = Path(path)
    if path.is_dir():
        series = list_series(path, lambda f, m: progress(0.2 * f, m), cancel)
    else:
        series = scan_files([path], strict=True)
        if not series:
            raise FormatError(path, "no displayable image in this DICOM file")
    chosen, notes = choose_series(series, path, series_key)
    vol = load_series(chosen, lambda f, m: progress(0.2 + 0.8 * f, m), cancel, on_first_slice)
    vol.warnings.extend(notes)
    return vol
