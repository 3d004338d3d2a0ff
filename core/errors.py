"""The project's own error types: logic raises these, the CLI and the GUI show them."""
from __future__ import annotations

from pathlib import Path


class DelineateError(Exception):
    """Base class of every error Delineate reports to a user."""


class FormatError(DelineateError):
    """A file or folder cannot be read or written; the message names it and the problem."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class TooLargeError(FormatError):
    """A header declares more data than the file holds or memory allows."""


class GeometryError(DelineateError):
    """Grids that should match do not, or a geometry is not usable."""


class Cancelled(DelineateError):
    """Long work was cancelled by the user."""
