#!/usr/bin/env python3
"""Start-up time: `main.py --help`, and the process start to the main window's first paint.
Run under a display or Xvfb: `xvfb-run -a python bench/startup.py` (`make bench`).

Every figure is a ratio against a baseline measured in the same run (lower is better), the median of
--repeat fresh processes:
- `main.py --help` vs a bare interpreter printing an argparse help     goal: no torch, no PySide6
- `main.py` (the GUI on the bundled sample) to the first paint of the main window vs an empty
  QMainWindow of the same size, painted                                 goal: torch not yet imported
- `main.py` to the default model's segmentation of the sample on screen (median of --repeat/2)
`--compare DIR` measures another checkout's main.py in the same run (e.g. a `git worktree` of the
previous release), so before/after share the machine's load. `--packaged EXE` measures the packaged
application (`make package`: dist/delineate/delineate) against this tree's source run, both through
the app's own start-up probe (gui/startup_probe.py: the bundle runs no outside code). Each child runs with a fresh HOME, so
no settings, recovery file or user model changes what it does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "monai", "PySide6", "vtkmodules", "pyqtgraph")

# Runs in the child before main.py: reports the first paint of the first QMainWindow shown (time since
# the parent started the process, on the system-wide monotonic clock) and whether torch is loaded yet.
WINDOW_HOOK = """
import os, sys, time
T0 = float(os.environ["BENCH_T0"])
from PySide6 import QtCore, QtWidgets

class _FirstPaint(QtCore.QObject):
    def __init__(self, window):
        super().__init__()
        self.window = window

    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Type.Paint and isinstance(obj, QtWidgets.QWidget) \\
                and obj.window() is self.window:
            t = time.perf_counter() - T0
            sys.stdout.write(f"WINDOW {t:.4f} {int('torch' in sys.modules)}\\n")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return False

_show = QtWidgets.QMainWindow.show

def _show_and_watch(self):
    self._bench_filter = _FirstPaint(self)
    QtWidgets.QApplication.instance().installEventFilter(self._bench_filter)
    _show(self)

QtWidgets.QMainWindow.show = _show_and_watch
"""
EMPTY_WINDOW = """
app = QtWidgets.QApplication(sys.argv[:1])
w = QtWidgets.QMainWindow()
w.resize(1400, 900)
w.show()
app.exec()
"""
# Runs in the child before main.py: reports when the default model's segmentation of the sample is put
# on screen (the session takes the run; the views repaint in the next event-loop pass), then exits.
SEGMENTATION_HOOK = """
import os, sys, time
T0 = float(os.environ["BENCH_T0"])

def _report():
    sys.stdout.write(f"SEGMENTED {time.perf_counter() - T0:.4f}\\n")
    sys.stdout.flush()
    os._exit(0)

def _after(fn):
    def wrapped(*a, **k):
        fn(*a, **k)
        from PySide6 import QtCore
        QtCore.QTimer.singleShot(0, _report)
    return wrapped

try:  # this tree: the case session takes the run
    import app.session as _where
    _where.CaseSession.set_run = _after(_where.CaseSession.set_run)
except ImportError:  # before the application layer: the window did
    import gui.main_window as _where
    _where.MainWindow._segmented = _after(_where.MainWindow._segmented)
"""
RUN_MAIN = """
import runpy
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
"""


def run_child(args: list[str], cwd: Path, timeout: float = 180, exe: str = sys.executable,
              probe: str = "") -> tuple[float, subprocess.CompletedProcess]:
    """(seconds from start to exit, the finished process), with a fresh HOME; ``probe``: the app's
    start-up probe milestone (window, segmented). The process's ``cpu_seconds``: user + system time of
    the child and the processes it waited for (the start-up probe exits at its milestone)."""
    import resource

    with tempfile.TemporaryDirectory(prefix="delineate-bench-home-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELINEATE_")}
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_DATA_HOME=os.path.join(home, ".local"))
        t0 = time.perf_counter()
        env["BENCH_T0"] = env["DELINEATE_PROBE_T0"] = str(t0)  # perf_counter is the system-wide monotonic clock
        if probe:
            env["DELINEATE_STARTUP_PROBE"] = probe
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=timeout)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.cpu_seconds = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return seconds, out


def import_tree(stderr: str) -> list[tuple[int, int, str]]:
    """`-X importtime` lines as (depth, self microseconds, module), in the order Python printed them
    (a module after everything it imported)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((depth, int(self_us), name.strip()))
    return rows


