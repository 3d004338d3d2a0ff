"""Team work on one store: cases assigned to a reviewer, a lock per case so two reviewers never edit
the same case at once, and an audit trail of every state change (who, when, from which host).

A lock is a row in ``locks`` with an expiry on the database's clock (never a client's, whose clocks
disagree): taken when a case is opened for editing, renewed by a heartbeat (``HeldLock``, every
quarter of its timeout), released on close. A client that dies (kill -9, a crash, a pulled network
cable) stops renewing, and its lock expires after its timeout; the next reviewer to open the case
takes it over, and the audit trail says so. On the holder's own host, a lock whose process is gone
counts as expired at once (a crash, then a restart, reopens the case without waiting). A lock that
is alive but stale (a colleague went home with the case open) can be broken with a reason, which is
recorded. A lock refuses saves and state changes by anyone but its holder (its token, or the
process that took it).

Works the same on SQLite (a laptop: one reviewer, several windows or processes) and PostgreSQL.
Times in the audit trail are UTC, ISO 8601; hosts are host names; no patient identifier enters."""
from __future__ import annotations

import atexit
import datetime
import getpass
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Optional

from core.errors import DelineateError

AUDIT_FIELDS = ("id", "case_id", "at", "actor", "login", "host", "action", "old_state", "new_state", "detail")


def this_host() -> str:
    return socket.gethostname() or "unknown host"


def _gone(host: str, pid: int) -> bool:
    """Whether the process holding a lock is known to be dead: it ran on this host and no longer
    exists (a crash, kill -9). Elsewhere - or not sure - only the lock's timeout tells."""
    if host != this_host() or pid == os.getpid() or os.name != "posix":  # os.kill on Windows terminates
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False


def this_login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True)
class LockInfo:
    case_id: str
    holder: str
    host: str
    pid: int
    taken: str  # UTC, ISO 8601
    expires_in: float  # seconds, on the database's clock, unless renewed

    def describe(self) -> str:
        return (f"locked by {self.holder} on {self.host} since {self.taken.replace('T', ' ')[:19]} UTC "
                f"(expires in {max(self.expires_in, 0):.0f} s unless renewed)")


class CaseLocked(DelineateError):
    """Someone else holds the case's lock; ``info`` says who, where and since when."""

    def __init__(self, info: LockInfo) -> None:
        self.info = info
        super().__init__(f"case {info.case_id} is {info.describe()}: wait for it to be closed, "
                         "or break the lock with a reason")


