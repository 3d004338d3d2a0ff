"""``python main.py PATH`` opens PATH in the viewer (no ``gui`` command needed); a path that does
not exist, or no display to open a window on, is one error line, not argparse's list of commands
or Qt's abort."""
import sys

import pytest

import main


def test_a_path_opens_in_the_viewer(tmp_path, monkeypatch, capsys):
    import gui.app

    opened = []
    monkeypatch.setattr(gui.app, "run", lambda path, model=True: opened.append((path, model)) or 0)
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"\x1f\x8b")  # only its existence is checked before the window opens it
    assert main.main([str(scan)]) == 0 and opened == [(str(scan), True)]
    monkeypatch.chdir(tmp_path)
    assert main.main(["scan.nii.gz", "--no-model"]) == 0 and opened[-1] == ("scan.nii.gz", False)
    assert main.main([str(tmp_path)]) == 0 and opened[-1] == (str(tmp_path), True)  # a DICOM folder


@pytest.mark.parametrize("arg", ["missing.nii.gz", "scans/missing"])
def test_a_missing_path_is_one_line(tmp_path, monkeypatch, capsys, arg):
    monkeypatch.chdir(tmp_path)
    assert main.main([arg]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {arg}: no such file or folder (nor a sample name: info --samples)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland displays are Linux's")
def test_no_display_is_one_line(tmp_path, monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"\x1f\x8b")
    assert main.main([str(scan)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: no display to open the viewer on")
