"""Decode untrusted files in a child process, so a native crash (SIGABRT in ITK or GDCM), a hang
or a memory bomb becomes a FormatError naming the file while the caller and its open case live on.

Each read forks a fresh child: from the caller itself when it is single-threaded (CLI, tests),
else from a forkserver that has already imported the readers (no import cost per read, no Qt
threads inherited). The child runs under an
address-space limit and reports progress, the first slice and the result over a pipe. A large
array crosses as a file in /dev/shm that the caller maps, not copies (a multiprocessing pipe moves
only ~110 MB/s here); readers that allocate their output with ``output_array`` decode straight
into it, so neither side ever holds two copies. ``DELINEATE_DECODE_IN_PROCESS=1`` decodes in the
caller (trusted internal use).
"""
from __future__ import annotations

import contextlib
import glob
import mmap
import multiprocessing as mp
import os
import tempfile
import uuid
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.errors import Cancelled, DelineateError, FormatError
from core.progress import CancelToken, ProgressFn, no_progress

IN_PROCESS_ENV = "DELINEATE_DECODE_IN_PROCESS"
STALL_ENV = "DELINEATE_DECODE_TIMEOUT_S"
_DEFAULT_STALL_S = 120.0  # no word from the child for this long: it hangs
_SHARE_ABOVE = 1 << 20  # arrays smaller than this are simply pickled
_PRELOAD = ["formats.sandbox", "formats.io", "formats.nifti", "formats.itk_formats", "formats.raster",
            "formats.dicom.load"]
_lock = threading.Lock()
_ctx = None

#: the last child's peak resident memory and its resident memory when it started, in bytes
#: (a forked child starts with its caller's pages; measurements and the fuzz test read these)
last_peak_rss = 0
last_start_rss = 0
_scratch = {"prefix": None, "count": 0, "arrays": []}  # set in a decoding child only


def in_process() -> bool:
    """Decode here: asked to, or a daemon process (a DataLoader worker), which may not have children."""
    return os.environ.get(IN_PROCESS_ENV, "") not in ("", "0") or mp.current_process().daemon


def _fork_safe() -> bool:
    """No other Python thread and no Qt (whose threads Python cannot see); BLAS pools are fork-aware."""
    import sys

    return threading.active_count() == 1 and not any(m.startswith("PySide6") for m in sys.modules)


def _context(preload: tuple[str, ...]):
    """Plain fork from a single-threaded caller (the CLI, tests: no second interpreter to start),
    after importing the reader it will need here, once; a forkserver that preloaded every reader
    from a threaded caller (the GUI: forking its threads' locks is unsafe)."""
    global _ctx
    with _lock:
        if _fork_safe():
            import importlib

            for name in preload:
                importlib.import_module(name)
            return mp.get_context("fork")
        if _ctx is None:
            if "forkserver" in mp.get_all_start_methods():
                _ctx = mp.get_context("forkserver")
                _ctx.set_forkserver_preload(_PRELOAD)
            else:  # Windows: a fresh interpreter per read
                _ctx = mp.get_context("spawn")
        return _ctx


def _stall_limit() -> float:
    try:
        return float(os.environ.get(STALL_ENV, _DEFAULT_STALL_S))
    except ValueError:
        return _DEFAULT_STALL_S


# ---------------------------------------------------------------- child side

