"""PACS actions the CLI and the GUI share: resolve a node (a configured name, ``AET@host:port`` or a
DICOMweb URL), echo it, search it, retrieve a series into the local cache, send files back.

Each takes ``progress`` and ``cancel``; each raises DelineateError subclasses naming the node. A
series is opened from the folder ``retrieve`` returns, which exists only once the transfer is
complete (pacs.cache). ``progress`` may be called from a network thread (pynetdicom's), so a GUI
passes a callback that only emits a signal."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Union

from core.errors import DelineateError
from core.progress import CancelToken, ProgressFn, check, no_progress
from pacs import nodes as _nodes
from pacs.cache import SeriesCache
from pacs.nodes import DimseNode, Node, Settings, WebNode
from pacs.query import Match, Query

METHODS = ("auto", "get", "move", "wado")  # auto: C-GET for a DIMSE node, WADO-RS for a DICOMweb one


def settings(config: Optional[str | Path] = None) -> Settings:
    return _nodes.load(config)


def node(which: Union[str, Node], config: Optional[str | Path] = None) -> Node:
    return which if isinstance(which, (DimseNode, WebNode)) else settings(config).node(which)


def cache(config: Optional[str | Path] = None, root: Optional[str | Path] = None) -> SeriesCache:
    return SeriesCache(root, int(settings(config).cache_gb * 1e9))


def echo(which: Union[str, Node], *, config=None, local=None, progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None) -> float:
    """Check a node answers (C-ECHO, or a one-study QIDO-RS); returns the seconds it took. ``local``:
    the calling AE to try (pacs.nodes.LocalAE; default the configured one)."""
    import time

    n = node(which, config)
    t0 = time.perf_counter()
    if isinstance(n, WebNode):
        from pacs import dicomweb

        dicomweb.echo(n, progress, cancel)
    else:
        from pacs import dimse

        dimse.echo(n, local or settings(config).local, progress, cancel)
    return time.perf_counter() - t0


def find(which: Union[str, Node], query: Query, level: str = "study", *, config=None,
         progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> list[Match]:
    n = node(which, config)
    if isinstance(n, WebNode):
        from pacs import dicomweb

        return dicomweb.find(n, query, level, progress, cancel)
    from pacs import dimse

    return dimse.find(n, query, level, settings(config).local, progress, cancel)


def retrieve(which: Union[str, Node], study_uid: str, series_uid: str, *, method: str = "auto",
             expected: Optional[int] = None, config=None, cache_root=None, refresh: bool = False,
             progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
             on_preview: Optional[Callable] = None) -> Path:
    """The local folder of a complete copy of the series: from the cache, or retrieved into it
    (C-GET, C-MOVE or WADO-RS). Cancelled or failed, nothing of it is left in the cache.
    ``on_preview`` receives the first instance received, decoded as a one-slice Volume, while the
    rest comes (from the thread that received it; only an image to look at, never the series)."""
    if method not in METHODS:
        raise DelineateError(f"retrieve method {method!r}: one of {', '.join(METHODS)}")
    n = node(which, config)
    s = settings(config)
    store = SeriesCache(cache_root, int(s.cache_gb * 1e9))
    hit = None if refresh else store.get(series_uid)
    if hit is not None:
        progress(1.0, "in the local cache")
        return hit
    if method == "auto":
        method = "wado" if isinstance(n, WebNode) else "get"
    if method == "wado" and not isinstance(n, WebNode):
        raise DelineateError(f"{n}: WADO-RS needs a DICOMweb node (an http(s):// URL)")
    if method != "wado" and isinstance(n, WebNode):
        raise DelineateError(f"{n}: C-{method.upper()} needs a DIMSE node (AET@host:port)")
    check(cancel)
    if expected is None and method == "wado":  # WADO-RS does not say how many instances will come
        match = [m for m in find(n, Query(study_uid=study_uid), "series", cancel=cancel) if m.series_uid == series_uid]
        expected = match[0].instances if match else None
    with store.incoming(series_uid) as folder:
        progress = _previewing(folder, progress, on_preview)
        if method == "wado":
            from pacs import dicomweb

            dicomweb.retrieve_series(n, study_uid, series_uid, folder, expected, progress, cancel)
        else:
            from pacs import dimse

            fn = dimse.get_series if method == "get" else dimse.move_series
            fn(n, study_uid, series_uid, folder, s.local, expected, progress, cancel)
    progress(1.0, "retrieved")
    return store.get(series_uid)


def _previewing(folder: Path, progress: ProgressFn, on_preview: Optional[Callable]) -> ProgressFn:
    """``progress`` that also hands the first instance that arrived in ``folder`` to ``on_preview``,
    decoded (in the sandbox, as every untrusted file) as a one-slice volume."""
    if on_preview is None:
        return progress
    shown = []

    def wrapped(fraction: float, message: str = "") -> None:
        if not shown:
            first = next((p for p in folder.iterdir() if p.is_file()), None)
            if first is not None:
                shown.append(first)
                try:
                    from formats.io import read_image

                    image = read_image(first)
                except DelineateError:
                    pass  # not an image to show (a SEG, a report): the retrieve goes on
                else:
                    image.description = "retrieving…"
                    on_preview(image)
        progress(fraction, message)

    return wrapped


# -- what a study browser needs besides search and retrieve -------------------------------------
NON_IMAGE = ("SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "DOC", "KO", "PR", "REG")


def thumbnail(which: Union[str, Node], study_uid: str, series_uid: str, *, modality: str = "",
              size: int = 96, config=None, cancel: Optional[CancelToken] = None):
    """The series' middle slice as a small grey uint8 array (at most ``size`` pixels a side, windowed
    to its 1st-99th percentiles), or None for a series that holds no image (SEG, RTSTRUCT, report).
    Only that one instance is retrieved, into a temp folder removed after; nothing enters the cache."""
    import tempfile

    import numpy as np

    from formats.io import read_image
    from pacs.instance import middle_instance

    if modality.upper() in NON_IMAGE:
        return None
    n = node(which, config)
    with tempfile.TemporaryDirectory(prefix="delineate-thumb-") as tmp:
        path = middle_instance(n, study_uid, series_uid, tmp, settings(config).local, cancel)
        try:
            image = read_image(path, cancel=cancel)
        except DelineateError:
            return None  # an instance no viewer shows as an image
    plane = np.asarray(image.array[image.array.shape[0] // 2], dtype=np.float32)
    if plane.ndim == 3:  # colour: its brightness
        plane = plane[..., :3].mean(axis=-1)
    step = max(1, -(-max(plane.shape) // size))
    plane = plane[::step, ::step]
    lo, hi = np.percentile(plane, (1, 99)) if plane.size else (0.0, 1.0)
    scaled = (plane - lo) / (hi - lo) if hi > lo else np.zeros_like(plane)
    return np.ascontiguousarray(np.clip(scaled * 255, 0, 255).astype(np.uint8))


def save_node(name: str, n: Node, *, replace: Optional[str] = None, config=None) -> Settings:
    """Add or change a node in the settings file (its secret is never written); ``replace`` names the
    node it takes the place of (a rename). Returns the settings as saved."""
    import dataclasses

    name = name.strip()
    if not name:
        raise DelineateError("a PACS node needs a name")
    s = settings(config)
    if replace and replace != name:
        s.nodes.pop(replace, None)
    s.nodes[name] = dataclasses.replace(n, name=name)
    _nodes.save(s)
    return s


def save_local(ae_title: str, port: int, *, config=None) -> Settings:
    """Delineate's own AE title (the calling AE every node sees) and its C-MOVE Storage SCP port."""
    import dataclasses

    s = settings(config)
    s.local = dataclasses.replace(s.local, ae_title=ae_title, port=port)
    _nodes.save(s)
    return s


