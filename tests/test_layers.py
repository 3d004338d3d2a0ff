"""The layers hold: main.py only dispatches (to cli or gui), and import-linter's contracts are kept."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_main_py_imports_only_cli_gui_and_the_standard_library():
    names = _imported_modules(ROOT / "main.py")
    ours = {n for n in names if n.split(".")[0] not in sys.stdlib_module_names}
    assert ours, "main.py dispatches to cli or gui: it must import one of them"
    assert all(n.split(".")[0] in ("cli", "gui") for n in ours), sorted(ours)


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (requirements-dev.txt)")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
    assert "Layers: gui|cli > app >" in out.stdout  # the layers contract itself ran, not only the others
