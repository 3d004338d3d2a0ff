"""The self-test's window check (``delineate --selftest``, cli.commands.selftest): the main window
opens offscreen, opens the bundled sample through its own opener, shows the given segmentation and
paints; then VTK renders offscreen once, which names the OpenGL renderer. Nothing is written to the
user's settings or recovery file."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def window_check(volume, labelmap, timeout_s: float = 120.0) -> tuple[str, list]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before the QApplication: no window on the user's screen
    from PySide6 import QtCore

    from formats import samples
    from gui.app import make_app
    from gui.main_window import MainWindow

    app = make_app()
    rows = [("settings", QtCore.QSettings("Delineate", "Delineate").fileName()),
            ("Qt", f"platform {app.platformName()}")]
    with tempfile.TemporaryDirectory(prefix="delineate-selftest-gui-") as tmp:
        saved = os.environ.get("DELINEATE_RECOVERY")
        os.environ["DELINEATE_RECOVERY"] = str(Path(tmp) / "recovery.npz")
        try:
            settings = QtCore.QSettings(str(Path(tmp) / "settings.ini"), QtCore.QSettings.Format.IniFormat)
            win = MainWindow(settings)
            win.resize(1200, 800)
            win.show()
            loop, timer = QtCore.QEventLoop(), QtCore.QTimer()
            timer.setSingleShot(True)
            timer.timeout.connect(loop.quit)
            win.loaded.connect(loop.quit)
            timer.start(int(timeout_s * 1000))
            win.opener.open_path(str(samples.path()))
            loop.exec()
            shown = win.session.volume
            if shown is None or shown.geometry.size != volume.geometry.size:
                raise RuntimeError(f"the sample was not shown within {timeout_s:.0f} s")
            if labelmap is not None:
                win.opener.set_labelmap(labelmap)
                app.processEvents()
                if win.session.labelmap is None:
                    raise RuntimeError("the segmentation was not taken")
            image = win.grab().toImage()
            if image.isNull() or image.width() < 100:
                raise RuntimeError("the window did not paint")
            segments = f"{len(labelmap.table)} segments" if labelmap is not None else "no segmentation"
            detail = f"{app.platformName()}: sample shown with {segments}, painted {image.width()}x{image.height()}"
            win.close()
            win.deleteLater()
            app.processEvents()
        finally:
            if saved is None:
                os.environ.pop("DELINEATE_RECOVERY", None)
            else:
                os.environ["DELINEATE_RECOVERY"] = saved
    rows.append(("OpenGL", opengl_renderer()))
    return detail, rows


def opengl_renderer() -> str:
    """VTK's renderer string from one offscreen render (not on Linux without a display, where VTK's
    X11 window would abort the process)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "not queried (no display; run under X11/Wayland or xvfb-run)"
    try:
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render window)
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

        rw = vtkRenderWindow()
        rw.SetOffScreenRendering(1)
        rw.AddRenderer(vtkRenderer())
        rw.SetSize(16, 16)
        rw.Render()
        caps = rw.ReportCapabilities() or ""
        rw.Finalize()
        found = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in caps.splitlines()) if v}
        return ", ".join(found[k] for k in ("OpenGL renderer string", "OpenGL version string") if k in found) \
            or "unknown (VTK reported no renderer)"
    except Exception as exc:
        return f"unknown ({type(exc).__name__}: {exc})"
