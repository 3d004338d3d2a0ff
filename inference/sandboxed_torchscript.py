"""TorchScript models run in a child process (inference/sandbox_child.py says how it is confined and
what it can still do); this is the parent's side: an nn.Module that sends each window batch over a
pipe and turns a crash, a hang or an error of the child into a one-line DelineateError. The app (or
the CLI) carries on either way."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import torch

from core.errors import DelineateError
from inference import sandbox_child
from inference.sandbox_child import pack, read_frame, unpack, write_frame

TIMEOUT_ENV = "DELINEATE_TORCHSCRIPT_TIMEOUT"  # seconds one call may take (default 600)
START_TIMEOUT = 300.0  # a fresh interpreter importing torch and loading the model


def _ended(code: Optional[int]) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class TorchScriptProcess(torch.nn.Module):
    """A TorchScript model behind the nn.Module interface the sliding window calls, run by a child
    interpreter started on first use. Any failure is a one-line DelineateError: after a crash or a hang
    the child is stopped (the next call starts a fresh one); an error the model raises leaves it running."""

    def __init__(self, path, device="cpu", timeout: Optional[float] = None) -> None:
        super().__init__()
        self.path, self.device_name = str(path), str(device)
        self.timeout = float(timeout if timeout is not None else os.environ.get(TIMEOUT_ENV, 600))
        self.proc: Optional[subprocess.Popen] = None
        self.replies: queue.Queue = queue.Queue()
        self.confinement = ""

    def start(self) -> "TorchScriptProcess":
        self.close()
        self.proc = subprocess.Popen([sys.executable, "-I", str(Path(sandbox_child.__file__)), self.path,
                                      self.device_name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=str(Path(self.path).parent))
        self.replies = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.replies), daemon=True,
                         name="torchscript-replies").start()
        try:
            head, _ = self._receive("loading", START_TIMEOUT)
        except DelineateError:
            self.close()
            raise
        self.confinement = str(head.get("confinement", ""))
        return self

    @staticmethod
    def _read(proc: subprocess.Popen, replies: queue.Queue) -> None:
        try:
            while True:
                replies.put(read_frame(proc.stdout))
        except (EOFError, OSError, ValueError):
            replies.put(None)

    def _receive(self, what: str, timeout: float):
        try:
            blob = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise DelineateError(f"{self.path}: the TorchScript model did not finish {what} within {timeout:g} s; "
                                 f"its process was stopped (limit: {TIMEOUT_ENV})") from None
        if blob is None:
            proc = self.proc
            code = proc.wait(5) if proc is not None else None
            self.close()
            raise DelineateError(f"{self.path}: the TorchScript model's process ended while {what} "
                                 f"({_ended(code)}); nothing else was affected")
        try:
            head, array = unpack(blob)
        except ValueError as exc:
            self.close()
            raise DelineateError(f"{self.path}: the TorchScript model's process sent a {exc}") from None
        if head["kind"] == "error":  # the model raised: the child reported it and carries on
            raise DelineateError(f"{self.path}: the TorchScript model failed while {what}: {head.get('message')}")
        return head, array

    def run(self, x):
        """float32 array in, float32 array out (the first output when the model returns several)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        dev = torch.device(self.device_name).type
        cast = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
        try:
            write_frame(self.proc.stdin, pack("run", x, autocast=str(cast).replace("torch.", "") if cast else None))
        except (OSError, ValueError):
            pass  # the child is gone: _receive reports how it ended
        return self._receive("running", self.timeout)[1]

    def forward(self, x):
        if x.requires_grad and torch.is_grad_enabled():
            raise DelineateError(f"{self.path}: gradients do not cross into the TorchScript model's separate process; "
                                 "explain it by occlusion")
        return torch.from_numpy(self.run(x.detach().float().cpu().numpy()).copy()).to(x.device)

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def __enter__(self) -> "TorchScriptProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
