"""Where a store lives: a folder (SQLite index and files inside it, the default) or a PostgreSQL
connection URL with the shared folder for its files::

    /data/delineate-store
    postgresql://reviewer:secret@db.hospital.local:5432/delineate?files=/mnt/delineate-store

Mask and image files of a PostgreSQL store go to a shared folder (``files=``, an absolute path as
this workstation mounts it), not into the database as large objects: a CT image is tens of MB and
the readers (nibabel, SimpleITK) want files; the folder keeps the SQLite store's layout, atomic
writes (temp, fsync, rename, never-reused names) and check()/repair(), so one code path serves both
backends, and the database stays small enough to back up and restore in minutes. The price: every
workstation must mount the folder (SMB/NFS) - each at its own path, which is why the path is part of
this workstation's URL. Any other query parameter (``sslmode``, ``host`` for a socket folder,
``connect_timeout``...) goes to libpq unchanged."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core.errors import DelineateError

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(location) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(URL_SCHEMES)


def default_location() -> Union[Path, str]:
    """$DELINEATE_STORE (a folder or a postgresql:// URL), else the user's data folder."""
    env = os.environ.get("DELINEATE_STORE", "").strip()
    if env:
        return env if is_url(env) else Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Delineate", "Delineate")) / "store"


def redacted(url: str) -> str:
    """The URL as shown in messages and logs: its password replaced."""
    return re.sub(r"(://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)


@dataclass(frozen=True)
class Location:
    files: Path  # the folder holding cases/ (and, for SQLite, index.sqlite)
    url: Optional[str] = None  # the PostgreSQL URL; None: SQLite
    conninfo: str = ""  # the URL without ``files=``, for libpq

    @property
    def shown(self) -> str:
        return redacted(self.url) if self.url else str(self.files)


def resolve(location=None) -> Location:
    """The store at ``location`` (a folder path or a URL; None: the default)."""
    if location is None:
        location = default_location()
    if isinstance(location, Location):
        return location
    if not is_url(str(location)) or isinstance(location, Path):
        return Location(Path(location))
    url = str(location).strip()
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    files = [v for k, v in query if k == "files"]
    if not files or not files[-1]:
        raise DelineateError(f"{redacted(url)}: a PostgreSQL store needs ?files=/shared/folder, the folder "
                             "(mounted on every workstation) that holds its images and masks")
    folder = Path(files[-1]).expanduser()
    if not folder.is_absolute():
        raise DelineateError(f"{redacted(url)}: files={files[-1]} must be an absolute path")
    rest = urlencode([(k, v) for k, v in query if k != "files"])
    return Location(folder, url, urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)))
