"""The review report: one A4 page (more when the segments or the text need them) as PDF, or PNG to
look at. Blocks flow down the page at their measured heights (export.report_layout).

Drawn with matplotlib's object API (no pyplot state), so the same layout makes the PDF for the
record and the PNG for screens, from the GUI or the command line, without a display.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from core.labels import LabelMap
from core.volume import Volume
from export.keyimages import box_centre, key_images
from export.report_layout import A4, GAP, TITLE_H, Flow, wrap
from formats.atomic import atomic_output

RESEARCH_NOTICE = ("Research software, not a medical device: not validated for clinical use. "
                   "Every mask must be checked by a qualified reader.")
SYNTHETIC_NOTICE = "NOT FOR CLINICAL USE - the model was trained only on synthetic (generated) data."
ROW_H = 0.02  # a segment table row (7.5 pt text)
EXPLANATION_H = 0.30


@dataclass
class ReportInfo:
    patient: str = "de-identified"
    study: str = ""
    reviewer: str = ""
    state: str = ""
    model: Optional[dict] = None  # id, version, name, architecture, trained_on, metrics, synthetic
    case_id: str = ""
    notes: list[str] = field(default_factory=list)
    explanation: Optional[object] = None  # export.heat_image.ExplanationView: a map with its colour bar
    # where the key images go: "edited" (the box of the reviewer's edits), "uncertain" (the most
    # uncertain region's box), each as (z, y, x) [start, stop) pairs
    regions: dict = field(default_factory=dict)
    measurements: list = field(default_factory=list)  # the reader's (core.measurements.row)
    created: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))


def _fmt(x, digits=1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _table_rows(stats: list[dict]) -> tuple[list[str], list[list[str]]]:
    unit = next((r["unit"] for r in stats if r.get("unit")), "")
    has_ai = any(r.get("dice_vs_ai") is not None or r.get("added_by_reviewer") for r in stats)
    planar = any(r.get("area_px") is not None for r in stats)
    in_mm = planar and all(r.get("area_mm2") is not None for r in stats)
    size = ("Area (mm²)" if in_mm else "Area (px²)") if planar else \
        "Volume (ml)" if all(r.get("volume_ml") is not None for r in stats) else "Voxels"
    head = ["Segment", size, f"Mean ± SD {unit}".strip(), "Min / max"]
    if has_ai:
        head += ["Dice vs AI", "HD95 (mm)"]
    rows = []
    for r in stats:
        value = (r["area_mm2"] if in_mm else r["area_px"]) if planar else \
            r["volume_ml"] if size == "Volume (ml)" else r["voxels"]
        row = [r["name"], _fmt(value, 1 if planar else 2),
               "-" if r["mean"] is None else f"{r['mean']:.1f} ± {r['sd']:.1f}",
               "-" if r["min"] is None else f"{r['min']:.0f} / {r['max']:.0f}"]
        if has_ai and r.get("added_by_reviewer"):
            row += ["added by reviewer", "-"]
        elif has_ai:
            row += [_fmt(r.get("dice_vs_ai"), 3), _fmt(r.get("hd95_vs_ai_mm"), 1)]
        rows.append(row)
    return head, rows


def _spacing_line(volume: Volume) -> str:
    g = volume.geometry
    if not volume.spacing_known:
        return "pixel size: not given by the file (sizes in pixels)"
    mm = " × ".join(f"{s:.3g}" for s in (g.spacing[:2] if volume.is_planar else g.spacing))
    return f"spacing: {mm} mm, " + (g.orientation_code() if volume.orientation_known else "orientation not given")


def _model_lines(model: Optional[dict]) -> list[str]:
    if not model:
        return ["no model (manual segmentation)"]
    lines = [f"{model.get('name') or model.get('id')}  v{model.get('version', '?')}",
             f"id: {model.get('id', '-')}   architecture: {model.get('architecture', '-')}"]
    if model.get("trained_on"):
        lines.append(f"trained on: {str(model['trained_on'])[:70].rsplit(' ', 1)[0]}...")
    metrics = model.get("metrics") or {}
    if metrics:
        lines.append("held-out: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in list(metrics.items())[:5]))
    for warning in (model.get("warnings") or [])[:3]:  # the out-of-distribution guard's, at the run: whole
        lines.append("WARNING: " + " ".join(str(warning).split()))
    return lines


def _footer(volume: Volume, has_ai: bool) -> str:
    """How the sizes in the table were measured: areas on an image plane, volumes otherwise."""
    if volume.is_planar:
        size = ("Areas from pixel counts × pixel area (mm²)" if volume.spacing_known
                else "Areas in px² (pixel counts): the file gives no pixel size")
        if volume.is_cine:
            size += ", on the frame where each segment is largest"
    else:
        size = ("Volumes from voxel counts × voxel volume" if volume.spacing_known
                else "Sizes in voxels: the file gives no voxel size")
    return size + ("; HD95 = 95th percentile Hausdorff distance between the AI draft and the corrected mask."
                   if has_ai else ".")


def _header(info: ReportInfo):
    """A page's head: title, date, the research notice in its box; returns the y below it."""
    def draw(_fig, ax) -> float:
        ax.text(0.05, 0.975, "Segmentation review report", fontsize=16, fontweight="bold", va="top")
        ax.text(0.95, 0.975, f"Delineate · {info.created}", fontsize=8, ha="right", va="top", color="0.35")
        synthetic = bool(info.model and info.model.get("synthetic"))
        notice = wrap((SYNTHETIC_NOTICE + " " if synthetic else "") + RESEARCH_NOTICE, 0.88 * A4[0], 8.5, indent="")
        ax.text(0.05, 0.935, "\n".join(notice), fontsize=8.5, va="top", color="white" if synthetic else "0.1",
                bbox=dict(boxstyle="round,pad=0.5", fc="#b00020" if synthetic else "#fff3cd", ec="none"))
        # matplotlib's own line step (1.2) and the box's padding (half the font size) each side
        return 0.935 - (len(notice) * 1.2 + 1.0) * 8.5 / 72 / A4[1] - GAP
    return draw