class TeamFeatures:
    """Mixed into store.corrections.CorrectionsStore (``self.index``, ``self.lock_timeout``)."""

    # -- audit -----------------------------------------------------------------------------------
    def _audit(self, case_id: str, action: str, actor: str, old_state=None, new_state=None, detail: str = "",
               at: Optional[str] = None) -> None:
        """One line of the trail, inside the caller's write transaction (with the change, or not at all)."""
        at = at or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.index.execute("INSERT INTO audit (case_id, at, actor, login, host, action, old_state, new_state, detail) "
                           "VALUES (?,?,?,?,?,?,?,?,?)", (case_id, at, actor or this_login(), this_login(),
                                                          this_host(), action, old_state, new_state, detail or ""))

    def audit(self, case_id: Optional[str] = None) -> list[dict]:
        """The trail, oldest first: dicts of AUDIT_FIELDS."""
        q = f"SELECT {', '.join(AUDIT_FIELDS)} FROM audit" + (" WHERE case_id = ?" if case_id else "") + " ORDER BY id"
        return [{k: r[k] for k in AUDIT_FIELDS} for r in self.index.query(q, (case_id,) if case_id else ())]

    # -- assignment -----------------------------------------------------------------------------
    def assign(self, case_id: str, assignee: str, actor: str = "") -> None:
        """Assign the case to ``assignee`` ("": to nobody)."""
        with self.index.writing():
            row = self._case_row(case_id)
            self.index.execute("UPDATE cases SET assignee = ? WHERE id = ?", (assignee or None, case_id))
            self._audit(case_id, "assigned", actor, row["state"], row["state"],
                        f"{row['assignee'] or 'nobody'} -> {assignee or 'nobody'}")

    def _case_row(self, case_id: str):
        row = self.index.one("SELECT state, assignee FROM cases WHERE id = ?", (case_id,))
        if row is None:
            raise DelineateError(f"no case {case_id} in the store")
        return row

    # -- locks ----------------------------------------------------------------------------------
    def _lock_row(self, case_id: str, live: bool = True):
        return self.index.one(f"SELECT case_id, holder, host, pid, token, taken, expires - {self.index.now} AS left_s "
                              "FROM locks WHERE case_id = ?" + (f" AND expires > {self.index.now}" if live else ""),
                              (case_id,))

    @staticmethod
    def _info(row) -> LockInfo:
        return LockInfo(row["case_id"], row["holder"], row["host"], int(row["pid"]), row["taken"], float(row["left_s"]))

    def lock_of(self, case_id: str) -> Optional[LockInfo]:
        """Who holds the case's lock now (None: nobody, or only an expired lock)."""
        row = self._lock_row(case_id)
        return self._info(row) if row else None

    def _check_not_locked(self, case_id: str, token: Optional[str]) -> None:
        row = self._lock_row(case_id)
        if row is None or row["token"] == token or (row["host"] == this_host() and row["pid"] == os.getpid()):
            return
        if not _gone(row["host"], int(row["pid"])):
            raise CaseLocked(self._info(row))

    def lock(self, case_id: str, reviewer: str, timeout: Optional[float] = None) -> str:
        """Take the case's lock for ``reviewer``; its token (for heartbeat, unlock and save). An
        expired lock is taken over (and the trail says whose it was); a live one raises CaseLocked."""
        timeout = float(timeout if timeout is not None else self.lock_timeout)
        token = uuid.uuid4().hex
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self.index.writing():
            state = self._case_row(case_id)["state"]
            old = self._lock_row(case_id, live=False)
            if old is not None:
                dead = _gone(old["host"], int(old["pid"]))
                if float(old["left_s"]) > 0 and not dead:
                    raise CaseLocked(self._info(old))
                self.index.execute("DELETE FROM locks WHERE case_id = ?", (case_id,))
                why = "its process is gone" if dead and float(old["left_s"]) > 0 else "it stopped renewing it"
                self._audit(case_id, "lock expired", reviewer, state, state,
                            f"{old['holder']} on {old['host']} (pid {old['pid']}): {why}; taken over", at=now)
            self.index.execute(f"INSERT INTO locks (case_id, holder, host, pid, token, taken, heartbeat, expires) "
                               f"VALUES (?,?,?,?,?,?,{self.index.now},{self.index.now} + ?)",
                               (case_id, reviewer or this_login(), this_host(), os.getpid(), token, now, timeout))
            self._audit(case_id, "locked", reviewer, state, state, f"for editing; expires {timeout:g} s after "
                                                                  "its last heartbeat", at=now)
        return token

    def heartbeat(self, case_id: str, token: str, timeout: Optional[float] = None) -> bool:
        """Renew the lock; False when it is no longer ours (broken, or expired and taken over)."""
        timeout = float(timeout if timeout is not None else self.lock_timeout)
        return self.index.execute(f"UPDATE locks SET heartbeat = {self.index.now}, expires = {self.index.now} + ? "
                                  "WHERE case_id = ? AND token = ?", (timeout, case_id, token)) == 1

    def unlock(self, case_id: str, token: str, actor: str = "") -> bool:
        """Release our lock (False: it was not ours any more)."""
        with self.index.writing():
            row = self.index.one("SELECT holder FROM locks WHERE case_id = ? AND token = ?", (case_id, token))
            if row is None:
                return False
            self.index.execute("DELETE FROM locks WHERE case_id = ? AND token = ?", (case_id, token))
            state = self._case_row(case_id)["state"]
            self._audit(case_id, "unlocked", actor or row["holder"], state, state, "closed")
        return True

    def break_lock(self, case_id: str, actor: str, reason: str) -> Optional[LockInfo]:
        """Remove whatever lock the case has, recording who broke it and why; the lock that was
        there (None: there was none). Its holder's next heartbeat or save finds it gone."""
        if not reason.strip():
            raise DelineateError("breaking a lock needs a reason (it is recorded in the audit trail)")
        with self.index.writing():
            state = self._case_row(case_id)["state"]
            old = self._lock_row(case_id, live=False)
            if old is None:
                return None
            self.index.execute("DELETE FROM locks WHERE case_id = ?", (case_id,))
            self._audit(case_id, "lock broken", actor, state, state,
                        f"{old['holder']} on {old['host']} (pid {old['pid']}): {reason.strip()}")
        return self._info(old)

    def locks(self) -> list[LockInfo]:
        """The live locks."""
        return [self._info(r) for r in self.index.query(
            f"SELECT case_id, holder, host, pid, token, taken, expires - {self.index.now} AS left_s FROM locks "
            f"WHERE expires > {self.index.now} ORDER BY taken")]


_HELD: set = set()


class HeldLock:
    """A lock this process holds, kept alive by a heartbeat thread with its own connection (SQLite
    connections stay in their thread) until ``release()`` - or the process's exit, which releases
    what is still held. ``lost`` turns true when a heartbeat finds the lock gone (broken)."""

    def __init__(self, location, case_id: str, token: str, holder: str, timeout: float) -> None:
        self.location, self.case_id, self.token, self.holder, self.timeout = location, case_id, token, holder, timeout
        self.lost = False
        self._stop = threading.Event()
        self._releasing = threading.Lock()  # the UI's release and the exit's may meet
        self._thread = threading.Thread(target=self._beat, name=f"lock {case_id}", daemon=True)
        _HELD.add(self)
        self._thread.start()

    def _beat(self) -> None:
        from store.corrections import CorrectionsStore

        store = None
        while not self._stop.wait(self.timeout / 4):
            try:
                store = store or CorrectionsStore(self.location)
                if not store.heartbeat(self.case_id, self.token, self.timeout):
                    self.lost = True
                    break
            except Exception:  # the server unreachable for a while: try again; the lock may expire meanwhile
                if store is not None:
                    store.close()
                store = None
        if store is not None:
            store.close()

    def release(self) -> bool:
        """Stop the heartbeat and remove the lock (False: it was lost before)."""
        from store.corrections import CorrectionsStore

        with self._releasing:
            if self not in _HELD:
                return False
            _HELD.discard(self)
        self._stop.set()
        self._thread.join(10)
        if self.lost:
            return False
        with CorrectionsStore(self.location) as store:
            return store.unlock(self.case_id, self.token, self.holder)


@atexit.register
def _release_all() -> None:
    for held in list(_HELD):
        try:
            held.release()
        except Exception:  # exiting: the lock then expires after its timeout
            pass
