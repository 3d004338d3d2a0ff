#!/usr/bin/env python3
"""Retrieve a 512x512x300 int16 CT series from a local Orthanc (tests/pacs_server.py) by C-GET and
by WADO-RS, beside reading the same files from disk, in the same run.

First slice: the first instance received and decoded, against Delineate's first slice of the local
read (goal <= 2x). Whole: retrieve into the cache and load, against the local load.

First slice on screen: the window's own paths, in a worker thread as the window runs them (so the
sandbox decodes in its forkserver child, as in the window): File > Open from PACS (app.actions.pacs
.retrieve's on_preview, the first instance received) against opening the same series from a local
folder (opening.scan, then opening.read_series's on_preview); the time until the slice is handed to
the window, which draws it next (drawing, the same for both, is not included).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.actions import pacs as actions  # noqa: E402
from bench.open_series import make_series, ours  # noqa: E402
from pacs import nodes  # noqa: E402
from pacs.nodes import DimseNode, LocalAE, WebNode  # noqa: E402
from pacs.query import Query  # noqa: E402
from tests.pacs_server import AE_TITLE, LOCAL_AE, PASSWORD, USER, Orthanc  # noqa: E402


def retrieve(node: str, method: str, ids, config: Path, cache: Path):
    """(first instance decoded, retrieved, loaded) seconds."""
    import pydicom

    t0 = time.perf_counter()
    first = {}

    def progress(fraction, message):
        if "t" not in first:
            partial = next(cache.glob(".partial-*"))
            f = next(partial.iterdir())
            pydicom.dcmread(f).pixel_array
            first["t"] = time.perf_counter() - t0

    folder = actions.retrieve(node, *ids, method=method, config=config, cache_root=cache, refresh=True,
                              progress=progress)
    t_retrieved = time.perf_counter() - t0
    _, _, _, vol = ours(folder)
    return first["t"], t_retrieved, time.perf_counter() - t0, vol


def _in_worker(fn):
    """``fn()`` in a thread, as the window's task runner runs it."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("result", fn()))
    t.start()
    t.join()
    return out["result"]


def local_on_screen(folder: Path) -> float:
    """Seconds to the first slice of a local DICOM folder, as File > Open DICOM folder shows it."""
    from app.actions import opening

    t0 = time.perf_counter()
    seen = {}

    def work():
        (info,) = opening.scan(str(folder))
        return opening.read_series(info, on_preview=lambda v: seen.setdefault("t", time.perf_counter() - t0))

    _in_worker(work)
    return seen["t"]


def pacs_on_screen(node: str, method: str, ids, config: Path, cache: Path) -> float:
    """Seconds to the first slice of a retrieve, as File > Open from PACS shows it."""
    t0 = time.perf_counter()
    seen = {}
    _in_worker(lambda: actions.retrieve(node, *ids, method=method, config=config, cache_root=cache, refresh=True,
                                        on_preview=lambda v: seen.setdefault("t", time.perf_counter() - t0)))
    return seen["t"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slices", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Orthanc() as server:
        tmp = Path(tmp)
        ref = make_series(tmp / "series", args.size, args.slices)
        config = tmp / "pacs.json"
        s = nodes.Settings(local=LocalAE(LOCAL_AE, server.scp_port), path=config)
        s.nodes["dimse"] = DimseNode(AE_TITLE, "127.0.0.1", server.dicom_port)
        s.nodes["web"] = WebNode(server.url, auth="basic", username=USER, secret_env="DELINEATE_BENCH_PW")
        nodes.save(s)
        os.environ["DELINEATE_BENCH_PW"] = PASSWORD
        t = time.perf_counter()
        actions.send("dimse", [tmp / "series"], config=config)
        t_send = time.perf_counter() - t
        mb = sum(p.stat().st_size for p in (tmp / "series").iterdir()) / 1e6
        print(f"{args.size}x{args.size}x{args.slices} int16 series, {mb:.0f} MB, sent by C-STORE in {t_send:.1f} s "
              f"({mb / t_send:.0f} MB/s)")
        (match,) = actions.find("dimse", Query(), "series", config=config)
        ids = (match.study_uid, match.series_uid)
        ours(tmp / "series")  # warm the page cache
        _, local_first, local_whole, _ = ours(tmp / "series")
        print(f"local disk   first slice {local_first * 1000:7.0f} ms   whole volume {local_whole * 1000:7.0f} ms")
        for node, method in (("dimse", "get"), ("dimse", "move"), ("web", "wado")):
            first, got, whole, vol = retrieve(node, method, ids, config, tmp / "cache")
            assert np.array_equal(vol.array, ref.array)
            print(f"{method.upper():>5}        first slice {first * 1000:7.0f} ms ({first / local_first:4.1f}x, "
                  f"goal <= 2x)   retrieved {got * 1000:7.0f} ms ({mb / got:.0f} MB/s)   "
                  f"+ loaded {whole * 1000:7.0f} ms ({whole / local_whole:4.1f}x local)")
        local_on_screen(tmp / "series")  # the forkserver up, as in a window that has opened something
        local = min(local_on_screen(tmp / "series") for _ in range(2))
        print(f"first slice on screen (the window's paths): local folder {local * 1000:5.0f} ms")
        for node, method in (("dimse", "get"), ("dimse", "move"), ("web", "wado")):
            t = pacs_on_screen(node, method, ids, config, tmp / "cache")
            print(f"{method.upper():>5}        first slice on screen {t * 1000:5.0f} ms ({t / local:4.1f}x local, goal <= 2x)")
        print("(one run each, same machine; voxels verified identical to the series sent)")


if __name__ == "__main__":
    main()