def import_chain(rows: list[tuple[int, int, str]], module: str) -> list[str]:
    """The chain of imports that first brought in ``module`` (outermost first), or [] if it never was."""
    for i, (depth, _, name) in enumerate(rows):
        if name == module:
            chain = [name]
            for d, _, parent in rows[i + 1:]:  # a parent is printed after its children, one level out
                if d < depth:
                    chain.append(parent)
                    depth = d
            return chain[::-1]
    return []


class NoWindow(RuntimeError):
    pass


def help_wall(root: Path) -> float:
    return run_child(["main.py", "--help"], root)[0]


def bare_help_wall(root: Path) -> float:
    return run_child(["-c", "import argparse; argparse.ArgumentParser(description='x').print_help()"], root)[0]


def help_imports(root: Path) -> tuple[float, list[str]]:
    """(seconds importing, the heavy packages loaded) for `main.py --help`."""
    _, out = run_child(["-X", "importtime", "main.py", "--help"], root)
    if out.returncode != 0:
        raise SystemExit(f"{root}/main.py --help failed: {out.stderr[-500:]}")
    rows = import_tree(out.stderr)
    loaded = {name.split(".")[0] for _, _, name in rows}
    return sum(us for _, us, _ in rows) / 1e6, [m for m in HEAVY if m in loaded]


def window_up(root: Path, code: str) -> tuple[float, bool]:
    """(seconds from process start to the first paint of the main window, torch loaded by then)."""
    _, out = run_child(["-c", WINDOW_HOOK + code], root)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("WINDOW ")]
    if not line:
        last = [ln for ln in out.stderr.splitlines() if ln.strip()]
        raise NoWindow(f"no window painted (rc {out.returncode}): {(last or ['?'])[-1][:300]}")
    t, has_torch = line[-1].split()[1:]
    return float(t), has_torch == "1"


def first_segmentation(root: Path) -> float:
    """Seconds from process start until the default model's segmentation of the sample is on screen."""
    _, out = run_child(["-c", SEGMENTATION_HOOK + RUN_MAIN], root, timeout=600)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("SEGMENTED ")]
    if not line:
        last = [ln for ln in out.stderr.splitlines() if ln.strip()]
        raise NoWindow(f"no segmentation shown (rc {out.returncode}): {(last or ['?'])[-1][:300]}")
    return float(line[-1].split()[1])


def probed(command: list[str], probe: str, cpu: Optional[list] = None) -> float:
    """Seconds to the start-up probe's milestone for ``command`` (the packaged app, or main.py); the
    CPU seconds it took are appended to ``cpu``."""
    root = ROOT if command[0] == sys.executable else Path(command[0]).parent
    _, out = run_child(command[1:], root, timeout=600, exe=command[0], probe=probe)
    if cpu is not None:
        cpu.append(out.cpu_seconds)
    tag = "WINDOW " if probe == "window" else "SEGMENTED "
    line = [ln for ln in out.stdout.splitlines() if ln.startswith(tag)]
    if not line:
        last = [ln for ln in out.stderr.splitlines() if ln.strip()]
        raise NoWindow(f"no {probe} milestone (rc {out.returncode}): {(last or ['?'])[-1][:300]}")
    return float(line[-1].split()[1])


