"""The log file support asks for: versions at start, errors as they happen, never patient data.

A rotating ``delineate.log`` (1 MB, 3 old files) in the user log folder (platformdirs), or
``$DELINEATE_LOG_DIR``. Only Delineate's own loggers reach it: third-party libraries (pydicom's
warnings quote element values, patient names among them) stay on stderr. What Delineate writes is
scrubbed: error messages name files, and folder and file names often carry a patient's name
(exports named ``DOE^JOHN/``), so every path in a message becomes its suffix only (``<path>.dcm``)
and command arguments are never logged, only the command's name. Nothing reads DICOM fields here.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Optional

ENV = "DELINEATE_LOG_DIR"
FILENAME = "delineate.log"
#: the loggers that write to the file: Delineate's packages (``logging.getLogger(__name__)``) and "delineate"
OWN = ("delineate", "core", "surfaces", "formats", "inference", "store", "export", "pacs", "app", "cli", "gui")
#: whose versions the first lines give (read from package metadata: nothing heavy is imported)
VERSIONED = ("delineate", "torch", "monai", "PySide6-Essentials", "vtk", "pydicom", "highdicom", "SimpleITK",
             "numpy")
_PATHLIKE = re.compile(r"""(?:[A-Za-z]:)?[^\s'"(),:;]*[/\\][^\s'"(),;]*""")
_started: Optional[Path] = None
log = logging.getLogger("delineate")


def log_dir() -> Path:
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    from platformdirs import user_log_dir

    return Path(user_log_dir("Delineate", "Delineate"))


def log_file() -> Path:
    return log_dir() / FILENAME


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "(source checkout)" if name == "delineate" else "not installed"
    return out


def scrub(text: str, paths=()) -> str:
    """``text`` with every file path (the ``paths`` given, then anything path-like) reduced to its suffix."""
    for p in sorted({str(p) for p in paths if p}, key=len, reverse=True):
        text = text.replace(p, _hidden(p))
    return _PATHLIKE.sub(lambda m: _hidden(m.group(0)), text)


def _hidden(path: str) -> str:
    return "<path>" + "".join(Path(path.rstrip("/\\")).suffixes[-2:])


class _Scrubbed(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return scrub(super().formatMessage(record))

    def formatException(self, ei) -> str:
        """The traceback's frames (code locations, not data) and the exception scrubbed."""
        import traceback

        etype, exc, tb = ei
        frames = "".join(traceback.format_tb(tb))
        return f"Traceback (most recent call last):\n{frames}{etype.__name__}: {scrub(str(exc), _paths_of(exc))}"


def _paths_of(exc) -> list:
    return [getattr(exc, "path", None)]


def start(component: str) -> Optional[Path]:
    """Open the log (once per process), write who started and the versions, and log uncaught
    exceptions. Returns the file, or None when it cannot be written (never an error for the user)."""
    global _started
    if _started is not None:
        return _started
    from logging.handlers import RotatingFileHandler  # socket, pickle, queue...: only when a log starts

    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        print(f"warning: no log file ({path.parent}: {exc.strerror or exc})", file=sys.stderr)
        return None
    handler.setFormatter(_Scrubbed("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    console = logging.StreamHandler()  # warnings still reach the terminal, as logging's last resort did
    console.setLevel(logging.WARNING)
    for name in OWN:  # on our loggers, not the root: other libraries' records never reach the file
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if name != "delineate":  # "delineate" is the log's own (errors the user was already shown)
            logger.addHandler(console)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    _hook_uncaught()
    _started = path
    # package metadata takes tens of ms: read beside start-up, not before the window
    log.info("start %s (python %s, %s)", component, sys.version.split()[0], sys.platform)
    threading.Thread(target=lambda: log.info("versions: %s", ", ".join(
        f"{k} {v}" for k, v in versions().items())), name="log-versions", daemon=True).start()
    return path


def error(exc: BaseException, where: str = "") -> None:
    """A DelineateError shown to the user: its class and message, paths reduced to suffixes."""
    log.error("%s%s: %s", f"{where}: " if where else "", type(exc).__name__, scrub(str(exc), _paths_of(exc)))


def _hook_uncaught() -> None:
    previous, previous_thread = sys.excepthook, threading.excepthook

    def hook(etype, exc, tb):
        log.error("uncaught %s", etype.__name__, exc_info=(etype, exc, tb))
        previous(etype, exc, tb)

    def thread_hook(args):
        if args.exc_type is not SystemExit:
            log.error("uncaught %s in a thread", args.exc_type.__name__,
                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        previous_thread(args)

    sys.excepthook, threading.excepthook = hook, thread_hook
