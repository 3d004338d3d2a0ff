"""The child side of a TorchScript model's process, run as a script by a fresh interpreter
(``python -I sandbox_child.py MODEL DEVICE``; inference/sandboxed_torchscript.py is the parent side).
It imports nothing of the app and no torch until it has confined itself.

TorchScript is a program, so a TorchScript model runs in a child process (a new interpreter, never a
fork of the app): a crash or a hang ends that process, not the app. On Linux with Landlock (5.13+)
the child confines itself before it imports torch -- and so before any thread exists: it may read
only the Python and system libraries and the model file, write no file (on CUDA: the GPU devices
and /proc, which the driver needs; measured on an H200), and (kernel 6.7+) open no TCP connection
nor signal processes outside itself. Images go in and probabilities come out over its stdin/stdout
as length-prefixed frames (a JSON line, then raw float32 bytes): the parent never unpickles what the
child sends.

What it can still do: compute for as long as the time limit allows, use memory and CPU, and, where
Landlock is missing (other systems, older kernels), everything the user's account can do.
"""
from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path





# -- wire format: frames of <length><JSON line><raw float32 bytes> --------------------------------------
def write_frame(f, blob: bytes) -> None:
    f.write(struct.pack("<Q", len(blob)) + blob)
    f.flush()


def read_frame(f) -> bytes:
    """One frame; EOFError when the other side is gone."""
    head = f.read(8)
    if len(head) < 8:
        raise EOFError
    size = struct.unpack("<Q", head)[0]
    blob = f.read(size)
    if len(blob) < size:
        raise EOFError
    return blob


def pack(kind: str, array=None, **fields) -> bytes:
    head = dict(fields, kind=kind)
    body = b""
    if array is not None:
        import numpy as np

        array = np.ascontiguousarray(array, dtype=np.float32)
        head["shape"] = [int(s) for s in array.shape]
        body = array.tobytes()
    return json.dumps(head).encode() + b"\n" + body


def unpack(blob: bytes):
    import numpy as np

    line, _, body = blob.partition(b"\n")
    try:
        head = json.loads(line)
        shape = head.get("shape")
        if not isinstance(head, dict) or not isinstance(head.get("kind"), str):
            raise ValueError("no kind")
        if shape is None:
            return head, None
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
                and int(np.prod(shape, dtype=np.int64)) * 4 == len(body)):
            raise ValueError("shape does not match the data")
        return head, np.frombuffer(body, dtype=np.float32).reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed frame ({exc})") from None


# -- the child ------------------------------------------------------------------------------------------
_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
_FS_FILE = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # rights that apply to a file


def _landlock(read: list[str], device_rw: list[str]) -> str:
    """Confine this process (and every thread it starts) to reading ``read`` and reading/writing the
    devices in ``device_rw``. Returns what was applied, in words."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return "separate process (no Landlock on this system)"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    create, add_rule, restrict = ctypes.c_long(444), ctypes.c_long(445), ctypes.c_long(446)
    abi = libc.syscall(create, None, ctypes.c_long(0), ctypes.c_long(1))
    if abi < 1:
        return "separate process (Landlock unavailable in this kernel)"
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)

    class Ruleset(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = Ruleset(fs, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)  # TCP bind/connect; signals, abstract sockets
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_long(size), ctypes.c_long(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    rw = _FS_READ | (1 << 1) | (1 << 14) | (1 << 15)  # + WRITE_FILE, TRUNCATE (opening with "w"), IOCTL_DEV
    for paths, rights in ((read, _FS_READ), (device_rw, rw)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            allowed = rights & fs & (_FS_FILE if not os.path.isdir(path) else ~0)
            rule = PathBeneath(allowed, fd)
            ok = libc.syscall(add_rule, ctypes.c_long(ruleset), ctypes.c_long(1), ctypes.byref(rule), ctypes.c_long(0))
            os.close(fd)
            if ok < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.syscall(restrict, ctypes.c_long(ruleset), ctypes.c_long(0)) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset)
    writes = "writes only the GPU devices and /proc" if device_rw else "writes no file"
    return f"confined process (Landlock ABI {abi}: reads libraries and the model only, {writes}" + \
        (", no TCP" if abi >= 4 else "") + ")"


def _readable(model: str, device: str) -> tuple[list[str], list[str]]:
    """What the child needs to read: Python, its packages, system libraries, CPU facts, the model."""
    import importlib.util
    import sysconfig

    read = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", "/lib", "/lib64", "/etc/ld.so.cache",
            "/proc/cpuinfo", "/proc/meminfo", f"/proc/{os.getpid()}", "/sys/devices/system/cpu",
            "/sys/fs/cgroup", "/dev/null", "/dev/urandom", model}
    read.update(p for p in sysconfig.get_paths().values() if p)
    for pkg in ("torch", "numpy"):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.origin:
            read.add(str(Path(spec.origin).parent.parent))  # the site-packages folder holding it
    devices = []
    if device.startswith("cuda"):  # the driver writes to /proc entries (other processes stay out of reach)
        read.update(("/proc", "/sys", "/usr/local", "/opt"))
        devices = ["/dev", "/proc"]
    return sorted(read), devices


def main(model: str, device: str) -> None:  # pragma: no cover - runs in the child
    """Confine, load, then answer ``run`` frames until the parent closes the pipe."""
    channel_in, channel_out = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the model's own prints and any crash report stay out of the channel
        os.dup2(null, fd)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # writes no file, also where Landlock is missing
    except (ImportError, ValueError, OSError):
        pass
    try:
        confinement = _landlock(*_readable(model, device))
        import contextlib

        import torch

        module = torch.jit.load(model, map_location=device).eval()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        write_frame(channel_out, pack("error", message=_line(exc)))
        return
    write_frame(channel_out, pack("ready", confinement=confinement))
    while True:
        try:
            head, x = unpack(read_frame(channel_in))
        except (EOFError, OSError, ValueError):
            return
        if head["kind"] != "run" or x is None:
            return
        try:
            cast = head.get("autocast")
            ctx = torch.autocast(torch.device(device).type, dtype=getattr(torch, cast)) if cast in (
                "bfloat16", "float16") else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                y = module(torch.from_numpy(x.copy()).to(device))
            y = y[0] if isinstance(y, (list, tuple)) else y
            if not isinstance(y, torch.Tensor):
                raise TypeError(f"the model returned {type(y).__name__}, not a tensor")
            write_frame(channel_out, pack("result", y.detach().float().cpu().numpy()))
        except Exception as exc:  # noqa: BLE001 - the model's own error; the process is fine
            write_frame(channel_out, pack("error", message=_line(exc)))


def _line(exc: BaseException) -> str:
    """One line: TorchScript errors carry the script's traceback first and the cause last."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = (lines[-1] if "Traceback" in str(exc) else lines[0]) if lines else ""
    if text.startswith(type(exc).__name__):
        return text[:300]
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
