"""Images of one DICOM series that are one 3D volume at successive times (DCE-MR, cardiac phases,
perfusion CT): they share slice positions and differ in when they were taken.

Told apart as dcm2niix and Slicer's MultiVolume importer do: by TemporalPositionIdentifier
(TemporalPositionIndex in an enhanced file), else TriggerTime (cardiac delay), AcquisitionNumber,
AcquisitionTime or ContentTime, the first that every image has and that takes several values.
Where one value names one time point (a phase's identifier, a cardiac delay) images are grouped by
it; where it changes slice by slice as well (a 2D multi-slice sequence's acquisition times) the
k-th earliest image at every position is time point k. Headers only: no pixels are read here.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np

#: what tells time points apart, in the order it is trusted
ATTRIBUTES = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionNumber", "AcquisitionTime", "ContentTime")


class Temporal(NamedTuple):
    position: Optional[float] = None  # TemporalPositionIdentifier / TemporalPositionIndex
    trigger_ms: Optional[float] = None  # TriggerTime / NominalCardiacTriggerDelayTime
    acquisition: Optional[float] = None  # AcquisitionNumber
    acquisition_s: Optional[float] = None  # AcquisitionTime / FrameAcquisitionDateTime, s after midnight
    content_s: Optional[float] = None  # ContentTime


def number(value) -> Optional[float]:
    """A DICOM IS/DS value as a finite float; None when absent or not a number (never an error:
    an odd value costs the series its time order, not its images)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        v = float(str(value).strip(" \0"))
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def seconds(value) -> Optional[float]:
    """A TM (HHMMSS.FFFFFF, or the old HH:MM:SS) or the time part of a DT as seconds after midnight."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip(" \0").replace(":", "")
    if len(text) >= 14 and text[:14].isdigit():  # DT: YYYYMMDDHHMMSS...
        text = text[8:]
    text = text.split("+")[0].split("-")[0]
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (frac and not frac.isdigit()):
        return None
    h, m, s = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    if h > 23 or m > 59 or s > 60:
        return None
    return h * 3600 + m * 60 + s + (float("0." + frac) if frac else 0.0)


def of_dataset(ds) -> Temporal:
    """The time attributes of a single-frame image's header."""
    def get(kw):
        try:
            return ds.get(kw)
        except Exception:  # pydicom converts lazily; a malformed value is no reason to refuse the image
            return None
    return Temporal(number(get("TemporalPositionIdentifier")), number(get("TriggerTime")),
                    number(get("AcquisitionNumber")), seconds(get("AcquisitionTime")), seconds(get("ContentTime")))


def of_frame(content, cardiac) -> Temporal:
    """The time attributes of one frame of an enhanced multi-frame file (its FrameContentSequence
    and CardiacSynchronizationSequence items)."""
    def get(item, kw):
        try:
            return item.get(kw) if item is not None else None
        except Exception:
            return None
    return Temporal(number(get(content, "TemporalPositionIndex")),
                    number(get(cardiac, "NominalCardiacTriggerDelayTime")), None,
                    seconds(get(content, "FrameAcquisitionDateTime")), None)


@dataclass
class Dynamic:
    """One stack's images as time points: each a full set of the same slice positions."""

    time_points: list  # [time point][image] FrameRefs, time points in time order
    attribute: str  # what told them apart
    times_s: Optional[list[float]] = None  # from the first time point, when the headers say
    warnings: list[str] = field(default_factory=list)
    problem: str = ""  # why the images cannot be one series over time (said when it is opened)
    group: list = field(default_factory=list, repr=False)  # every image considered


    @property
    def frames(self) -> list:
        return [f for tp in self.time_points for f in tp]


def _where(f) -> tuple:
    return tuple(np.round(f.position, 2))


def _name(f) -> str:
    return f.path.name + (f" frame {f.frame + 1}" if f.frame is not None else "")


def split_time(frames: list) -> Optional[Dynamic]:
    """``frames`` (one orientation, size and spacing, several at some position) as time points;
    None when nothing in their headers orders them in time."""
    count = Counter(_where(f) for f in frames)
    per_position = max(count.values())
    if per_position < 2:
        return None
    for i, name in enumerate(ATTRIBUTES):
        values = [f.temporal[i] if f.temporal else None for f in frames]
        if any(v is None for v in values) or len(set(values)) < 2:
            continue
        groups: dict[float, list] = defaultdict(list)
        for f, v in zip(frames, values):
            groups[v].append(f)
        found = None
        if len(groups) == per_position and all(len({_where(f) for f in g}) == len(g) for g in groups.values()):
            found = _by_value(groups, name, set(count))
        else:
            by_position: dict[tuple, list] = defaultdict(list)
            for f, v in zip(frames, values):
                by_position[_where(f)].append((v, f))
            if all(len({v for v, _ in fs}) == len(fs) for fs in by_position.values()):
                found = _by_rank(by_position, name, per_position)
        if found is not None:
            found.group = frames
            return found
    return None


def _by_value(groups: dict, name: str, everywhere: set) -> Dynamic:
    """One value, one time point; a time point missing slices is left out, its files named."""
    kept, warnings = [], []
    for value in sorted(groups):
        tp = groups[value]
        if {_where(f) for f in tp} == everywhere:
            kept.append(tp)
            continue
        names = sorted(_name(f) for f in tp)
        warnings.append(f"time point {name} {value:g} left out: it has {len(tp)} of the {len(everywhere)} slices "
                        f"the others have ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
    if not kept:
        return Dynamic([], name, problem=f"no time point ({name}) has every one of the {len(everywhere)} "
                                         f"slice positions; refused rather than mixing them")
    return Dynamic(kept, name, _times(kept), warnings)


def _by_rank(by_position: dict, name: str, per_position: int) -> Optional[Dynamic]:
    """Times that change slice by slice: the k-th earliest image at each position is time point k.
    None when most positions have fewer images than the most: a slice acquired again, not time."""
    short = [(p, len(fs)) for p, fs in by_position.items() if len(fs) != per_position]
    if 2 * len(short) >= len(by_position):
        return None
    if short:
        p, n = short[0]
        f = by_position[p][0][1]
        return Dynamic([], name, problem=(
            f"{len(short)} of {len(by_position)} slice positions have fewer images than the {per_position} "
            f"time points (first: {_name(f)} at {list(p)} mm has {n}); which time point lacks them is "
            f"unknown ({name} changes slice by slice), refused rather than mixing time points"))
    ranked = [sorted(fs, key=lambda vf: vf[0]) for fs in by_position.values()]
    kept = [[fs[k][1] for fs in ranked] for k in range(per_position)]
    return Dynamic(kept, name, _times(kept))


def _times(time_points: list) -> Optional[list[float]]:
    """Each time point's start after the first's, in seconds, from the first time attribute every
    image has; None when none does or they do not increase (midnight, a copied header)."""
    for i, scale in ((1, 1e-3), (3, 1.0), (4, 1.0)):
        values = [[f.temporal[i] if f.temporal else None for f in tp] for tp in time_points]
        if any(v is None for vs in values for v in vs):
            continue
        starts = [min(vs) * scale for vs in values]
        if all(b > a for a, b in zip(starts, starts[1:])):
            return [s - starts[0] for s in starts]
    return None


def uniform_ms(times_s: Optional[list[float]]) -> Optional[float]:
    """The interval between time points when they are evenly spaced (within 2 %), in ms."""
    if not times_s or len(times_s) < 2:
        return None
    gaps = np.diff(times_s)
    mean = float(np.mean(gaps))
    return mean * 1000.0 if mean > 0 and float(np.max(np.abs(gaps - mean))) <= 0.02 * mean else None
