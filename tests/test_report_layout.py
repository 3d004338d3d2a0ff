"""The report's layout at any text length: no text runs under a picture or another text, nothing
leaves the page, a warning too long for one page goes on on the next whole; a 2D image gets no 3D
picture, and its footer and table speak of areas (mm², or px² without a pixel size)."""
import numpy as np
import pytest
from matplotlib.image import AxesImage
from matplotlib.table import Table
from matplotlib.text import Text

from core.labels import LabelMap, LabelTable
from core.statistics import segment_statistics
from core.volume import Volume
from export.report import ReportInfo, report_figures

WARNING = ("the image is OT; us-lesion-2d was made for US: its masks may be wrong on this image, which has "
           "intensities outside the training range and a pixel size of 0.2 mm where the model was trained at "
           "0.3 mm; check every mask against the image before approving")


def _model(warnings):
    return {"id": "us-lesion-2d", "name": "Ultrasound lesion (2D), speckle-phantom-trained", "version": "1.0.0",
            "architecture": "AttentionUnet 2D", "trained_on": "Generated only (inference/training/synth_us.py)",
            "metrics": {"Dice Lesion": 0.891, "Dice mean": 0.891}, "synthetic": True, "warnings": warnings}


def _us(spacing_known=True):
    rng = np.random.default_rng(1)
    vol = Volume.from_array(rng.integers(0, 255, (1, 64, 64)).astype(np.uint8), spacing=(0.2, 0.2, 1.0),
                            modality="US", spacing_known=spacing_known)
    lab = np.zeros((1, 64, 64), np.uint8)
    lab[0, 20:40, 10:30] = 1
    lab[0, 5:12, 40:60] = 2
    table = LabelTable.from_names(["Lesion", "Segment 2"])
    ai = lab.copy()
    ai[ai == 2] = 0
    return vol, LabelMap(lab, vol.geometry, table), LabelMap(ai, vol.geometry, table)


def _ct():
    vol = Volume.from_array(np.full((20, 40, 40), 40, np.int16), spacing=(1.0, 1.0, 2.5), modality="CT")
    lab = np.zeros((20, 40, 40), np.uint8)
    lab[5:15, 10:30, 10:30] = 1
    lm = LabelMap(lab, vol.geometry, LabelTable.from_names(["liver"]))
    return vol, lm, lm


def _figures(vol, lm, ai, warnings, snapshot=None, **kw):
    info = ReportInfo(reviewer="dr.try", state="approved", case_id="ce6b8909224344b4", model=_model(warnings), **kw)
    return report_figures(info, vol, lm, segment_statistics(vol, lm, ai), snapshot)


