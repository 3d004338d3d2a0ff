"""Federated retraining (federated/, Flower): serve a round from this machine, or join one as a
site. Long work with progress and cancel like every action; flwr is imported only here, lazily."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

from core.errors import Cancelled, DelineateError
from core.progress import CancelToken, ProgressFn, no_progress

_ROUND = re.compile(r"\[ROUND (\d+)/(\d+)\]")


def _home(name: str) -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("Delineate", "Delineate")) / "federated" / name


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise DelineateError(f"{text!r}: give the SuperLink as HOST:PORT (e.g. 127.0.0.1:9093)")
    return host.strip("[]"), int(port)


def serve(rounds: int = 3, min_sites: int = 2, model: str = "us-lesion-2d", version: str = "",
          strategy: str = "fedavg", local_iterations: int = 20, lr: float = 5e-4, proximal_mu: float = 0.0,
          dp_noise: float = 0.0, dp_clip: float = 0.0, listen: str = "0.0.0.0:9093", tls=None,
          models_root: Optional[Path] = None, min_cases: int = 8, seed: int = 0, home: Optional[Path] = None,
          progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
          log: Optional[Path] = None, timeout: float = 24 * 3600.0) -> dict:
    """Start a SuperLink on ``listen``, run the federation (waits for ``min_sites`` sites), keep the
    aggregated model; returns the run's summary (federated.server_app). ``tls``: a federated.runtime.Tls
    with the server's certificate and key, or None for insecure (testing only)."""
    from federated import runtime
    from federated.strategies import STRATEGIES

    if strategy not in STRATEGIES:
        raise DelineateError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    if rounds < 1 or min_sites < 1 or local_iterations < 1:
        raise DelineateError("rounds, sites and local iterations must be at least 1")
    host, port = _address(listen)
    home = Path(home) if home else _home("server")
    log = Path(log) if log else home / "superlink.log"
    link = runtime.start_superlink(home / "superlink", port, host, tls, log)
    try:
        runtime.wait_listening("127.0.0.1" if host in ("0.0.0.0", "::") else host, port, link)
        progress(0.0, f"SuperLink on {host}:{port}; waiting for {min_sites} sites")
        config = {"model": model, "model-version": version, "rounds": rounds, "min-sites": min_sites,
                  "strategy": strategy, "local-iterations": local_iterations, "lr": lr, "proximal-mu": proximal_mu,
                  "dp-noise": dp_noise, "dp-clip": dp_clip, "seed": seed, "min-cases": min_cases,
                  "timeout": timeout, "models-dir": str(Path(models_root).resolve()) if models_root else ""}

        def on_line(line: str) -> None:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled by the user")
            m = _ROUND.search(line)
            if m:
                progress((int(m.group(1)) - 1) / int(m.group(2)), f"round {m.group(1)} of {m.group(2)}")
            elif "Waiting for nodes" in line:
                progress(0.0, line.split(":", 1)[-1].strip()[:60])

        local = f"{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        summary = runtime.submit(local, home / "client", config, tls.ca if tls else None, log, timeout, on_line)
    finally:
        runtime.stop(link)
    progress(1.0, "done")
    return summary


def join(superlink: str, store=None, models_root: Optional[Path] = None, ca: Optional[Path] = None,
         runtime_port: int = 9094, home: Optional[Path] = None, progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None, log: Optional[Path] = None, until_done: bool = False,
         linger_s: float = 30.0) -> int:
    """Run this site's SuperNode against ``superlink`` (HOST:PORT) until cancelled (or, with
    ``until_done``, until the site has decided on a federated model); its store (default: the
    user's) never leaves this machine. ``ca``: the CA that signed the SuperLink's certificate;
    None: insecure (testing only). Returns the SuperNode's exit status."""
    from federated import runtime
    from store.location import default_location

    _address(superlink)
    store = store if store is not None else default_location()
    home = Path(home) if home else _home("site")
    log = Path(log) if log else home / "supernode.log"
    node = runtime.start_site(superlink, store, home, models_root, runtime_port, ca, log)
    progress(0.0, f"joined {superlink}; waiting for the server's rounds")
    seen, sent_at = 0, None
    try:
        while node.poll() is None:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled by the user")
            text = log.read_text(errors="replace") if log.exists() else ""
            rounds = text.count("Sending: train message")
            if rounds != seen:
                seen = rounds
                progress(0.5, f"trained in {rounds} round{'s' * (rounds != 1)}")
            decided = text.rsplit("[site node", 1)[1] if until_done and "[site node" in text else ""
            if "Sent successfully" in decided:  # the decision is printed before its reply is sent: wait for it
                # and stay connected a while: the SuperLink answers "node unavailable" for a reply whose
                # node left before the ServerApp collected it
                sent_at = sent_at or time.monotonic()
                progress(0.99, decided.splitlines()[0].split("]", 1)[-1].strip())
                if time.monotonic() - sent_at > linger_s:
                    return 0
            time.sleep(1.0)
    finally:
        runtime.stop(node)
    return node.returncode or 0


def summary_text(summary: dict) -> str:
    """What the CLI and the dialog say about a finished federation."""
    lines = [f"{summary['model']} v{summary['version']} (from v{summary['parent']}): {summary['strategy']}, "
             f"{summary['rounds']} rounds, {summary['seconds_per_round']:.0f} s per round; kept in {summary['folder']}"]
    for i, s in enumerate(summary["sites"], 1):
        if "error" in s:
            lines.append(f"  site {i}: failed ({s['error']})")
        else:
            lines.append(f"  site {i}: held-out Dice {s['dice-before']:.3f} -> {s['dice-after']:.3f} over "
                         f"{int(s['held-out-cases'])} cases (95 % CI of the change {s['ci-low']:+.3f} to "
                         f"{s['ci-high']:+.3f}): {'promoted' if s['promoted'] else 'not promoted'}")
    return "\n".join(lines)