def output_array(shape, dtype) -> np.ndarray:
    """An empty array for a reader's result: in a decoding child it lives in a shared file the
    caller maps (no copy back); elsewhere it is ``np.empty``."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if _scratch["prefix"] is None or nbytes < _SHARE_ABOVE:
        return np.empty(shape, dtype)
    _scratch["count"] += 1
    for prefix in _scratch_places(_scratch["prefix"]):  # /dev/shm can be tiny (64 MiB in Docker)
        name = f"{prefix}-{_scratch['count']}"
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, nbytes)  # ENOSPC now, not SIGBUS on a write into a full tmpfs
            else:
                os.ftruncate(fd, nbytes)
            mm = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            break
        except OSError:
            os.close(fd)
            os.unlink(name)
    else:
        raise MemoryError("no room for the image in the shared-memory or temporary folder")
    os.close(fd)
    arr = np.frombuffer(mm, dtype=dtype).reshape(shape)
    _scratch["arrays"].append((arr, name))
    return arr


def _scratch_places(prefix: str) -> list[str]:
    fallback = os.path.join(tempfile.gettempdir(), os.path.basename(prefix))
    return [prefix] if fallback == prefix else [prefix, fallback]


def _shared_file(arr: np.ndarray) -> Optional[str]:
    for held, name in _scratch["arrays"]:
        if np.shares_memory(arr, held) and arr.nbytes == held.nbytes and arr.flags.c_contiguous:
            return name
    return None

def _limit_memory() -> None:
    import ctypes

    from formats.limits import decode_address_limit

    try:
        import resource
    except ImportError:  # Windows: no address-space limit; the header checks still apply
        return

    try:  # one malloc arena per thread would reserve 64 MiB of address space each
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
    limit = _address_space() + decode_address_limit()  # a forked child inherits the caller's mappings
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _statm(field: int) -> int:
    """Bytes of /proc/self/statm's ``field`` (0: address space, 1: resident); 0 where there is none."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[field]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _address_space() -> int:
    return _statm(0)


def _rss() -> int:
    return _statm(1)


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(conn, cwd: str, env: dict, scratch: str, fn: Callable, args: tuple, kwargs: dict,
           wants_first: bool) -> None:
    import sys

    conn.send(("start", _rss()))
    before = set(sys.modules)
    _scratch["prefix"] = scratch
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    os.environ[IN_PROCESS_ENV] = "1"  # readers called here must not fork again
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the caller, who ends us
    _limit_memory()
    lock = threading.Lock()  # readers may report from their own threads

    def send(*msg) -> None:
        with lock:
            conn.send(msg)

    kwargs = dict(kwargs, progress=lambda f, m="": send("progress", float(f), str(m)))
    if wants_first:
        kwargs["on_first_slice"] = lambda k, plane, geo: send("first", k, np.array(plane), geo)

    def finish(*msg) -> None:  # the caller imports what decoding needed, so its next forks start with it
        send("imported", [m for m in sys.modules if m not in before and not m.startswith(("_", "__mp"))])
        send(*msg)

    try:
        result = fn(*args, **kwargs)
    except DelineateError as exc:
        finish("error", type(exc), getattr(exc, "path", None), getattr(exc, "problem", None), str(exc), _peak_rss())
        return
    except MemoryError:
        finish("error", FormatError, None,
               "needs more memory than a decoder may use (DELINEATE_MAX_IMAGE_BYTES); refused", "", _peak_rss())
        return
    except BaseException as exc:  # noqa: BLE001 - a reader's own failure, reported against the file
        finish("error", FormatError, None, f"cannot be read ({type(exc).__name__}: {exc})", "", _peak_rss())
        return
    arr = getattr(result, "array", None)
    if isinstance(arr, np.ndarray) and arr.nbytes >= _SHARE_ABOVE:
        name = _shared_file(arr)
        if name is None:  # a reader that allocated its own array: one copy into a shared file
            shared = output_array(arr.shape, arr.dtype)
            shared[...] = arr
            name = _shared_file(shared)
        state = {k: v for k, v in vars(result).items() if k != "array"}
        finish("array", type(result), state, name, arr.shape, arr.dtype.str, _peak_rss())
    else:
        finish("result", result, _peak_rss())


# ---------------------------------------------------------------- caller side

def _receive_array(cls, state, name, shape, dtype) -> object:
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    with open(name, "r+b") as fh:
        mm = mmap.mmap(fh.fileno(), nbytes)
    arr = np.frombuffer(mm, dtype=dtype).reshape(shape)  # writable; freed with the array
    obj = cls.__new__(cls)
    vars(obj).update(state)
    obj.array = arr  # validated by the child's constructor
    return obj