def _case_lines(info: ReportInfo, volume: Volume) -> list[str]:
    g = volume.geometry
    size = (f"{g.size[0]}×{g.size[1]} pixels" + (f", {g.size[2]} frames" if volume.is_cine else "")
            if volume.is_planar else f"{g.size[0]}×{g.size[1]}×{g.size[2]} voxels")
    return [f"patient: {info.patient}", f"study: {info.study or '-'}",
            f"case: {info.case_id or 'not saved to the store'}", f"image: {volume.modality}, {size}",
            _spacing_line(volume)]


def _pictures(flow: Flow, volume: Volume, images, snapshot, reserve: float) -> None:
    """The key images (and the 3D picture of a volume) in a row, as tall as the page allows while
    leaving ``reserve`` below them; a 2D image, alone in the row, gets the larger panel."""
    panels = list(images) + ([snapshot] if snapshot is not None and not volume.is_planar else [])
    if not panels:
        return
    title_h = 2 * 8 * 1.25 / 72 / A4[1]
    tallest = 0.32 if len(panels) == 1 else 0.21
    flow.need(title_h + 0.12)
    h = max(min(tallest, flow.room - title_h - reserve), min(0.12, flow.room - title_h))
    width = 0.9 / len(panels)
    for n, img in enumerate(panels):
        pa = flow.fig.add_axes((0.05 + n * width, flow.y - title_h - h, width - 0.01, h))
        pa.axis("off")
        if isinstance(img, np.ndarray):
            pa.imshow(img, interpolation="antialiased")
            pa.set_title("3D (anterior)", fontsize=8)
            continue
        w, ht = img.extent_mm
        pa.imshow(img.rgb, extent=(0, w, ht, 0), interpolation="antialiased")  # true aspect in mm
        left, right, top, bottom = img.letters
        for txt, xy in ((left, (0.02, 0.5)), (right, (0.98, 0.5)), (top, (0.5, 0.97)), (bottom, (0.5, 0.03))):
            pa.text(*xy, txt, color="yellow", fontsize=7, ha="center", va="center", transform=pa.transAxes)
        where = (f"frame {img.slice_index + 1}" if volume.is_cine else "image") if volume.is_planar else \
            f"{img.view} (slice {img.slice_index + 1})"
        pa.set_title(where + (f"\n{img.reason}" if img.reason else ""), fontsize=7.5 if len(panels) > 4 else 8)
    flow.placed(title_h + h + GAP)


