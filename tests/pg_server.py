"""A real PostgreSQL (Debian `postgresql`) for the team-store tests: a temporary cluster made with
initdb in a folder on /dev/shm (tmpfs where there is one), started with pg_ctl on a free port and a
unix socket in that folder, stopped and removed after. As root (CI), the cluster runs as the
`postgres` user (PostgreSQL refuses root). When it cannot start, ``PostgresError`` says why: the
tests fail, they never skip.

The database and role are made as README's "Team store (PostgreSQL)" says (a login role that owns
its database), so the tests check those steps too; each test gets a fresh database from ``fresh()``.

Also the parametrised pytest fixture ``store_root``: a store location on each backend ("sqlite": the
folder; "postgresql": a URL whose ``files=`` is that same folder), imported by the store tests."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.pacs_server import free_port

# Debian keeps the server's programs in a folder per major version (15 on bookworm, 17 on trixie)
BIN_DIRS = tuple(sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")),
                        key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
                        reverse=True)) + ("/usr/local/bin", "/usr/bin")
ROLE, PASSWORD = "delineate", "not-a-secret"


class PostgresError(RuntimeError):
    pass


def _binary(name: str) -> str:
    for d in BIN_DIRS:
        if os.access(Path(d) / name, os.X_OK):
            return str(Path(d) / name)
    raise PostgresError(f"{name} not found in {BIN_DIRS}: apt-get install postgresql (make system-deps)")


class Postgres:
    """``with Postgres() as pg:`` a running server; ``pg.url(db, files)`` a store URL for the
    README's role, ``pg.fresh()`` a new empty database owned by it."""

    def __init__(self) -> None:
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.folder = Path(tempfile.mkdtemp(prefix="delineate-pg-", dir=shm))
        self.data = self.folder / "data"
        self.port = free_port()
        self.user = None  # the system user the server runs as (None: the current one)
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                self.user = pwd.getpwnam("nobody")
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        self.started = False

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        if self.user is not None:  # initdb and postgres refuse to run as root
            args = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups"] + args
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(f"{args[0]}: {exc}") from None

    def start(self) -> "Postgres":
        try:
            initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
            r = self._run([initdb, "-D", str(self.data), "-U", "admin", "--auth=trust", "-E", "UTF8",
                           "--locale=C", "--no-sync"])
            if r.returncode:
                raise PostgresError(f"initdb failed: {(r.stderr or r.stdout)[-1500:]}")
            with open(self.data / "pg_hba.conf", "w") as f:  # the socket: trust; TCP: password, as a hospital's
                f.write("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
            opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
                    "-c shared_buffers=16MB")
            r = self._run([pg_ctl, "-D", str(self.data), "-l", str(self.folder / "log"), "-o", opts, "-w",
                           "-t", "60", "start"], timeout=90)
            if r.returncode:
                raise PostgresError(f"pg_ctl start failed: {(r.stderr or r.stdout)[-800:]} {self.log_tail()}")
            self.started = True
            # the README's steps: a login role with a password, owning the store's database
            self.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' CREATEDB")
            return self
        except BaseException:
            self.stop()
            raise

    def admin(self, sql: str, db: str = "postgres") -> str:
        r = subprocess.run([_binary("psql"), "-h", str(self.folder), "-p", str(self.port), "-U", "admin", "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-Atc", sql], capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise PostgresError(f"psql {sql!r}: {r.stderr.strip()[-800:]}")
        return r.stdout

    def fresh(self) -> str:
        name = "store_" + uuid.uuid4().hex[:10]
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def url(self, db: str, files, tcp: bool = False) -> str:
        """The store URL: over TCP with the password (as a workstation would), else the socket."""
        if tcp:
            return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{db}?files={files}"
        return f"postgresql://{ROLE}@/{db}?host={self.folder}&port={self.port}&files={files}"

    def dump(self, db: str) -> bytes:
        r = subprocess.run([_binary("pg_dump"), "-h", str(self.folder), "-p", str(self.port), "-U", "admin", db],
                           capture_output=True, timeout=60)
        if r.returncode:
            raise PostgresError(f"pg_dump {db}: {r.stderr.decode(errors='replace')[-800:]}")
        return r.stdout

    def log_tail(self, n: int = 1500) -> str:
        try:
            return (self.folder / "log").read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.started:
            self._run([_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Postgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session")
def pg_server():
    started = time.perf_counter()
    try:
        server = Postgres().start()
    except PostgresError as exc:
        pytest.fail(f"PostgreSQL could not start for the team-store tests: {exc}", pytrace=False)
    server.start_s = time.perf_counter() - started
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_root(request, tmp_path):
    """A store location on each backend; its files are under tmp_path/"store" either way."""
    files = tmp_path / "store"
    if request.param == "sqlite":
        return files
    server = request.getfixturevalue("pg_server")
    files.mkdir()
    return server.url(server.fresh(), files)