def packaged(exe: Path, repeat: int) -> None:
    """The packaged application against this tree's source run, both timed by the app's probe."""
    commands = {"source (main.py)": [sys.executable, str(ROOT / "main.py")], "packaged": [str(exe.resolve())]}
    for probe, what, n in (("window", "main window up", repeat), ("segmented", "first segmentation on screen",
                                                                   max(1, repeat // 2))):
        res = interleaved({k: (lambda c=c: probed(c, probe)) for k, c in commands.items()}, n)
        base = res["source (main.py)"]
        for k in commands:
            if isinstance(res[k], str):
                print(f"{what} ({k}, probe): {res[k]}")
                continue
            ref = statistics.median(base) if not isinstance(base, str) else statistics.median(res[k])
            print(_row(f"{what} ({k}, probe)", statistics.median(res[k]), ref, "(ratio to the source run)"))


def interleaved(runs: dict, repeat: int) -> dict:
    """name -> the results of ``repeat`` calls, taken in rounds (one of each per round, after a warm-up
    round that writes bytecode caches and fills the page cache), so a busy machine slows all alike.
    A run that raises NoWindow gives its message instead of results."""
    results = {name: [] for name in runs}
    for n in range(repeat + 1):
        for name, fn in runs.items():
            if isinstance(results[name], str):
                continue
            try:
                value = fn()
            except NoWindow as exc:
                results[name] = str(exc)
                continue
            if n:
                results[name].append(value)
    return results


def _row(label: str, seconds: float, base: float, note: str) -> str:
    return f"{label:48s} {seconds * 1e3:7.0f} ms = {seconds / base:.2f}x   {note}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per figure (median; default 5)")
    ap.add_argument("--compare", type=Path, help="another checkout whose main.py is measured in the same run")
    ap.add_argument("--packaged", type=Path, help="the packaged app's executable (dist/delineate/delineate): "
                    "only the packaged-vs-source figures are measured")
    args = ap.parse_args()
    if args.packaged:
        return packaged(args.packaged, args.repeat)
    trees = {"this tree": ROOT, **({str(args.compare): args.compare.resolve()} if args.compare else {})}

    runs = {"baseline": lambda: bare_help_wall(ROOT)}
    runs.update({label: (lambda root=root: help_wall(root)) for label, root in trees.items()})
    walls = {name: statistics.median(values) for name, values in interleaved(runs, args.repeat).items()}
    print(_row("baseline: python printing an argparse help", walls["baseline"], walls["baseline"], ""))
    for label, root in trees.items():
        seconds, heavy = help_imports(root)
        print(_row(f"main.py --help ({label})", walls[label], walls["baseline"],
                   f"imports {seconds * 1e3:.0f} ms; heavy: {', '.join(heavy) or 'none'}   (goal: no torch, no Qt)"))

    runs = {"baseline": lambda: window_up(ROOT, EMPTY_WINDOW)}
    runs.update({label: (lambda root=root: window_up(root, RUN_MAIN)) for label, root in trees.items()})
    ups = interleaved(runs, args.repeat)
    if isinstance(ups["baseline"], str):
        raise SystemExit(f"baseline window: {ups['baseline']}")
    base = statistics.median(t for t, _ in ups["baseline"])
    print(_row("baseline: empty QMainWindow 1400x900, painted", base, base, ""))
    for label, root in trees.items():
        if isinstance(ups[label], str):
            print(f"main window up ({label}): {ups[label]}")
            continue
        torch = any(has for _, has in ups[label])
        print(_row(f"main window up ({label})", statistics.median(t for t, _ in ups[label]), base,
                   f"torch {'ALREADY' if torch else 'not yet'} imported   (goal: window before torch)"))
        if torch:
            _, out = run_child(["-X", "importtime", "-c", WINDOW_HOOK + RUN_MAIN], root)
            print(f"    torch pulled in by: {' -> '.join(import_chain(import_tree(out.stderr), 'torch'))}")

    # the sample segmented by its default model and on screen: what a user waits for at the first start
    segs = interleaved({label: (lambda root=root: first_segmentation(root)) for label, root in trees.items()},
                       max(1, args.repeat // 2))
    first = next(iter(trees))
    for label in trees:
        if isinstance(segs[label], str):
            print(f"first segmentation on screen ({label}): {segs[label]}")
            continue
        t = statistics.median(segs[label])
        ref = segs[first] if not isinstance(segs[first], str) else [t]
        print(_row(f"first segmentation on screen ({label})", t, statistics.median(ref),
                   "(ratio to this tree; the brain model on the MNI152 T1, on the CPU)"))


if __name__ == "__main__":
    main()
