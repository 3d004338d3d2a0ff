"""Every DICOM file shipped in pydicom and pydicom-data loads with sane geometry or is refused
with our own error naming the file; none crashes, hangs or leaks a raw exception."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from core.errors import DelineateError, FormatError
from formats.io import read_image


def _corpus() -> list[Path]:
    roots = []
    for pkg, sub in (("pydicom", "data/test_files"), ("data_store", "data")):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            roots.append(Path(list(spec.submodule_search_locations)[0]) / sub)
    files = []
    for root in roots:
        files += [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in ("", ".dcm")
                  and p.name != "DICOMDIR" and "__" not in p.name]
    return sorted(files)


CORPUS = _corpus()


def test_corpus_is_large():
    assert len(CORPUS) > 200


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_loads_or_is_refused_clearly(path):
    try:
        v = read_image(path)
    except FormatError as exc:
        assert str(path) in str(exc) and exc.problem
        return
    except DelineateError as exc:
        assert str(exc)
        return
    g = v.geometry
    assert np.all(np.isfinite(v.spacing)) and np.all(v.spacing > 0) and np.all(v.spacing < 1000)
    assert np.all(np.isfinite(v.origin))
    np.testing.assert_allclose(g.direction.T @ g.direction, np.eye(3), atol=1e-4)
    assert v.array.shape[:3] == g.shape_zyx and v.array.size > 0
    if v.is_color:
        assert v.array.dtype == np.uint8
    assert np.all(np.isfinite(v.array)) if np.issubdtype(v.array.dtype, np.floating) else True


def test_known_files_load_as_expected():
    by_name = {p.name: p for p in CORPUS}
    ct = read_image(by_name["693_J2KR.dcm"])  # JPEG 2000 lossless CT: same HU as the uncompressed twin
    np.testing.assert_array_equal(ct.array, read_image(by_name["693_UNCR.dcm"]).array)
    assert ct.array.min() < -1000 and ct.modality == "CT"
    us = read_image(by_name["color3d_jpeg_baseline.dcm"])
    assert us.is_color and us.array.shape[0] == 120
    for broken in ("MR_truncated.dcm", "rtplan.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"):
        with pytest.raises(FormatError, match=broken.replace(".", r"\.")):
            read_image(by_name[broken])