def _boxes(fig):
    """The page's texts and the boxes of its pictures and tables, in display pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    page = fig.axes[0]
    texts = [(t.get_text(), t.get_window_extent(r)) for t in page.texts if t.get_text().strip()]
    pictures = [ax for ax in fig.axes[1:] if ax.findobj(AxesImage)]
    texts += [(ax.title.get_text(), ax.title.get_window_extent(r)) for ax in pictures if ax.title.get_text()]
    shown = [ax.findobj(AxesImage)[0].get_window_extent(r) for ax in pictures]
    shown += [t.get_window_extent(r) for ax in fig.axes[1:] for t in ax.findobj(Table)]
    return texts, shown, fig.bbox


def _assert_laid_out(figs):
    for fig in figs:
        texts, shown, page = _boxes(fig)
        for n, (s, a) in enumerate(texts):
            assert a.x0 >= page.x0 and a.x1 <= page.x1 and a.y0 >= page.y0 and a.y1 <= page.y1, s
            for s2, b in texts[n + 1:]:
                assert not a.overlaps(b), (s, s2)
            for b in shown:
                assert not a.overlaps(b), s
        for n, a in enumerate(shown):
            for b in shown[n + 1:]:
                assert not a.overlaps(b)


@pytest.mark.parametrize("warnings", [[WARNING], [WARNING] * 3, [" ".join([WARNING] * 12)]])
@pytest.mark.parametrize("case", [_us, _ct])
def test_nothing_overlaps_or_is_cut_at_any_text_length(case, warnings):
    vol, lm, ai = case()
    snapshot = np.zeros((64, 64, 3), np.uint8)
    figs = _figures(vol, lm, ai, warnings, snapshot, notes=["a reviewer's note " * 20],
                    measurements=[{"kind": "ruler", "text": "12.3 mm"}] * 3)
    _assert_laid_out(figs)
    words = " ".join(t.get_text() for fig in figs for t in fig.axes[0].texts).split()
    for w in set(" ".join(warnings).split()):
        assert w in words  # every word of every warning is on a page, none shortened away
    assert "state: approved" in " ".join(t.get_text() for fig in figs for t in fig.axes[0].texts)
    if len(warnings[0]) > 1000:  # longer than a page's column: it goes on on the next page
        assert len(figs) > 1 and any("(continued)" in t.get_text() for t in figs[1].axes[0].texts)


def test_a_2d_image_gets_no_3d_picture_and_its_sizes_are_areas():
    vol, lm, ai = _us()
    figs = _figures(vol, lm, ai, [WARNING], snapshot=np.zeros((64, 64, 3), np.uint8))
    titles = [ax.title.get_text() for fig in figs for ax in fig.axes]
    assert not any("3D" in t for t in titles)
    assert sum(1 for ax in figs[0].axes if ax.findobj(AxesImage)) == 1
    texts = " ".join(t.get_text() for t in figs[0].findobj(Text))
    assert "Areas" in texts and "mm²" in texts and "Volumes" not in texts and "voxel" not in texts
    vol, lm, ai = _us(spacing_known=False)
    figs = _figures(vol, lm, ai, [])
    texts = " ".join(t.get_text() for t in figs[0].findobj(Text))
    heads = [c.get_text().get_text() for t in figs[0].findobj(Table) for c in t.get_celld().values()]
    assert "px²" in texts and "Area (px²)" in heads and "Volumes" not in texts
    _ct_vol, ct_lm, _ = _ct()
    ct_texts = " ".join(t.get_text() for t in _figures(_ct_vol, ct_lm, ct_lm, [], np.zeros((8, 8, 3), np.uint8))[0]
                        .findobj(Text))
    assert "Volumes from voxel counts" in ct_texts and "3D (anterior)" in ct_texts


def test_the_report_export_of_a_2d_image_renders_no_3d_view(tmp_path, monkeypatch):
    from export import snapshot
    from export.case import ExportRequest, export

    def no_3d(_labelmap, size=None):
        raise AssertionError("a flat image has no 3D view to render")

    monkeypatch.setattr(snapshot, "render_surfaces", no_3d)
    vol, lm, ai = _us()
    (out,) = export(ExportRequest("report", vol, lm, tmp_path / "r.png", ai=ai, model=_model([WARNING])))
    assert out.is_file() and out.stat().st_size > 10_000


def test_a_long_segment_table_goes_on_on_the_next_pages():
    vol = Volume.from_array(np.full((6, 40, 40), 40, np.int16), spacing=(1.0, 1.0, 2.5), modality="CT")
    lab = np.zeros((6, 40, 40), np.uint8)
    for v in range(1, 61):
        lab[v % 6, (v // 6) * 4:(v // 6) * 4 + 3, 5:30] = v
    lm = LabelMap(lab, vol.geometry, LabelTable.from_names([f"segment {v}" for v in range(1, 61)]))
    figs = _figures(vol, lm, lm, [WARNING])
    _assert_laid_out(figs)
    cells = [c.get_text().get_text() for fig in figs for t in fig.findobj(Table) for c in t.get_celld().values()]
    assert all(f"segment {v}" in cells for v in range(1, 61)) and len(figs) > 1
    assert any(t.get_text() == "Segments (continued)" for t in figs[-1].axes[0].texts)
