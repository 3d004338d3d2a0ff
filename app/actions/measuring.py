"""Measurements on the open case: add (ruler, angle, ellipse ROI, RECIST axes of a segment), remove,
and read them as rows for the list, the store record and the exports. Each change is announced once
as MeasurementsChanged."""
from __future__ import annotations

from typing import Optional

from app.session import CaseSession, MeasurementsChanged
from core.errors import DelineateError
from core.measurements import Measurement, recist, row


def _changed(session: CaseSession) -> None:
    session.events.emit(MeasurementsChanged(tuple(session.measurements)))


def add(session: CaseSession, m: Measurement) -> Measurement:
    if session.volume is None:
        raise DelineateError("open an image first: measurements are made on it")
    session.measurements.append(m)
    _changed(session)
    return m


def add_recist(session: CaseSession, value: int) -> Optional[Measurement]:
    """RECIST long and short axes of segment ``value``; None (nothing added) when it is empty."""
    if session.labelmap is None:
        raise DelineateError("RECIST needs a segment: segment the image or load a segmentation first")
    m = recist(session.labelmap, value)
    return add(session, m) if m is not None else None


def replace(session: CaseSession, index: int, m: Measurement) -> None:
    """A measurement edited (a point moved)."""
    if 0 <= index < len(session.measurements) and session.measurements[index] != m:
        session.measurements[index] = m
        _changed(session)


def remove(session: CaseSession, index: int) -> None:
    if 0 <= index < len(session.measurements):
        del session.measurements[index]
        _changed(session)


def clear(session: CaseSession) -> None:
    if session.measurements:
        session.measurements.clear()
        _changed(session)


def rows(session: CaseSession) -> list[dict]:
    """Each measurement with its points and what it reads (ROI statistics on the open image)."""
    return [row(m, session.volume) for m in session.measurements]