def _table(flow: Flow, head: list[str], rows: list[list[str]]) -> None:
    """The segment table, one fixed row height; the rows that do not fit go on on the next page."""
    more = False
    while rows:
        fit = int((flow.room - TITLE_H) / ROW_H) - 1  # less the header row
        if fit < min(3, len(rows)) and not flow.fresh:
            flow.new_page()
            continue
        chunk, rows = rows[:max(fit, 1)], rows[max(fit, 1):]
        flow.ax.text(0.05, flow.y, "Segments" + (" (continued)" if more else ""), fontsize=10, fontweight="bold",
                     va="top")
        height = ROW_H * (len(chunk) + 1)
        tab = flow.fig.add_axes((0.05, flow.y - TITLE_H - height, 0.9, height))
        tab.axis("off")
        t = tab.table(cellText=chunk, colLabels=head, cellLoc="center", colLoc="center", bbox=(0, 0, 1, 1))
        t.auto_set_font_size(False)
        t.set_fontsize(7.5)
        for (r, _c), cell in t.get_celld().items():
            cell.set_edgecolor("0.8")
            if r == 0:
                cell.set_facecolor("#e8eef7")
                cell.set_text_props(fontweight="bold")
        flow.placed(TITLE_H + height + GAP)
        if rows:
            flow.new_page()
            more = True


def _measurement_lines(rows: list[dict]) -> list[str]:
    """The reader's measurements (ruler, angle, ROI, RECIST), one line each."""
    lines = [f"{n}. {r['kind']}: {r['text']}" for n, r in enumerate(rows[:8], 1)]
    if len(rows) > 8:
        lines.append(f"... and {len(rows) - 8} more (in the statistics export)")
    return lines


