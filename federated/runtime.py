"""Flower's deployment runtime as processes: a SuperLink (the server side, which runs the ServerApp),
a SuperNode per site (which runs the ClientApp beside the site's store), and `flwr run` to submit
the Flower App. Insecure (plain HTTP) only when asked; otherwise TLS with the given certificates.
Every process gets the Delineate checkout on PYTHONPATH (the app's code is Delineate's own) and
runtime dependency installation off (a site installs nothing it was not given)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from core.errors import DelineateError

REPO = Path(__file__).resolve().parent.parent
APP_DIR = Path(__file__).resolve().parent / "flower-app"


@dataclass
class Tls:
    """PEM files: ``ca`` verifies the SuperLink's certificate (what a site needs); ``cert``/``key``
    are the SuperLink's own (what the server needs)."""
    ca: Path
    cert: Optional[Path] = None
    key: Optional[Path] = None


def executable(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise DelineateError(f"{name} not found: install Flower (pip install -r requirements.txt)")
    return found


def environment(home: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["FLWR_HOME"] = str(home)
    # the SuperLink and SuperNode start flower-superexec, flwr-serverapp and flwr-clientapp by name
    env["PATH"] = os.pathsep.join([str(Path(executable("flower-superlink")).parent), env.get("PATH", "")])
    env.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    return env


def _start(args: list[str], home: Path, log: Optional[Path]) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
    # its own process group: the SuperLink and SuperNode start children (SuperExec, the apps)
    return subprocess.Popen(args, env=environment(home), stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def start_superlink(home: Path, port: int = 9093, host: str = "127.0.0.1", tls: Optional[Tls] = None,
                    log: Optional[Path] = None) -> subprocess.Popen:
    # state in memory (no --database): a run is minutes long, and SQLite's lock under a loaded CPU
    # answered sites' uploads with "database is locked"
    args = [executable("flower-superlink"), "--host", host, "--port", str(port),
            "--disable-runtime-dependency-installation"]
    args += (["--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key), "--ssl-ca-certfile", str(tls.ca)]
             if tls else ["--insecure"])
    return _start(args, home, log)


def start_site(superlink: str, store, home: Path, models: Optional[Path] = None, runtime_port: int = 9094,
               ca: Optional[Path] = None, log: Optional[Path] = None) -> subprocess.Popen:
    """A SuperNode for the store at ``store``; ``runtime_port``: its local port for the ClientApp
    (each SuperNode on one machine needs its own)."""
    from federated.site import require_store
    from store.location import is_url

    require_store(store)
    node = f"store={json.dumps(str(store) if is_url(store) else str(Path(store).resolve()))}"
    if models:
        node += f" models={json.dumps(str(Path(models).resolve()))}"
    args = [executable("flower-supernode"), "--superlink", superlink, "--port", str(runtime_port),
            "--node-config", node]
    args += ["--root-certificates", str(ca)] if ca else ["--insecure"]
    return _start(args, home, log)


def wait_listening(host: str, port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DelineateError(f"the Flower process exited ({proc.returncode}) before listening on {host}:{port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise DelineateError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def stop(proc: Optional[subprocess.Popen], grace: float = 10.0) -> None:
    """End a process started here and its children (its own process group)."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def submit(superlink: str, home: Path, run_config: dict, ca: Optional[Path] = None, log: Optional[Path] = None,
           timeout: float = 3600.0, on_line: Callable[[str], None] = lambda line: None) -> dict:
    """Submit the Flower App with ``run_config`` overrides, follow its log to the end; the
    ServerApp's summary (rounds, sites and their decisions, the kept version)."""
    import tomli_w

    home.mkdir(parents=True, exist_ok=True)
    connection = {"address": superlink, **({"root-certificates": str(ca)} if ca else {"insecure": True})}
    (home / "config.toml").write_text(tomli_w.dumps({"superlink": {"default": "delineate",
                                                                   "delineate": connection}}))
    overrides = home / "run-config.toml"
    overrides.write_text(tomli_w.dumps(run_config))
    args = [executable("flwr"), "run", str(APP_DIR), "delineate", "--run-config", str(overrides), "--stream"]
    proc = subprocess.Popen(args, env=environment(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    summary, tail = None, []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            if log:
                with open(log, "a") as f:
                    f.write(line)
            tail = (tail + [line.rstrip()])[-30:]
            if "FEDERATED-SUMMARY " in line:
                summary = json.loads(line.split("FEDERATED-SUMMARY ", 1)[1])
                break
            on_line(line.rstrip())
            if time.monotonic() > deadline:
                raise DelineateError(f"the federated run did not finish in {timeout:.0f} s")
    finally:
        stop(proc, grace=5.0)
    if summary is None:
        raise DelineateError("the federated run ended without a result:\n" + "\n".join(tail[-12:]))
    return summary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_machine(stores: list, home: Path, run_config: dict, tls: Optional[Tls] = None,
                through: Optional[Callable[[str], str]] = None, timeout: float = 3600.0):
    """A whole federation on this machine (tests, the bench, a demo): a SuperLink, one SuperNode per
    store (models kept in ``home``/siteN-models), the app run with ``run_config``; returns
    (summary, the sites' model folders). ``through``: maps the SuperLink's address to the one a site
    should dial (a proxy)."""
    port = free_port()
    procs, models = [], []
    try:
        link = start_superlink(home / "server", port, tls=tls, log=home / "superlink.log")
        procs.append(link)
        wait_listening("127.0.0.1", port, link)
        for i, store in enumerate(stores):
            address = f"127.0.0.1:{port}"
            models.append(home / f"site{i}-models")
            procs.append(start_site(through(address) if through else address, store, home / f"site{i}", models[-1],
                                    free_port(), tls.ca if tls else None, log=home / f"site{i}.log"))
        config = {"min-sites": len(stores), "models-dir": str(home / "server-models"), **run_config}
        summary = submit(f"127.0.0.1:{port}", home / "client", config, tls.ca if tls else None,
                         log=home / "run.log", timeout=timeout)
    finally:
        for p in reversed(procs):
            stop(p)
    return summary, models
