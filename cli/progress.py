"""The progress bar long commands draw on stderr (only on a terminal: logs and pipes stay clean)."""
from __future__ import annotations

import sys


def progress_bar(fraction: float, message: str = "") -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(round(width * max(0.0, min(1.0, fraction))))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {message[:50]:<50}")
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()
