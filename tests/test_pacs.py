"""PACS against a real Orthanc (tests/pacs_server.py): C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE,
QIDO-RS, WADO-RS, STOW-RS, the retrieve cache and its all-or-nothing transfers, and the node
settings. No mocks: when Orthanc cannot start, these tests fail with the reason."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pydicom
import pytest

from app.actions import pacs as actions
from core.errors import Cancelled, DelineateError, FormatError
from core.labels import Code, Label, LabelMap, LabelTable
from core.progress import CancelToken
from core.volume import Volume
from formats.dicom.write import write_series
from formats.io import read_image
from pacs import dicomweb, dimse, nodes
from pacs.cache import SeriesCache
from pacs.nodes import DimseNode, LocalAE, NodeError, WebNode
from pacs.query import Query
from tests.conftest import ROOT, rotation
from tests.pacs_server import AE_TITLE, LOCAL_AE, PASSWORD, USER, Orthanc

N_SLICES = 120


@pytest.fixture(scope="module")
def orthanc():
    with Orthanc() as server:  # raises OrthancError with Orthanc's log when it cannot start
        yield server


@pytest.fixture(scope="module")
def ct():
    rng = np.random.default_rng(7)
    return Volume.from_array(rng.integers(-1024, 2000, size=(N_SLICES, 64, 64)).astype(np.int16),
                             spacing=(0.7, 0.8, 1.25), origin=(-40.5, 12.25, 80.0),
                             direction=rotation(0.1, -0.05, 0.2), modality="CT")


@pytest.fixture(scope="module")
def pacs_env(orthanc, ct, tmp_path_factory):
    """Orthanc holding the CT series (sent by C-STORE), and settings naming both its faces."""
    tmp = tmp_path_factory.mktemp("pacs")
    files = write_series(ct, tmp / "upload", patient_name="Test^Pacs", patient_id="PACS-0001")
    config = tmp / "pacs.json"
    settings = nodes.Settings(local=LocalAE(LOCAL_AE, orthanc.scp_port), path=config)
    settings.nodes["dimse"] = DimseNode(AE_TITLE, "127.0.0.1", orthanc.dicom_port, name="dimse")
    settings.nodes["web"] = WebNode(orthanc.url, "web", "basic", USER, "DELINEATE_TEST_PACS_PW")
    nodes.save(settings)
    os.environ["DELINEATE_TEST_PACS_PW"] = PASSWORD
    t0 = time.perf_counter()
    assert actions.send("dimse", [tmp / "upload"], config=config) == N_SLICES
    sent_s = time.perf_counter() - t0
    study = pydicom.dcmread(files[0], stop_before_pixels=True)
    return {"config": config, "tmp": tmp, "study_uid": str(study.StudyInstanceUID), "sent_s": sent_s,
            "series_uid": str(study.SeriesInstanceUID), "date": str(study.StudyDate)}


def same_image(a: Volume, b: Volume) -> None:
    assert a.array.shape == b.array.shape and np.array_equal(a.array, b.array)
    np.testing.assert_allclose(a.geometry.spacing, b.geometry.spacing, atol=1e-6)
    np.testing.assert_allclose(a.geometry.origin, b.geometry.origin, atol=1e-4)
    np.testing.assert_allclose(a.geometry.direction, b.geometry.direction, atol=1e-6)


def test_echo_and_a_wrong_port_or_ae_title_fail_fast_and_clearly(orthanc):
    local = LocalAE(LOCAL_AE, orthanc.scp_port)
    assert dimse.echo(DimseNode(AE_TITLE, "127.0.0.1", orthanc.dicom_port), local) < 5
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()  # bound, then freed: nothing listens there
    silent = socket.socket()  # a port that accepts TCP and never speaks DICOM
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    cases = {
        "refused": (DimseNode(AE_TITLE, "127.0.0.1", refused_port), "connection refused"),
        "http port": (DimseNode(AE_TITLE, "127.0.0.1", orthanc.http_port), "not with a DICOM association"),
        "wrong AE title": (DimseNode("NOT_ORTHANC", "127.0.0.1", orthanc.dicom_port), "rejected the association"),
        "silent": (DimseNode(AE_TITLE, "127.0.0.1", silent.getsockname()[1]), "not with a DICOM association"),
    }
    try:
        for what, (node, words) in cases.items():
            t0 = time.perf_counter()
            with pytest.raises(NodeError) as e:
                dimse.echo(node, local)
            took = time.perf_counter() - t0
            assert took < 10, (what, took)
            assert str(e.value).startswith(f"{node.ae_title}@127.0.0.1:{node.port}: "), (what, str(e.value))
            if words:
                assert words in str(e.value), (what, str(e.value))
    finally:
        silent.close()


def test_find_by_patient_id_date_range_and_modality(pacs_env):
    cfg, day = pacs_env["config"], pacs_env["date"]
    for node in ("dimse", "web"):
        studies = actions.find(node, Query(patient_id="PACS-0001"), config=cfg)
        assert [s.study_uid for s in studies] == [pacs_env["study_uid"]]
        assert studies[0].patient_name == "Test^Pacs"
        series = actions.find(node, Query(date_from=day, date_to=day, modality="CT"), "series", config=cfg)
        assert pacs_env["series_uid"] in [s.series_uid for s in series]
        mine = next(s for s in series if s.series_uid == pacs_env["series_uid"])
        assert mine.instances == N_SLICES and mine.modality == "CT" and mine.patient_id == "PACS-0001"
        assert actions.find(node, Query(date_from="19900101", date_to="19901231"), config=cfg) == []
        assert actions.find(node, Query(patient_id="PACS-0001", modality="MR"), "series", config=cfg) == []


@pytest.mark.parametrize("method", ["get", "move", "wado"])
def test_retrieve_gives_identical_voxels_and_geometry(pacs_env, ct, method, tmp_path):
    node = "web" if method == "wado" else "dimse"
    folder = actions.retrieve(node, pacs_env["study_uid"], pacs_env["series_uid"], method=method,
                              config=pacs_env["config"], cache_root=tmp_path / "cache")
    assert folder.parent == tmp_path / "cache" and len(list(folder.iterdir())) == N_SLICES
    same_image(read_image(folder), ct)
    # a second retrieve is the cache's
    t0 = time.perf_counter()
    assert actions.retrieve(node, pacs_env["study_uid"], pacs_env["series_uid"], method=method,
                            config=pacs_env["config"], cache_root=tmp_path / "cache") == folder
    assert time.perf_counter() - t0 < 1


def test_wado_retrieve_equals_dimse_retrieve(pacs_env, tmp_path):
    args = (pacs_env["study_uid"], pacs_env["series_uid"])
    by_get = actions.retrieve("dimse", *args, method="get", config=pacs_env["config"], cache_root=tmp_path / "a")
    by_wado = actions.retrieve("web", *args, config=pacs_env["config"], cache_root=tmp_path / "b")
    assert sorted(p.name for p in by_get.iterdir()) == sorted(p.name for p in by_wado.iterdir())
    same_image(read_image(by_wado), read_image(by_get))
    for name in sorted(p.name for p in by_get.iterdir())[:3]:
        a, b = pydicom.dcmread(by_get / name), pydicom.dcmread(by_wado / name)
        assert a.PixelData == b.PixelData and a.ImagePositionPatient == b.ImagePositionPatient


def _case_of(folder):
    from app.actions.exporting import CaseExport

    vol = read_image(folder)
    arr = np.zeros(vol.geometry.shape_zyx, np.uint8)
    arr[40:80, 10:30, 20:50] = 1
    table = LabelTable((Label(1, "Liver", (220, 120, 80), Code("SCT", "123037004", "Anatomical Structure"),
                              Code("SCT", "10200004", "Liver")),))
    return CaseExport(vol, LabelMap(arr, vol.geometry, table), reviewer="Tester")


def test_seg_by_stow_found_by_qido_and_by_c_store_re_retrieved_referencing_the_source(pacs_env, tmp_path):
    from app.actions.exporting import export_case

    cfg, study_uid, source_uid = pacs_env["config"], pacs_env["study_uid"], pacs_env["series_uid"]
    source = actions.retrieve("dimse", study_uid, source_uid, config=cfg, cache_root=tmp_path / "cache")
    case = _case_of(source)
    assert actions.send_export("web", case, "seg", config=cfg) == 1  # STOW-RS; the source is there already
    found = actions.find("web", Query(study_uid=study_uid, modality="SEG"), "series", config=cfg)
    assert len(found) == 1 and found[0].study_uid == study_uid and found[0].instances == 1
    # by C-STORE, then retrieved by C-GET: it still points at the source series
    seg_ds = pydicom.dcmread(export_case("seg", case, tmp_path / "seg.dcm")[0])
    assert actions.send("dimse", [tmp_path / "seg.dcm"], config=cfg) == 1
    found = actions.find("dimse", Query(study_uid=study_uid, modality="SEG"), "series", config=cfg)
    assert str(seg_ds.SeriesInstanceUID) in [m.series_uid for m in found] and len(found) == 2
    back = actions.retrieve("dimse", study_uid, str(seg_ds.SeriesInstanceUID), config=cfg,
                            cache_root=tmp_path / "cache")
    (got,) = [pydicom.dcmread(p) for p in back.iterdir()]
    assert got.SOPClassUID == pydicom.uid.SegmentationStorage
    assert got.ReferencedSeriesSequence[0].SeriesInstanceUID == source_uid
    assert len(got.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == N_SLICES
    assert np.array_equal(got.pixel_array, seg_ds.pixel_array)


def test_a_de_identified_result_goes_with_its_de_identified_images(pacs_env, tmp_path):
    cfg = pacs_env["config"]
    source = actions.retrieve("dimse", pacs_env["study_uid"], pacs_env["series_uid"], config=cfg,
                              cache_root=tmp_path / "cache")
    before = {m.study_uid for m in actions.find("dimse", Query(), config=cfg)}
    assert actions.send_export("dimse", _case_of(source), "rtstruct", deidentify=True, config=cfg) == N_SLICES + 1
    (new,) = [m for m in actions.find("dimse", Query(), "series", config=cfg) if m.study_uid not in before
              and m.modality == "RTSTRUCT"]
    assert new.patient_id != "PACS-0001" and "Pacs" not in new.patient_name
    series = actions.find("dimse", Query(study_uid=new.study_uid), "series", config=cfg)
    assert sorted((m.modality, m.instances) for m in series) == [("CT", N_SLICES), ("RTSTRUCT", 1)]


def test_the_report_goes_back_as_an_encapsulated_pdf_in_the_image_study(pacs_env, tmp_path):
    cfg, study_uid = pacs_env["config"], pacs_env["study_uid"]
    source = actions.retrieve("dimse", study_uid, pacs_env["series_uid"], config=cfg, cache_root=tmp_path / "cache")
    case = _case_of(source)
    assert actions.send_export("dimse", case, "report", config=cfg) == 1
    (doc,) = actions.find("dimse", Query(study_uid=study_uid, modality="DOC"), "series", config=cfg)
    back = actions.retrieve("web", study_uid, doc.series_uid, config=cfg, cache_root=tmp_path / "cache")
    (got,) = [pydicom.dcmread(p) for p in back.iterdir()]
    assert got.SOPClassUID == pydicom.uid.EncapsulatedPDFStorage and got.PatientID == "PACS-0001"
    assert got.EncapsulatedDocument[:got.EncapsulatedDocumentLength].startswith(b"%PDF")
    assert len(got.SourceInstanceSequence) == N_SLICES
    assert _dciodvfy_errors(next(back.iterdir())) == []  # the instance as the archive keeps it


def _dciodvfy_errors(path) -> list[str]:
    import shutil

    exe = shutil.which("dciodvfy")
    assert exe, "dicom3tools (dciodvfy) is missing: make system-deps"
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("method", ["get", "move", "wado"])
def test_a_transfer_cancelled_halfway_leaves_nothing_in_the_cache(pacs_env, method, tmp_path):
    node = "web" if method == "wado" else "dimse"
    cancel, seen = CancelToken(), []

    def progress(fraction, message):
        seen.append(message)
        if len(seen) == 10:
            cancel.cancel()

    cache_root = tmp_path / "cache"
    with pytest.raises(Cancelled):
        actions.retrieve(node, pacs_env["study_uid"], pacs_env["series_uid"], method=method, expected=N_SLICES,
                         config=pacs_env["config"], cache_root=cache_root, progress=progress, cancel=cancel)
    assert 10 <= len(seen) < N_SLICES
    assert list(cache_root.iterdir()) == []  # neither the series nor its temp folder
    # the node is fine afterwards, and the next retrieve is complete
    folder = actions.retrieve(node, pacs_env["study_uid"], pacs_env["series_uid"], method=method,
                              config=pacs_env["config"], cache_root=cache_root)
    assert len(list(folder.iterdir())) == N_SLICES


def test_refusals_say_what_to_check(pacs_env, orthanc, tmp_path):
    node = DimseNode(AE_TITLE, "127.0.0.1", orthanc.dicom_port)
    ids = (pacs_env["study_uid"], pacs_env["series_uid"])
    with pytest.raises(NodeError, match="aborted the association on C-FIND: .*is 'STRANGER' among its DICOM nodes"):
        dimse.find(node, Query(), local=LocalAE("STRANGER", orthanc.scp_port))
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    # our SCP listens where the archive does not send: it cannot deliver
    with pytest.raises(NodeError, match=f"C-MOVE failed .* before any instance arrived: check that the archive "
                                        f"knows the move destination 'DELINEATE' .* port {port}"):
        dimse.move_series(node, *ids, tmp_path, LocalAE(LOCAL_AE, port))
    with pytest.raises(NodeError, match="C-GET failed .* before any instance arrived: is the series on this node"):
        dimse.get_series(node, ids[0], "1.2.3.4.5", tmp_path, LocalAE(LOCAL_AE, orthanc.scp_port))
    assert list(tmp_path.iterdir()) == []


def test_dicomweb_errors_name_the_url(orthanc):
    bad = WebNode(orthanc.url, auth="basic", username=USER, secret="wrong")
    with pytest.raises(NodeError, match=r"^http://127\.0\.0\.1:\d+/dicom-web: QIDO-RS: HTTP 401: authentication"):
        dicomweb.echo(bad)
    with pytest.raises(NodeError, match="needs a password: set the environment variable NO_SUCH_VAR"):
        dicomweb.echo(WebNode(orthanc.url, auth="basic", username=USER, secret_env="NO_SUCH_VAR"))
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    port = refused.getsockname()[1]
    refused.close()
    t0 = time.perf_counter()
    with pytest.raises(NodeError, match="cannot connect"):
        dicomweb.echo(WebNode(f"http://127.0.0.1:{port}/dicom-web"))
    assert time.perf_counter() - t0 < 10
    dicomweb.echo(WebNode(orthanc.url, auth="basic", username=USER, secret=PASSWORD))


def test_cli_echo_find_get(pacs_env, tmp_path):
    env = {**os.environ, "DELINEATE_PACS_CACHE": str(tmp_path / "cache")}

    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "main.py"), "pacs", "--config", str(pacs_env["config"]),
                               *args], capture_output=True, text=True, timeout=60, env=env)

    out = run("echo", "dimse")
    assert out.returncode == 0 and "answered" in out.stdout, out.stderr
    out = run("find", "web", "--patient-id", "PACS-0001", "--level", "series", "--json")
    assert out.returncode == 0, out.stderr
    assert [m["series_uid"] for m in json.loads(out.stdout) if m["modality"] == "CT"] == [pacs_env["series_uid"]]
    out = run("get", "dimse", pacs_env["study_uid"], pacs_env["series_uid"], "--method", "move")
    assert out.returncode == 0, out.stderr
    assert len(os.listdir(out.stdout.strip())) == N_SLICES
    port = nodes.load(pacs_env["config"]).nodes["dimse"].port
    out = run("echo", f"WRONG@127.0.0.1:{port}")
    assert out.returncode == 2 and out.stderr.startswith("error: WRONG@127.0.0.1:") and "Traceback" not in out.stderr


def test_cli_add_and_list_nodes(tmp_path):
    env = {**os.environ, "DELINEATE_PACS_NODES": str(tmp_path / "pacs.json")}

    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "main.py"), "pacs", *args], capture_output=True,
                              text=True, timeout=60, env=env)

    assert run("add", "main", "ARCHIVE@pacs.example.org:11112", "--tls", "--ca-file", "/etc/ca.pem",
               "--local-ae", "ME", "--local-port", "11200").returncode == 0
    assert run("add", "web", "https://pacs.example.org/dicom-web", "--auth", "bearer", "--secret-env",
               "PACS_TOKEN").returncode == 0
    out = run("nodes")
    assert "local AE: ME, Storage SCP port 11200" in out.stdout
    assert "main: ARCHIVE@pacs.example.org:11112 (TLS)" in out.stdout and "web: https://pacs.example.org/dicom-web" in out.stdout
    saved = nodes.load(tmp_path / "pacs.json")
    assert saved.nodes["main"].ca_file == "/etc/ca.pem" and saved.nodes["web"].secret_env == "PACS_TOKEN"
    out = run("get", "web", "1.2", "1.2.3", "--method", "move")
    assert out.returncode == 2 and out.stderr == ("error: https://pacs.example.org/dicom-web: C-MOVE needs a DIMSE "
                                                  "node (AET@host:port)\n")
    out = run("echo", "nowhere")
    assert out.returncode == 2 and "'nowhere' is not a PACS node" in out.stderr and "main, web" in out.stderr


# --- without a server: the cache and the settings ----------------------------------------------

def _fill(folder, nbytes):
    (folder / "a.dcm").write_bytes(b"\0" * nbytes)


def test_cache_is_lru_under_its_limit_and_never_holds_a_partial_series(tmp_path):
    cache = SeriesCache(tmp_path, max_bytes=2500)
    for i, uid in enumerate(("1.1", "1.2", "1.3")):
        with cache.incoming(uid) as folder:
            _fill(folder, 1000)
        cache.touch(uid, 1000 + i)
    # 3000 > 2500 bytes: the least recently used went when 1.3 came in
    assert [e.series_uid for e in cache.entries()] == ["1.2", "1.3"]
    cache.touch("1.2", 5000)  # opened again: now 1.3 is the oldest
    with cache.incoming("1.4") as folder:
        _fill(folder, 1000)
    assert sorted(e.series_uid for e in cache.entries()) == ["1.2", "1.4"]
    with pytest.raises(RuntimeError):
        with cache.incoming("1.5") as folder:
            _fill(folder, 10)
            raise RuntimeError("network gone")
    assert cache.get("1.5") is None and sorted(p.name for p in tmp_path.iterdir()) == ["1.2", "1.4"]
    # a series larger than the whole cache is still kept while it is the one being opened
    with cache.incoming("1.6") as folder:
        _fill(folder, 4000)
    assert [e.series_uid for e in cache.entries()] == ["1.6"]
    # a temp folder left by a killed process is swept on opening; a live one's is not
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".partial-{dead.pid}-x").mkdir()
    (tmp_path / f".partial-{os.getpid()}-y").mkdir()
    SeriesCache(tmp_path)
    assert not (tmp_path / f".partial-{dead.pid}-x").exists() and (tmp_path / f".partial-{os.getpid()}-y").exists()
    assert cache.clear() == 1 and cache.get("1.6") is None
    # a UID the server sent is never a path
    with cache.incoming("../../evil") as folder:
        _fill(folder, 1)
    assert all(p.parent == tmp_path for p in tmp_path.iterdir())


def test_settings_round_trip_without_secrets_and_clear_errors(tmp_path, monkeypatch):
    path = tmp_path / "pacs.json"
    s = nodes.Settings(local=LocalAE("ME", 11200), cache_gb=2.5, path=path)
    s.nodes["main"] = DimseNode("ARCHIVE", "pacs.example.org", 11112, "main", tls=True, ca_file="/etc/ca.pem")
    s.nodes["web"] = WebNode("https://pacs.example.org/dicom-web", "web", "bearer", secret_env="PACS_TOKEN",
                             secret="s3cret")
    nodes.save(s)
    assert "s3cret" not in path.read_text()
    back = nodes.load(path)
    assert back.nodes["main"] == s.nodes["main"] and back.local == s.local and back.cache_gb == 2.5
    assert back.nodes["web"] == s.nodes["web"]
    monkeypatch.setenv("PACS_TOKEN", "from-env")
    assert back.nodes["web"].credential() == "from-env"
    assert str(back.node("ARCHIVE@10.0.0.5:104")) == "ARCHIVE@10.0.0.5:104"
    assert isinstance(back.node("https://x.org/dicomweb"), WebNode)
    with pytest.raises(DelineateError, match="'nowhere' is not a PACS node.*main, web"):
        back.node("nowhere")
    with pytest.raises(DelineateError, match="AE title 'MUCH_TOO_LONG_AE_TITLE'"):
        nodes.parse_node("MUCH_TOO_LONG_AE_TITLE@h:104")
    with pytest.raises(DelineateError, match="outside 1-65535"):
        DimseNode("A", "h", 70000)
    path.write_text('{"nodes": {"x": {"ae_title": "A", "host": "h", "port": "abc"}}}')
    with pytest.raises(FormatError, match=r"pacs\.json: .*port 'abc' is not a number"):
        nodes.load(path)
    path.write_text("{not json")
    with pytest.raises(FormatError, match=r"pacs\.json: not a PACS settings file"):
        nodes.load(path)
    with pytest.raises(DelineateError, match="date range 20240301-20240101 is empty"):
        Query(date_from="2024-03-01", date_to="2024-01-01")


def test_tls_certificates_are_verified(tmp_path):
    """DICOM TLS against Orthanc with a self-signed certificate: trusted through ca_file, refused
    without it. DICOMweb over HTTPS against a real TLS server (Debian's Orthanc 1.10 crashes serving
    HTTPS): refused without the CA, past the handshake with it."""
    import http.server
    import ssl
    import threading

    with Orthanc(tls=True) as server:
        local = LocalAE(LOCAL_AE, server.scp_port)
        dimse.echo(DimseNode(AE_TITLE, "127.0.0.1", server.dicom_port, tls=True, ca_file=server.cert), local)
        t0 = time.perf_counter()
        with pytest.raises(NodeError, match="TLS certificate could not be verified .*self-signed"):
            dimse.echo(DimseNode(AE_TITLE, "127.0.0.1", server.dicom_port, tls=True), local)
        with pytest.raises(NodeError, match="not with a DICOM association .*TLS expected"):
            dimse.echo(DimseNode(AE_TITLE, "127.0.0.1", server.dicom_port), local)
        assert time.perf_counter() - t0 < 10

        httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(server.cert, str(server.folder / "key.pem"))
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            url = f"https://127.0.0.1:{httpd.server_address[1]}/dicom-web"
            with pytest.raises(NodeError, match="TLS certificate could not be verified"):
                dicomweb.echo(WebNode(url))
            with pytest.raises(NodeError, match="HTTP 501"):  # the handshake passed; the server is no PACS
                dicomweb.echo(WebNode(url, ca_file=server.cert))
        finally:
            httpd.shutdown()