def _explanation(fig, ax, chosen, volume: Volume, y: float) -> float:
    """The chosen explanation view with its colour bar, range, threshold and meaning; returns the
    height left below it."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    from export.heat_image import colormap_table, heat_key_image

    heat = chosen.heat
    img = heat_key_image(volume, chosen)
    ax.text(0.05, y, "Explanation", fontsize=10, fontweight="bold", va="top")
    pa = fig.add_axes((0.05, y - 0.275, 0.4, 0.23))
    pa.axis("off")
    w, h = img.extent_mm
    pa.imshow(img.rgb, extent=(0, w, h, 0), interpolation="antialiased")
    left, right, top, bottom = img.letters
    for txt, xy in ((left, (0.02, 0.5)), (right, (0.98, 0.5)), (top, (0.5, 0.97)), (bottom, (0.5, 0.03))):
        pa.text(*xy, txt, color="yellow", fontsize=7, ha="center", va="center", transform=pa.transAxes)
    pa.set_title(f"{heat.name}: {img.view} (slice {img.slice_index + 1})", fontsize=8)
    cax = fig.add_axes((0.47, y - 0.26, 0.015, 0.2))
    bar = fig.colorbar(ScalarMappable(Normalize(heat.vmin, heat.vmax), ListedColormap(colormap_table(heat.colormap))),
                       cax=cax)
    bar.ax.tick_params(labelsize=7)
    if heat.threshold > heat.vmin:
        bar.ax.axhline(heat.threshold, color="white", lw=1.2)
        bar.ax.axhline(heat.threshold, color="black", lw=0.6, ls="--")
    lines = [f"map: {heat.name}", f"range {heat.vmin:.3g} to {heat.vmax:.3g}; shown from {heat.threshold:.3g} "
             "(dashed line on the bar)"] + ([heat.meaning] if heat.meaning else [])
    ax.text(0.53, y - 0.02, "What the colours mean", fontsize=10, fontweight="bold", va="top")
    lines = [w for line in lines for w in wrap(line, 0.42 * A4[0], 8)]
    ax.text(0.53, y - 0.042, "\n".join(lines), fontsize=8, va="top", linespacing=1.45)
    return y - EXPLANATION_H


def report_key_images(info: ReportInfo, volume: Volume, labelmap: LabelMap) -> list:
    """Three planes through the reviewer's edits (else the largest segment), and an axial plane
    through the most uncertain region when there is an uncertainty map."""
    edited, uncertain = info.regions.get("edited"), info.regions.get("uncertain")
    images = key_images(volume, labelmap, focus=box_centre(edited) if edited else None)
    for img in images:
        img.reason = "edited region" if edited else "largest segment"
    if uncertain:
        extra = key_images(volume, labelmap, focus=box_centre(uncertain), views=("axial",))
        for img in extra:
            img.reason = "most uncertain region"
        images += extra
    return images


def report_figures(info: ReportInfo, volume: Volume, labelmap: LabelMap, stats: list[dict],
                   snapshot: Optional[np.ndarray] = None) -> list:
    """The report's pages as matplotlib figures: case and model, key images (no 3D picture of a
    flat image), the explanation, segments, measurements and notes, each placed below the one
    before at its measured height."""
    head, rows = _table_rows(stats)
    flow = Flow(_header(info))
    half = 0.43 * A4[0]
    flow.columns([(0.05, half, "Case", _case_lines(info, volume)),
                  (0.52, half, "Model and review", _model_lines(info.model) + [
                      f"reviewer: {info.reviewer or '-'}    state: {(info.state or 'not saved').replace('_', ' ')}"])])
    reserve = TITLE_H + ROW_H * (min(len(rows), 4) + 1) if rows else 0.0
    _pictures(flow, volume, report_key_images(info, volume, labelmap), snapshot, reserve)
    if info.explanation is not None:
        flow.need(EXPLANATION_H)
        flow.placed(flow.y - _explanation(flow.fig, flow.ax, info.explanation, volume, flow.y))
    if rows:
        _table(flow, head, rows)
    if info.measurements:
        flow.columns([(0.05, 0.9 * A4[0], "Measurements", _measurement_lines(info.measurements))], size=8)
    if info.notes:
        flow.columns([(0.05, 0.9 * A4[0], "Notes", info.notes[:8])], size=8)
    footer = _footer(volume, "HD95 (mm)" in head)
    for n, (_fig, ax) in enumerate(flow.pages, 1):
        ax.text(0.05, 0.02, footer, fontsize=6.5, color="0.4")
        ax.text(0.95, 0.02, f"page {n}/{len(flow.pages)}", fontsize=7, ha="right", color="0.4")
    return [fig for fig, _ax in flow.pages]


def render_report(info: ReportInfo, volume: Volume, labelmap: LabelMap, stats: list[dict], path: str | Path,
                  snapshot: Optional[np.ndarray] = None, dpi: int = 150) -> Path:
    """Write the report as PDF (every page) or PNG (the first page; further pages as -2.png...)."""
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    figs = report_figures(info, volume, labelmap, stats, snapshot)
    with atomic_output(path) as tmp:
        if path.suffix.lower() == ".pdf":
            with PdfPages(tmp, metadata={"Title": "Segmentation review report", "Creator": "Delineate"}) as pdf:
                for fig in figs:
                    pdf.savefig(fig)
        else:
            for n, fig in enumerate(figs):
                fig.savefig(tmp if n == 0 else tmp.with_name(f"{tmp.stem}-{n + 1}{tmp.suffix}"), dpi=dpi)
    return path
