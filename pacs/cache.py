"""The retrieve cache: one folder per series (named by its Series Instance UID) under a root the user
may empty at any time, kept under a size limit by evicting the least recently used series.

A series enters the cache only when its transfer is complete: it is retrieved into a hidden temp
folder beside the others and renamed into place in one step, so a transfer cancelled, failed or
killed halfway never leaves a series that looks complete. Temp folders of dead processes are swept
on opening."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from pacs.nodes import DEFAULT_CACHE_GB

_PARTIAL = ".partial-"  # + pid + "-" + random


def default_root() -> Path:
    env = os.environ.get("DELINEATE_PACS_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("Delineate", "Delineate")) / "pacs"


def _key(series_uid: str) -> str:
    """A folder name for a UID the server sent (untrusted: anything but a UID is hashed)."""
    if re.fullmatch(r"[0-9][0-9.]{0,63}", series_uid or "") and ".." not in series_uid:
        return series_uid
    return "x" + hashlib.sha256((series_uid or "").encode()).hexdigest()[:32]


def file_name(sop_instance_uid: str) -> str:
    """The file an instance is retrieved into: its UID, or a hash of whatever else a server sent."""
    return _key(str(sop_instance_uid)) + ".dcm"


def _size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                total += p.stat().st_size
    return total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Entry:
    series_uid: str
    path: Path
    size: int
    last_used: float


class SeriesCache:
    def __init__(self, root: Optional[str | Path] = None, max_bytes: Optional[int] = None):
        self.root = Path(root) if root else default_root()
        self.max_bytes = int(max_bytes if max_bytes is not None else DEFAULT_CACHE_GB * 1e9)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep()

    def sweep(self) -> list[Path]:
        """Remove the temp folders of transfers whose process is gone (killed halfway)."""
        removed = []
        for p in self.root.glob(_PARTIAL + "*"):
            pid = p.name[len(_PARTIAL):].split("-", 1)[0]
            if not pid.isdigit() or not _alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    def get(self, series_uid: str) -> Optional[Path]:
        """The cached folder of a complete series (and mark it used), or None."""
        path = self.root / _key(series_uid)
        if not path.is_dir():
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return path

    @contextlib.contextmanager
    def incoming(self, series_uid: str) -> Iterator[Path]:
        """Yield an empty temp folder to retrieve ``series_uid`` into; when the block ends normally it
        becomes the series' cache folder in one rename, on any exception (cancel included) it is
        removed. Then the cache is trimmed to its limit, sparing this series."""
        tmp = Path(tempfile.mkdtemp(prefix=f"{_PARTIAL}{os.getpid()}-", dir=self.root))
        try:
            yield tmp
            final = self.root / _key(series_uid)
            try:
                os.rename(tmp, final)  # atomic; fails if another retrieve of the same series won
            except OSError:
                if not final.is_dir():
                    raise
            os.utime(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.trim(keep=series_uid)

    def entries(self) -> list[Entry]:
        """The complete series, least recently used first."""
        out = []
        for p in self.root.iterdir():
            if p.is_dir() and not p.name.startswith("."):
                with contextlib.suppress(OSError):
                    out.append(Entry(p.name, p, _size(p), p.stat().st_mtime))
        return sorted(out, key=lambda e: e.last_used)

    def size(self) -> int:
        return sum(e.size for e in self.entries())

    def trim(self, keep: Optional[str] = None) -> list[str]:
        """Evict least recently used series until the cache fits its limit; ``keep`` stays even
        when it alone is over the limit (it is what the user is opening)."""
        entries = self.entries()
        total = sum(e.size for e in entries)
        evicted = []
        for e in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and e.series_uid == _key(keep):
                continue
            shutil.rmtree(e.path, ignore_errors=True)
            total -= e.size
            evicted.append(e.series_uid)
        return evicted

    def clear(self) -> int:
        """Empty the cache (transfers running in other processes keep their temp folders)."""
        n = 0
        for e in self.entries():
            shutil.rmtree(e.path, ignore_errors=True)
            n += 1
        self.sweep()
        return n

    def touch(self, series_uid: str, when: Optional[float] = None) -> None:
        """Mark a series used at ``when`` (default now)."""
        when = time.time() if when is None else when
        os.utime(self.root / _key(series_uid), (when, when))
