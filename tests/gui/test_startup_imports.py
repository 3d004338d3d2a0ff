"""Start-up stays light: `main.py --help` loads neither torch nor Qt, and the main window is painted
before torch is imported (models and explanations import it when they first run)."""
import os
import subprocess
import sys
from pathlib import Path

from bench.startup import RUN_MAIN, WINDOW_HOOK, import_chain, import_tree, run_child

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "monai", "PySide6", "pyqtgraph", "vtkmodules", "SimpleITK"}


def test_the_main_window_module_does_not_import_torch():
    code = "import sys, gui.main_window; print(sorted(m for m in ('torch', 'monai') if m in sys.modules))"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_imports_neither_torch_nor_qt_nor_vtk():
    _, out = run_child(["-X", "importtime", "main.py", "--help"], ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
    rows = import_tree(out.stderr)
    loaded = {name.split(".")[0] for _, _, name in rows}
    assert loaded, "no -X importtime output"
    assert not loaded & HEAVY, {m: " -> ".join(import_chain(rows, m)) for m in loaded & HEAVY}


def test_the_main_window_is_painted_before_torch_is_imported():
    _, out = run_child(["-X", "importtime", "-c", WINDOW_HOOK + RUN_MAIN], ROOT, timeout=120)
    painted = [line.split() for line in out.stdout.splitlines() if line.startswith("WINDOW ")]
    errors = "\n".join(line for line in out.stderr.splitlines() if not line.startswith("import time:"))
    assert painted, f"the window was never painted (rc {out.returncode}): {errors[-1500:]}"
    torch_loaded = painted[-1][2] == "1"
    assert not torch_loaded, "torch pulled in by " + " -> ".join(import_chain(import_tree(out.stderr), "torch"))
