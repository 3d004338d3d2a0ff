"""Hostile and damaged DICOM (issue 14): every file is built here from pydicom's test files or our
own writer. Each is refused with our error naming the file and the attribute, or loads with a
warning naming what was skipped. Cases whose old behaviour was a native abort, a hang or a memory
bomb run in a child process with a time and address-space limit, so a regression fails the test
instead of taking pytest down."""
import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_dataset
from pydicom.uid import RLELossless

from core.errors import FormatError, TooLargeError
from core.volume import Volume
from formats.dicom.load import load_dicom
from formats.dicom.scan import list_series
from formats.dicom.write import write_series

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, warnings


def hwm_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's across exec)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024


warnings.simplefilter("ignore")
from core.errors import DelineateError
from formats.dicom.load import load_dicom
out = []
base = hwm_mb()
for path in sys.argv[1:]:
    try:
        v = load_dicom(path)
        out.append({"path": path, "shape": list(v.array.shape), "warnings": v.warnings})
    except DelineateError as exc:
        out.append({"path": path, "error": type(exc).__name__, "message": str(exc)})
print(json.dumps({"results": out, "base_mb": base,
                  "peak_mb": hwm_mb()}))
"""


def _limit_memory(limit=4 << 30):
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def load_in_child(*paths, timeout=30, address_limit=4 << 30):
    """load_dicom on each path in a fresh process (4 GiB address space): (results, peak RSS MiB)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("DELINEATE_MAX_IMAGE_BYTES", None)
    proc = subprocess.run([sys.executable, "-c", _CHILD, *map(str, paths)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, preexec_fn=lambda: _limit_memory(address_limit))
    assert proc.returncode == 0, f"child died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    load_in_child.base_mb = report["base_mb"]
    return report["results"], report["peak_mb"]


def _copy_with(tmp_path: Path, name: str, out: str, **attrs) -> Path:
    ds = pydicom.dcmread(get_testdata_file(name))
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.save_as(tmp_path / out)
    return tmp_path / out


@pytest.fixture
def series20(tmp_path):
    """20 axial CT slices 2 mm apart; slice k holds 100 * k everywhere."""
    arr = np.arange(20, dtype=np.int16)[:, None, None] * 100 + np.zeros((1, 12, 12), np.int16)
    vol = Volume.from_array(arr, spacing=(0.7, 0.7, 2.0), origin=(0, 0, 0), modality="CT")
    folder = tmp_path / "ct"
    write_series(vol, folder)
    return vol, folder


def _deflated_parts(name="image_dfl.dcm") -> tuple[bytes, bytes]:
    """(preamble + file meta, inflated data set) of one of pydicom's deflated files."""
    raw = Path(get_testdata_file(name)).read_bytes()
    with open(get_testdata_file(name), "rb") as fh:
        read_preamble(fh, False)
        _read_file_meta_info(fh)
        offset = fh.tell()
    return raw[:offset], zlib.decompress(raw[offset:], -zlib.MAX_WBITS)


def _deflated(path: Path, inflated: int, frames: int = 1, fill: bytes = b"\x00") -> Path:
    """A 512x512 8-bit image (``frames`` frames) whose deflated PixelData element inflates to
    ``inflated`` bytes of ``fill``; built from one repeated full-flush block, so 3 GB of zeros take
    a few MB and no time to make."""
    head, _ = _deflated_parts()
    ds = pydicom.dcmread(get_testdata_file("image_dfl.dcm"))
    del ds.PixelData
    if frames > 1:
        ds.NumberOfFrames = frames
    header = DicomBytesIO()
    header.is_little_endian, header.is_implicit_VR = True, False
    write_dataset(header, ds)
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = 1 << 24
    parts = [head, z.compress(header.getvalue() + b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", inflated)),
             z.flush(zlib.Z_FULL_FLUSH)]
    repeated = z.compress(fill * block) + z.flush(zlib.Z_FULL_FLUSH)  # independent of what precedes it
    parts += [repeated] * (inflated // block)
    parts.append(z.compress(fill * (inflated % block)) + z.flush())
    path.write_bytes(b"".join(parts))
    return path


def test_huge_number_of_frames_refused_at_once(tmp_path):
    """NumberOfFrames 2147483647 used to hang with memory growing (CT, US RGB, enhanced MR, JPEG 2000)."""
    names = ["CT_small.dcm", "US1_UNCR.dcm", "emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm", "693_J2KR.dcm"]
    paths = [_copy_with(tmp_path, name, f"frames_{name}", NumberOfFrames=2147483647) for name in names]
    results, peak = load_in_child(*paths)
    for path, res in zip(paths, results):
        assert res.get("error") == "TooLargeError", res
        assert res["message"].startswith(f"{path}: NumberOfFrames 2147483647")
    assert peak < 500


def test_frames_checked_against_the_bytes_the_file_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("DELINEATE_MAX_IMAGE_BYTES", str(8 << 30))  # the budget allows it: the file does not
    native = _copy_with(tmp_path, "emri_small.dcm", "native.dcm", NumberOfFrames=11)
    with pytest.raises(TooLargeError, match=r"native\.dcm: NumberOfFrames 11 .*holds only 80\.0 KiB"):
        load_dicom(native)
    j2k = _copy_with(tmp_path, "emri_small_jpeg_2k_lossless.dcm", "j2k.dcm", NumberOfFrames=5000)
    with pytest.raises(TooLargeError, match=r"j2k\.dcm: NumberOfFrames is 5000 .*only 10 fragment"):
        load_dicom(j2k)


def test_jpeg2000_ct_claiming_ybr_is_refused_not_aborted(tmp_path):
    """GDCM aborted the process (gdcm::Exception) when the components disagreed with the header."""
    ybr = _copy_with(tmp_path, "693_J2KR.dcm", "ybr.dcm", PhotometricInterpretation="YBR_FULL")
    ict = _copy_with(tmp_path, "693_J2KR.dcm", "ict.dcm", PhotometricInterpretation="YBR_ICT", SamplesPerPixel=3,
                     PlanarConfiguration=0)
    small = _copy_with(tmp_path, "693_J2KR.dcm", "small.dcm", Rows=256)
    (r_ybr, r_ict, r_small), _ = load_in_child(ybr, ict, small)
    assert r_ybr["error"] == "FormatError" and r_ybr["message"].startswith(f"{ybr}: PhotometricInterpretation "
                                                                           f"YBR_FULL needs 3 sample(s)")
    assert "SamplesPerPixel is 1" in r_ybr["message"]
    assert r_ict["error"] == "FormatError" and r_ict["message"].startswith(
        f"{ict}: JPEG 2000 frame 1 is 512x512 with 1 component(s) but the header says Rows 512, Columns 512, "
        f"SamplesPerPixel 3")
    assert r_small["error"] == "FormatError" and "header says Rows 256" in r_small["message"]


def test_jpeg2000_decoded_without_gdcm(tmp_path, monkeypatch):
    """JPEG 2000 goes to OpenJPEG (fails with an exception), never to GDCM (aborts on what it rejects)."""
    import pydicom.pixels.decoders.base as base

    tried = []
    real = base.Decoder.as_array

    def spy(self, src, **kw):
        tried.append(kw.get("decoding_plugin"))
        return real(self, src, **kw)
    monkeypatch.setattr(base.Decoder, "as_array", spy)
    v = load_dicom(get_testdata_file("693_J2KR.dcm"))
    assert v.modality == "CT" and tried and "gdcm" not in tried


def test_ybr_full_422_uncompressed_loads_in_colour():
    """Subsampled YBR holds 2 bytes a pixel, not 3: it was refused as truncated."""
    path = get_testdata_file("SC_ybr_full_422_uncompressed.dcm")
    v = load_dicom(path)
    assert v.is_color and v.array.shape == (1, 100, 100, 3) and v.array.dtype == np.uint8
    rgb = pydicom.dcmread(path).pixel_array  # pydicom converts YBR to RGB
    np.testing.assert_array_equal(v.array[0], rgb)
    assert v.array[0].reshape(-1, 3).std(axis=0).min() > 10  # real colour, not grey or one channel


def test_deflate_bomb_refused_before_memory_grows(tmp_path):
    """3 GB of zeros in 3 MB: refused after inflating little more than the header declares
    (the whole stream was inflated before: 5.96 GB peak)."""
    bomb = _deflated(tmp_path / "bomb.dcm", 3 * 10 ** 9)
    assert bomb.stat().st_size < 4 << 20
    (res,), peak = load_in_child(bomb)
    assert res["error"] == "TooLargeError" and "bomb.dcm" in res["message"]
    assert "decompression bomb" in res["message"]
    assert peak < 400, f"peak RSS {peak:.0f} MiB"


def test_large_deflated_file_loads_within_its_own_size(tmp_path):
    """An honest 64 MiB deflated multi-frame image: inflated to a temporary file and read frame by
    frame, so memory grows by about the image, not by two or three copies of it."""
    path = _deflated(tmp_path / "cine.dcm", 256 * 512 * 512, frames=256, fill=b"\x07")
    (res,), peak = load_in_child(path)
    assert res["shape"] == [256, 512, 512], res
    grown = peak - load_in_child.base_mb
    assert grown <= 1.2 * 64, f"memory grew by {grown:.0f} MiB for a 64 MiB image"


_SANDBOXED = r"""
import json, sys
import numpy as np
from formats import io, sandbox
v = io.read_image(sys.argv[1], isolate=True)
a = v.array[0]
rows, cols = a.shape
ok = all(np.array_equal(a[r], ((np.arange(cols) + r) % 3000 - 1024).astype(np.int16))
         for r in (0, 1, 63, 64, rows // 2, rows - 1))
print(json.dumps({"shape": list(v.array.shape), "dtype": str(v.array.dtype), "values_ok": ok,
                  "grown_mb": (sandbox.last_peak_rss - sandbox.last_start_rss) / 2 ** 20}))
"""


def test_large_native_file_decodes_into_the_shared_output(tmp_path):
    """A 128 MiB uncompressed CT frame is read in blocks straight into the array the caller maps,
    rescaled block by block: the decoding child grows by about the image (it grew by 4.8x before:
    the whole frame, its int32 rescale, the int16 result, the stack and the copy into shared memory)."""
    rows = cols = 8192
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # RescaleIntercept -1024: an integer rescale
    arr = np.empty((rows, cols), np.int16)
    base = np.arange(cols, dtype=np.int32)
    for r in range(rows):
        arr[r] = (base + r) % 3000
    ds.Rows, ds.Columns, ds.PixelData = rows, cols, arr.tobytes()
    del arr
    path = tmp_path / "big.dcm"
    ds.save_as(path)
    del ds
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for name in ("DELINEATE_MAX_IMAGE_BYTES", "DELINEATE_DECODE_IN_PROCESS", "DELINEATE_DECODE_MAX_BYTES"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", _SANDBOXED, str(path)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env, preexec_fn=_limit_memory)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["shape"] == [1, rows, cols] and report["dtype"] == "int16" and report["values_ok"], report
    assert report["grown_mb"] <= 1.3 * 128, f"the decoding child grew by {report['grown_mb']:.0f} MiB for 128 MiB"


def test_too_large_image_refused_before_decoding(tmp_path):
    """An honest image that cannot fit the reader's address-space limit is refused from its header,
    before any pixel is read or a deflated stream inflated for reading (the 3 GB deflated QA file
    cost a 2.97 GB peak before its refusal)."""
    path = _deflated(tmp_path / "big_dfl.dcm", 6144 * 512 * 512, frames=6144)  # 1.5 GiB
    (res,), peak = load_in_child(path, address_limit=3 << 29)
    assert res["error"] == "TooLargeError" and "big_dfl.dcm" in res["message"], res
    assert "a reader may use" in res["message"], res
    assert peak - load_in_child.base_mb < 200, f"memory grew to {peak:.0f} MiB before the refusal"


def test_deflated_file_inflating_to_its_declared_size_loads(tmp_path):
    exact = _deflated(tmp_path / "zeros.dcm", 512 * 512)
    v = load_dicom(exact)
    assert v.array.shape == (1, 512, 512) and not v.array.any()
    np.testing.assert_array_equal(load_dicom(get_testdata_file("image_dfl.dcm")).array[0],
                                  pydicom.dcmread(get_testdata_file("image_dfl.dcm")).pixel_array)


def _corrupt_deflated(path: Path, how: str) -> Path:
    head, body = _deflated_parts()
    stream = bytearray(zlib.compress(body, 9)[2:-4])  # raw deflate
    if how == "flipped":
        stream[0] ^= 0xFF
    else:
        stream = stream[:len(stream) // 3]
    path.write_bytes(head + bytes(stream))
    return path


@pytest.mark.parametrize("how, reason", [("flipped", "deflated data set is corrupt (zlib"),
                                         ("cut", "deflated data set ends early")])
def test_corrupt_deflated_file_refused_in_one_line(tmp_path, how, reason):
    path = _corrupt_deflated(tmp_path / "bad.dcm", how)
    with pytest.raises(FormatError, match=r"bad\.dcm") as exc:
        load_dicom(path)
    assert reason in str(exc.value) and "\n" not in str(exc.value)


def test_folder_scan_skips_a_corrupt_file_and_reads_the_series(series20):
    vol, folder = series20
    _corrupt_deflated(folder / "zz_bad.dcm", "flipped")
    series = list_series(folder)
    assert [s.n_images for s in series] == [20]
    (path, why), = series[0].skipped
    assert path.endswith("zz_bad.dcm") and "zlib" in why
    v = load_dicom(folder)
    np.testing.assert_array_equal(v.array, vol.array)
    assert any(w.startswith("skipped zz_bad.dcm: deflated data set is corrupt") for w in v.warnings)


def test_cli_info_and_convert_on_a_folder_with_a_corrupt_file(series20, tmp_path):
    vol, folder = series20
    _corrupt_deflated(folder / "zz_bad.dcm", "cut")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    out = tmp_path / "ct.nii.gz"
    runs = [subprocess.Popen([sys.executable, "main.py", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=env)
            for args in (["info", str(folder)], ["convert", str(folder), str(out)])]
    (info_out, info_err), (conv_out, conv_err) = [r.communicate(timeout=90) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], info_err + conv_err
    assert "Traceback" not in info_err + conv_err
    assert "skipped" in info_out and "zz_bad.dcm" in info_out and "ends early" in info_out
    assert "size (xyz):  [12, 12, 20]" in info_out
    assert "zz_bad.dcm" in conv_err and out.exists()


def test_truncated_slice_is_skipped_and_filled_as_a_missing_slice(series20):
    vol, folder = series20
    cut = folder / "IM00008.dcm"  # slice k = 7
    cut.write_bytes(cut.read_bytes()[:-100])
    v = load_dicom(folder)
    assert v.array.shape == vol.array.shape
    assert any(w.startswith("skipped IM00008.dcm:") and "file ends early" in w for w in v.warnings)
    assert any("1 slice(s) missing" in w for w in v.warnings)
    np.testing.assert_allclose(v.array[7], 700)  # linear between 600 and 800
    np.testing.assert_array_equal(v.array[8], vol.array[8])


def test_undecodable_slice_found_while_reading_is_skipped(series20):
    """A compressed slice whose header is fine but whose data is garbage fails only when decoded:
    the series is planned again without it."""
    vol, folder = series20
    bad = folder / "IM00013.dcm"  # slice k = 12
    ds = pydicom.dcmread(bad)
    ds.compress(RLELossless)
    ds.save_as(bad)
    raw = bytearray(bad.read_bytes())
    at = raw.rfind(b"\xfe\xff\x00\xe0") + 8  # the RLE fragment: its segment count and offsets
    raw[at:at + 16] = b"\xff" * 16
    bad.write_bytes(bytes(raw))
    seen = []
    v = load_dicom(folder, on_first_slice=lambda k, sl, g: seen.append(k))
    assert any(w.startswith("skipped IM00013.dcm: pixel data cannot be decoded") for w in v.warnings)
    assert v.array.shape == vol.array.shape
    np.testing.assert_allclose(v.array[12], 1200)
    np.testing.assert_array_equal(v.array[:12], vol.array[:12])


def test_many_bad_members_refuse_the_series(series20):
    vol, folder = series20
    for k in range(1, 8):
        p = folder / f"IM{k:05d}.dcm"
        ds = pydicom.dcmread(p)
        ds.compress(RLELossless)
        ds.save_as(p)
        raw = bytearray(p.read_bytes())
        at = raw.rfind(b"\xfe\xff\x00\xe0") + 8
        raw[at:at + 16] = b"\xff" * 16
        p.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"7 of 20 images cannot be read \(first: IM0000\d\.dcm"):
        load_dicom(folder)


def test_header_only_and_cut_files_get_one_line_reasons(series20, tmp_path):
    vol, folder = series20
    src = folder / "IM00001.dcm"
    ds = pydicom.dcmread(src)
    del ds.PixelData
    ds.save_as(tmp_path / "header_only.dcm")
    raw = src.read_bytes()
    (tmp_path / "stub.dcm").write_bytes(raw[:100])
    (tmp_path / "in_header.dcm").write_bytes(raw[:400])
    expected = {"header_only.dcm": "holds no pixel data (a header-only or truncated file)",
                "stub.dcm": "only 100 bytes",
                "in_header.dcm": "the file ends after 400 bytes"}
    for name, reason in expected.items():
        with pytest.raises(FormatError, match=name.replace(".", r"\.")) as exc:
            load_dicom(tmp_path / name)
        msg = str(exc.value)
        assert reason in msg and "force=True" not in msg and "\n" not in msg


def test_truncated_pixel_data_names_the_file(series20):
    vol, folder = series20
    p = folder / "IM00001.dcm"
    p.write_bytes(p.read_bytes()[:-150])
    with pytest.raises(TooLargeError, match=r"IM00001\.dcm: the header .*holds only .*file ends early"):
        load_dicom(p)


@pytest.mark.parametrize("attr, value, field", [
    ("RescaleSlope", "1e308", "RescaleSlope"),
    ("RescaleIntercept", "-1e300", "RescaleIntercept"),
    ("RescaleSlope", "nan", "RescaleSlope"),
    ("PixelSpacing", ["1e308", "1e308"], "PixelSpacing"),
    ("PixelSpacing", ["inf", "0.5"], "PixelSpacing"),
    ("ImagePositionPatient", ["1e308", "0", "0"], "ImagePositionPatient"),
    ("ImageOrientationPatient", ["nan"] * 6, "ImageOrientationPatient"),
    ("SliceThickness", "1e308", "SliceThickness"),
])
def test_absurd_rescale_and_geometry_refused_with_the_field_named(tmp_path, attr, value, field):
    path = tmp_path / "odd.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with pytest.warns(UserWarning) if value in ("nan", ["nan"] * 6, ["inf", "0.5"]) else _nothing():
        setattr(ds, attr, value)
    ds.save_as(path)
    with pytest.raises(FormatError, match=rf"odd\.dcm: {field}") as exc:
        load_dicom(path)
    assert "refused" in str(exc.value)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_bad_member_geometry_is_skipped_in_a_series(series20):
    vol, folder = series20
    p = folder / "IM00004.dcm"
    ds = pydicom.dcmread(p)
    ds.RescaleSlope = "1e308"
    ds.save_as(p)
    v = load_dicom(folder)
    assert any(w.startswith("skipped IM00004.dcm: RescaleSlope is 1e+308") for w in v.warnings)
    np.testing.assert_allclose(v.array[3], 300)


def test_enhanced_per_frame_geometry_names_the_frame(tmp_path):
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    shared, orient, measures = Dataset(), Dataset(), Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.5], 2
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orient], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    for k in range(10):
        item, pos = Dataset(), Dataset()
        pos.ImagePositionPatient = [0, 0, 2 * k]
        item.PlanePositionSequence = [pos]
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = per
    ds.save_as(tmp_path / "ok.dcm")
    assert load_dicom(tmp_path / "ok.dcm").array.shape == (10, 64, 64)
    with pytest.warns(UserWarning):
        per[4].PlanePositionSequence[0].ImagePositionPatient = ["0", "nan", "0"]
    ds.save_as(tmp_path / "emr.dcm")
    with pytest.raises(FormatError, match=r"emr\.dcm: ImagePositionPatient \(frame 5\) is \[0\.0, nan, 0\.0\]"):
        load_dicom(tmp_path / "emr.dcm")


def test_corrupt_value_representation_skipped_in_a_folder(series20):
    """pydicom converts values on first use: a garbled VR raised NotImplementedError past the scan."""
    vol, folder = series20
    raw = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    at = raw.find(b"\x28\x00\x04\x00CS")  # PhotometricInterpretation
    raw[at + 4:at + 6] = b"C\xaa"
    (folder / "zz_vr.dcm").write_bytes(bytes(raw))
    v = load_dicom(folder)
    np.testing.assert_array_equal(v.array, vol.array)
    assert any(w.startswith("skipped zz_vr.dcm: DICOM header is malformed (NotImplementedError") for w in v.warnings)
    with pytest.raises(FormatError, match=r"zz_vr\.dcm: DICOM header is malformed"):
        load_dicom(folder / "zz_vr.dcm")


def test_zero_samples_per_pixel_is_refused_not_taken_for_one(tmp_path):
    path = _copy_with(tmp_path, "emri_small_jpeg_2k_lossless.dcm", "spp0.dcm", SamplesPerPixel=0)
    with pytest.raises(FormatError, match=r"spp0\.dcm: PhotometricInterpretation MONOCHROME2 needs 1 .*"
                                          r"SamplesPerPixel is 0"):
        load_dicom(path)


def test_decoded_shape_must_match_the_header(tmp_path):
    """Big-endian pixels are decoded by pydicom: a header claiming 1 row gave (64, 1, 64) arrays."""
    path = _copy_with(tmp_path, "MR_small_bigendian.dcm", "rows.dcm", Rows=1)
    with pytest.raises(FormatError, match=r"rows\.dcm: decoded pixel data is .* but the header says 1x64"):
        load_dicom(path)


def test_corrupt_jpeg_never_reaches_gdcm(tmp_path):
    """GDCM aborted the process (gdcmJPEGCodec.cxx:149) on JPEG data the other decoders had refused:
    it is not tried where another plugin exists, and BitsAllocated 64 on integer pixels is refused first."""
    ds = pydicom.dcmread(get_testdata_file("JPEG-LL.dcm"))
    ds.BitsAllocated = 64
    ds.save_as(tmp_path / "bits64.dcm")
    raw = bytearray(Path(get_testdata_file("JPEG-LL.dcm")).read_bytes())
    sos = raw.find(b"\xff\xda")  # JPEG start of scan: garble the entropy-coded data after it
    raw[sos + 40:sos + 4000] = bytes(range(256)) * 15 + bytes(range(120))
    (tmp_path / "garbled.dcm").write_bytes(bytes(raw))
    (bits64, garbled), _ = load_in_child(tmp_path / "bits64.dcm", tmp_path / "garbled.dcm")
    assert bits64.get("error") == "FormatError"
    assert "BitsAllocated 64 is only for DoubleFloatPixelData" in bits64["message"]
    if "error" in garbled:  # OpenJPEG/libjpeg may decode garbage into an image; either way no abort
        assert garbled["message"].startswith(f"{tmp_path / 'garbled.dcm'}: ") and "gdcm" not in garbled["message"]


def test_absurd_ultrasound_region_spacing_refused(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("color3d_jpeg_baseline.dcm"))
    ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX = 1e308
    ds.save_as(tmp_path / "us.dcm")
    with pytest.raises(FormatError, match=r"us\.dcm: PhysicalDeltaY/X \(SequenceOfUltrasoundRegions\) is .*1e\+308"):
        load_dicom(tmp_path / "us.dcm")