def remove_node(name: str, *, config=None) -> Settings:
    s = settings(config)
    if s.nodes.pop(name, None) is not None:
        _nodes.save(s)
    return s


def cache_usage(*, config=None, cache_root=None) -> tuple[int, int, int]:
    """(series, bytes, limit in bytes) of the local retrieve cache."""
    c = cache(config, cache_root)
    entries = c.entries()
    return len(entries), sum(e.size for e in entries), c.max_bytes


def empty_cache(*, config=None, cache_root=None) -> int:
    """Remove every complete series from the cache; returns how many."""
    return cache(config, cache_root).clear()


def dicom_files(paths) -> list[Path]:
    """The files to send: files as given, folders walked (hidden files and DICOMDIR left out)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                          and f.name.upper() != "DICOMDIR")
        elif p.is_file():
            out.append(p)
        else:
            raise DelineateError(f"{p}: no such file or folder to send")
    if not out:
        raise DelineateError("nothing to send: no files in " + ", ".join(map(str, paths)))
    return out


def send(which: Union[str, Node], paths, *, config=None, progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None) -> int:
    """C-STORE (DIMSE node) or STOW-RS (DICOMweb node) DICOM files or folders; returns the count.
    De-identify on export (export --deidentify) before sending when the archive must not see
    identifiers."""
    n = node(which, config)
    files = dicom_files(paths)
    if isinstance(n, WebNode):
        from pacs import dicomweb

        return dicomweb.send(n, files, progress, cancel)
    from pacs import dimse

    return dimse.send(n, files, settings(config).local, progress, cancel)


def send_export(which: Union[str, Node], case, fmt: str = "seg", *, deidentify: bool = False,
                compress: bool = False, config=None, progress: ProgressFn = no_progress,
                cancel: Optional[CancelToken] = None) -> int:
    """Export ``case`` (app.actions.exporting.CaseExport) as a DICOM SEG, an RTSTRUCT or the review
    report (as an Encapsulated PDF in the image's study) and send it, with the images it references
    whenever the export wrote them: de-identified copies of the source (``deidentify``, so the
    archive gets a consistent de-identified study) or, for an image that did not come from DICOM,
    the series written for it. A de-identified report lands in a de-identified study of its own
    (each export keeps its own UID map). Returns how many files were sent."""
    import tempfile

    from app.actions.exporting import export_case

    if fmt not in ("seg", "rtstruct", "report"):
        raise DelineateError(f"a PACS takes a seg, an rtstruct or the report, not {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="delineate-send-") as tmp:
        out = Path(tmp) / ("report.pdf" if fmt == "report" else f"{fmt}.dcm")
        files = export_case(fmt, case, out, deidentify=deidentify, compress=compress,
                            progress=lambda f, m: progress(0.5 * f, m), cancel=cancel)
        if fmt == "report":
            files = [_report_instance(files[0], case.volume, deidentify)]
        return send(which, files, config=config, progress=lambda f, m: progress(0.5 + 0.5 * f, m), cancel=cancel)


def _report_instance(pdf: Path, volume, deidentify: bool) -> Path:
    from formats.dicom.sources import source_datasets
    from pacs.encapsulated import encapsulated_pdf

    if not volume.metadata.get("series_uid"):
        raise DelineateError("the report is filed in the study of a DICOM image: open the series from the "
                             "PACS (or a DICOM folder) to send its report")
    sources = source_datasets(volume)
    if deidentify:
        from formats.dicom.deid import Deidentifier

        deid = Deidentifier()
        sources = [deid(ds) for ds in sources]
    return encapsulated_pdf(pdf, sources, pdf.with_suffix(".dcm"))
