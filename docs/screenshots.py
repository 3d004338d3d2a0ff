"""Regenerate the README screenshot: the main window on the MNI152 T1 with the template's tissue
classes as segments, its grey-matter probability as a heat map, and the 3D view.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots.py [OUT.png]
(`make screenshots` does this.)"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _window_on_sample():
    """(app, window, volume): the main window at a fixed size with the MNI152 T1 open."""
    from PySide6 import QtCore

    from formats import samples
    from formats.io import read_image
    from gui.app import make_app
    from gui.main_window import MainWindow

    app = make_app()
    win = MainWindow(QtCore.QSettings(str(Path("/tmp") / "delineate-shot.ini"), QtCore.QSettings.Format.IniFormat))
    win.resize(1500, 940)
    win.show()
    vol = read_image(samples.path("mni152-t1"))
    win.opener._loaded(str(samples.path("mni152-t1")), vol)
    return app, win, vol


def main(out: str) -> None:
    from PySide6 import QtCore

    from core.overlay import HeatMap
    from formats import samples
    from formats.io import read_image

    app, win, vol = _window_on_sample()
    win.opener.set_labelmap(samples.mni152_tissue(vol))
    gm = read_image(samples.path("mni152-gm"))
    win.model.add_heatmap(HeatMap.from_values("Grey-matter probability", gm.array, vol.geometry,
                                              colormap="inferno", opacity=0.55, threshold=0.6 * float(gm.array.max())))
    win.model.set_visible(1, False)  # grey matter shown by the heat map; white matter as a segment
    win.model.set_cursor_world(vol.geometry.index_to_world([80, 140, 95]))
    win.volume_check.setChecked(False)  # surfaces only, so the segment shows
    win.view3d.renderer.GetActiveCamera().Azimuth(35)
    win.view3d.renderer.GetActiveCamera().Elevation(15)
    for _ in range(20):
        app.processEvents()
        QtCore.QThread.msleep(50)
    win.save_screenshot(out)
    win.close()
    print(f"wrote {out}")


def explain_shots(folder: Path) -> None:
    """The default brain model on the MNI152 T1: Grad-CAM of grey matter (only its outline shown
    beside the map), then TTA uncertainty with the first region of the review walk outlined. One
    map at a time, each view with its colour bar."""
    from PySide6 import QtCore

    from app.actions.explaining import explain
    from inference import device as devices
    from inference.registry import Registry
    from inference.runner import segment

    devices._FAST_BF16 = False  # the pictures must not depend on the machine
    app, win, vol = _window_on_sample()
    card = Registry().get("brain-tissue")
    seg = segment(vol, card, device="cpu")
    win.session.set_run(seg)
    win.set_layout("2d")
    win.tabs.setCurrentIndex(1)  # the Explain tab
    win.segments.outline.setChecked(True)
    names = {lab.value: lab.name for lab in card.labels}
    for name, method, value in (("explain-gradcam.png", "gradcam", 2), ("explain-uncertainty.png", "uncertainty", None)):
        for v in names:  # Grad-CAM: the explained segment's outline only, so the anatomy stays readable
            win.model.set_visible(v, method == "uncertainty" or v == value)
        for h in list(win.model.heatmaps):
            win.model.remove_heatmap(h.name)
        win.model.set_cursor_world(vol.geometry.index_to_world([80, 140, 95]))
        for view in win.views.values():
            view.reset_zoom()
            view.viewbox.scaleBy((0.75, 0.75))  # the brain, not the empty field around it
        if value is not None:
            win.explain_panel.label.setCurrentIndex(win.explain_panel.label.findData(value))
        win.explain_panel.method.setCurrentIndex(win.explain_panel.method.findData(method))
        win.explain_panel.whole.setChecked(True)
        done = explain(vol, seg, method, value, seg.labels.array == value if value else None, names.get)
        win.explain_panel._done(done)
        win.explain_panel.info.setText(done.summary)
        if method == "uncertainty" and done.regions:
            win.explain_panel.next_region()  # outlined and zoomed to
        for _ in range(10):
            app.processEvents()
            QtCore.QThread.msleep(30)
        win.save_screenshot(str(folder / name))
        print(f"wrote {folder / name}")
    win.close()


def report_shot(out: Path) -> None:
    """The review report of the default brain model on the MNI152 T1, with a scripted correction
    (islands under 0.5 ml removed, grey matter smoothed) so the agreement columns are filled."""
    from core import editing
    from export.case import ExportRequest, export
    from formats import samples
    from formats.io import read_image
    from inference.registry import Registry
    from inference.runner import segment

    vol = read_image(samples.path("mni152-t1"))
    card = Registry().get("brain-tissue")
    seg = segment(vol, card, device="cpu")
    fixed = seg.labels.copy()
    for value in fixed.table.values():
        for edit in (editing.remove_islands(fixed, value, 0.5), editing.smooth(fixed, value, 1.5)):
            if edit is not None:
                fixed.array[edit.box] = edit.after
    export(ExportRequest("report", vol, fixed, out, ai=seg.labels, model=card.report_dict(), reviewer="A. Reader",
                         state="approved", case_id="MNI152 sample", deidentify=True,
                         notes=["Correction scripted for this example: islands < 0.5 ml removed, 1.5 mm smoothing."]))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        report_shot(ROOT / "docs" / "report.png")
    elif len(sys.argv) > 1 and sys.argv[1] == "--explain":
        explain_shots(ROOT / "docs")
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "main-window.png"))