def _import_quietly(names) -> None:
    import importlib
    import sys

    for name in names:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a speed-up only
                pass


_swept = False


def _scratch_prefix() -> str:
    global _swept
    folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    if not _swept:  # images left by a caller that died mid-read would hold memory until reboot
        _swept = True
        for name in glob.glob(os.path.join(folder, "delineate-decode-*")):
            try:
                pid = int(os.path.basename(name).split("-")[2])
                os.kill(pid, 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    os.unlink(name)
            except (ValueError, IndexError, OSError):
                pass
    return os.path.join(folder, f"delineate-decode-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def _died(path: str, exitcode: Optional[int]) -> FormatError:
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGKILL:
            return FormatError(path, f"the reader was killed ({name}; out of memory?) — the file is damaged "
                                     f"or too large to decode")
        return FormatError(path, f"the reader crashed (signal {sig}, {name}) — the file is damaged or not supported")
    return FormatError(path, f"the reader stopped unexpectedly (exit code {exitcode}) — the file is damaged "
                             f"or not supported")


def _end(proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(5)


def call(path: str | Path, fn: Callable, *args, progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None, on_first_slice=None, preload: tuple[str, ...] = (), **kwargs):
    """``fn(*args, progress=..., [on_first_slice=...], **kwargs)`` in a child process.

    ``fn`` is a module-level function; its result comes back (a Volume's or LabelMap's array
    without a second copy). Its DelineateErrors are re-raised here; a crash, a hang (no word for
    $DELINEATE_DECODE_TIMEOUT_S seconds) or running out of its memory is a FormatError naming
    ``path``. ``cancel`` ends the child at once. ``preload`` names the modules ``fn`` will import."""
    global last_peak_rss, last_start_rss
    path = str(path)
    ctx = _context(preload)
    parent, child = ctx.Pipe(duplex=False)
    scratch = _scratch_prefix()
    proc = ctx.Process(target=_child, daemon=True, name="delineate-decode",
                       args=(child, os.getcwd(), dict(os.environ), scratch, fn, args, kwargs,
                             on_first_slice is not None))
    try:
        proc.start()
    except (OSError, EOFError) as exc:  # the forkserver could not start or import the readers
        parent.close()
        raise FormatError(path, f"cannot start a reader process ({type(exc).__name__}: {exc})") from None
    finally:
        child.close()
    stall = _stall_limit()
    heard = time.monotonic()
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled by the user")
            if parent.poll(0.05):
                try:
                    msg = parent.recv()
                except (EOFError, OSError):
                    proc.join(5)
                    raise _died(path, proc.exitcode) from None
                heard = time.monotonic()
                kind = msg[0]
                if kind == "start":
                    last_start_rss = msg[1]
                elif kind == "imported":
                    if ctx.get_start_method() == "fork":
                        _import_quietly(msg[1])
                elif kind == "progress":
                    progress(msg[1], msg[2])
                elif kind == "first":
                    on_first_slice(msg[1], msg[2], msg[3])
                elif kind == "result":
                    last_peak_rss = msg[2]
                    return msg[1]
                elif kind == "array":
                    last_peak_rss = msg[6]
                    return _receive_array(*msg[1:6])
                elif kind == "error":
                    _, cls, epath, problem, text, last_peak_rss = msg
                    if issubclass(cls, FormatError):
                        raise cls(path if epath is None else epath, problem) from None
                    raise cls(text) from None
            elif not proc.is_alive() and not parent.poll(0):
                raise _died(path, proc.exitcode)
            elif time.monotonic() - heard > stall:
                raise FormatError(path, f"the reader made no progress for {stall:.0f} s and was stopped — "
                                        f"the file is damaged or not supported")
    finally:
        _end(proc)
        parent.close()
        for prefix in _scratch_places(scratch):
            for name in glob.glob(glob.escape(prefix) + "-*"):
                with contextlib.suppress(OSError):
                    os.unlink(name)
