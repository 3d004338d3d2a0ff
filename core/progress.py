"""Progress callbacks and cancel tokens shared by every long job (load, infer, export...)."""
from __future__ import annotations

import threading
from typing import Callable, Optional

from core.errors import Cancelled

#: progress(fraction in [0, 1], message)
ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, message: str = "") -> None:
    return None


class CancelToken:
    """Set from any thread (the GUI's Cancel button); the worker calls ``check()`` often."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def check(cancel: Optional[CancelToken]) -> None:
    if cancel is not None:
        cancel.check()
