"""A real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) for the PACS tests and bench: started as
the current user on free ports with a temporary storage folder and a generated configuration, and
stopped after. When it cannot start, ``OrthancError`` says why (the tests fail; they never skip)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

BINARY = "/usr/sbin/Orthanc"
PLUGIN_FOLDERS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
AE_TITLE = "ORTHANC"
USER, PASSWORD = "delineate", "not-a-secret"
LOCAL_AE = "DELINEATE"  # the AE title Delineate's own Storage SCP answers to (C-MOVE destination)


class OrthancError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dicomweb_plugin() -> str:
    for folder in PLUGIN_FOLDERS:
        for p in sorted(Path(folder).glob("libOrthancDicomWeb.so*")):
            return str(p)
    raise OrthancError(f"the DICOMweb plugin (libOrthancDicomWeb.so) is not in {PLUGIN_FOLDERS}: "
                       "apt-get install orthanc-dicomweb (make system-deps)")


class Orthanc:
    """``with Orthanc() as pacs:`` a running server; ``pacs.dicom_port``, ``pacs.url`` (DICOMweb root),
    ``pacs.scp_port`` (the port Delineate's SCP must listen on for C-MOVE to reach it)."""

    def __init__(self, tls: bool = False) -> None:
        self.tls = tls  # DICOM TLS with a self-signed certificate for 127.0.0.1 (``self.cert``)
        # on tmpfs where there is one: Orthanc fsyncs its index per instance, 100 ms each on a slow disk
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.folder = Path(tempfile.mkdtemp(prefix="delineate-orthanc-", dir=shm))
        self.dicom_port, self.http_port, self.scp_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def cert(self) -> str:
        return str(self.folder / "cert.pem")

    def _make_certificate(self) -> None:
        key = self.folder / "key.pem"
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", str(key), "-out", self.cert], capture_output=True, text=True)
        if r.returncode:
            raise OrthancError(f"openssl could not make a test certificate: {r.stderr[-500:]}")

    @property
    def url(self) -> str:
        return self.http + "/dicom-web"

    def config(self) -> dict:
        return {
            "Name": "DelineateTests", "StorageDirectory": str(self.folder / "db"),
            "IndexDirectory": str(self.folder / "db"), "StorageCompression": False,
            "DicomAet": AE_TITLE, "DicomPort": self.dicom_port, "DicomCheckCalledAet": True,
            "DicomModalities": {"delineate": [LOCAL_AE, "127.0.0.1", self.scp_port]},
            "DicomScpTimeout": 30, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [dicomweb_plugin()], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "SaveJobs": False, "ConcurrentJobs": 1, "HttpThreadsCount": 4,
            **({"DicomTlsEnabled": True, "DicomTlsCertificate": self.cert,
                "DicomTlsPrivateKey": str(self.folder / "key.pem"), "DicomTlsTrustedCertificates": self.cert,
                "DicomTlsRemoteCertificateRequired": False} if self.tls else {}),
        }

    def start(self, timeout: float = 30.0) -> "Orthanc":
        if not os.access(BINARY, os.X_OK):
            self.stop()
            raise OrthancError(f"{BINARY} is missing: apt-get install orthanc orthanc-dicomweb (make system-deps)")
        if self.tls:
            try:
                self._make_certificate()
            except OrthancError:
                self.stop()
                raise
        cfg = self.folder / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=1))
        log = open(self.folder / "orthanc.log", "wb")
        self.process = subprocess.Popen([BINARY, str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.folder, start_new_session=True, env={**os.environ, "TCP_NODELAY": "1"})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                why = f"Orthanc exited with code {self.process.returncode}: {self.log_tail()}"
                self.stop()
                raise OrthancError(why)
            try:
                r = requests.get(self.url + "/studies", auth=(USER, PASSWORD), timeout=2)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        why = f"Orthanc did not answer on {self.url} within {timeout:.0f} s: {self.log_tail()}"
        self.stop()
        raise OrthancError(why)

    def log_tail(self, n: int = 1500) -> str:
        try:
            return (self.folder / "orthanc.log").read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Orthanc":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def rest(self, path: str):
        """Orthanc's own REST API (checks only: the code under test speaks DICOM and DICOMweb)."""
        r = requests.get(self.http + path, auth=(USER, PASSWORD), timeout=10)
        r.raise_for_status()
        return r.json()
