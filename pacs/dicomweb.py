"""DICOMweb with dicomweb-client: QIDO-RS search (study and series), WADO-RS series retrieve
(streamed instance by instance, so progress and cancel act between instances) and STOW-RS.

Basic or bearer authentication; certificates are always verified (a hospital's own authority is
given as the node's ``ca_file``). Every failure is a ``NodeError`` naming the URL and the problem."""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Optional

import requests
import requests.adapters
from pydicom import dcmread
from pydicom.dataset import Dataset

from core.errors import DelineateError
from core.progress import CancelToken, ProgressFn, check, no_progress
from pacs.cache import file_name
from pacs.nodes import NodeError, WebNode
from pacs.query import Match, Query, match_from

TIMEOUT = (5.0, 60.0)  # (connect, between bytes): a wrong host or port is reported within seconds
STOW_BATCH_BYTES = 32 << 20
_STUDY_FIELDS = ["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "AccessionNumber"]
_SERIES_FIELDS = ["SeriesDescription", "SeriesNumber", "Modality", "NumberOfSeriesRelatedInstances"]


class _TrustOnly(requests.adapters.HTTPAdapter):
    """Verify against the node's CA bundle: a session's ``verify`` loses to $REQUESTS_CA_BUNDLE."""

    def __init__(self, ca_file: str):
        super().__init__()
        self.ca_file = ca_file

    def send(self, request, **kwargs):
        kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def client(node: WebNode):
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    if node.ca_file:
        session.mount("https://", _TrustOnly(node.ca_file))
    if node.auth == "basic":
        session.auth = (node.username, node.credential())
    elif node.auth == "bearer":
        session.headers["Authorization"] = f"Bearer {node.credential()}"
    web = DICOMwebClient(url=node.url.rstrip("/"), session=session, timeout=TIMEOUT)
    # its default retries a refused connection 5 times with exponential waits (30 s): report at once
    web.set_http_retry_params(retry=False)
    return web


@contextlib.contextmanager
def _errors(node: WebNode, what: str):
    try:
        yield
    except requests.exceptions.SSLError as e:
        raise NodeError(node, f"{what}: the server's TLS certificate could not be verified ({_short(e)}); "
                              "if the hospital runs its own certificate authority, give its bundle as ca_file") from None
    except requests.exceptions.Timeout:
        raise NodeError(node, f"{what}: no answer within {TIMEOUT[1]:.0f} s") from None
    except requests.exceptions.ConnectionError as e:
        raise NodeError(node, f"{what}: cannot connect ({_short(e)}): check the URL, host and port") from None
    except requests.exceptions.HTTPError as e:
        code = e.response.status_code if e.response is not None else 0
        hint = {401: "authentication failed: check the user name and the password or token",
                403: "access denied to this account", 404: "not found: check the URL (the DICOMweb root, "
                "often ending in /dicom-web)", 413: "the server refused the upload's size"}.get(code, "")
        raise NodeError(node, f"{what}: HTTP {code}{': ' + hint if hint else ''}") from None
    except requests.exceptions.RequestException as e:
        raise NodeError(node, f"{what}: {_short(e)}") from None


def _short(e: Exception) -> str:
    """The cause, without the request's URL: its query string holds the patient ID searched for,
    and error messages reach the log."""
    text = str(e)
    for pattern in (r"certificate verify failed: ([^('\"]+)", r"\[Errno -?\d+\] ([^'\")]+)", r"(Read timed out)",
                    r"(Connection aborted)", r"(RemoteDisconnected[^'\"]*)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip()
    return type(e).__name__


def _filters(query: Query) -> dict:
    f = {"PatientID": query.patient_id, "PatientName": query.patient_name, "StudyDate": query.date_range,
         "AccessionNumber": query.accession, "ModalitiesInStudy": query.modality,
         "StudyInstanceUID": query.study_uid}
    return {k: v for k, v in f.items() if v}


def echo(node: WebNode, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> None:
    """A QIDO-RS request for one study: the server answers and accepts our credentials."""
    check(cancel)
    with _errors(node, "QIDO-RS"):
        client(node).search_for_studies(limit=1)
    progress(1.0, f"{node} answered")


def find(node: WebNode, query: Query, level: str = "study", progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None) -> list[Match]:
    """Studies (or their series) matching ``query``, by QIDO-RS."""
    if level not in ("study", "series"):
        raise DelineateError(f"query level {level!r}: study or series")
    check(cancel)
    web = client(node)
    with _errors(node, "QIDO-RS"):
        studies = [match_from(Dataset.from_json(d))
                   for d in web.search_for_studies(search_filters=_filters(query), fields=_STUDY_FIELDS)]
        progress(0.5 if level == "series" else 1.0, f"{len(studies)} studies")
        if level == "study":
            return studies
        series = []
        filters = {"Modality": query.modality} if query.modality else None
        for i, study in enumerate(studies):
            check(cancel)
            answers = web.search_for_series(study_instance_uid=study.study_uid, search_filters=filters,
                                            fields=_SERIES_FIELDS)
            series += [match_from(Dataset.from_json(d), study) for d in answers]
            progress(0.5 + 0.5 * (i + 1) / len(studies), f"{len(series)} series")
    return series


def retrieve_series(node: WebNode, study_uid: str, series_uid: str, folder: str | Path,
                    expected: Optional[int] = None, progress: ProgressFn = no_progress,
                    cancel: Optional[CancelToken] = None) -> int:
    """WADO-RS one series into ``folder``, in the transfer syntax the server holds (no transcoding);
    returns the number of instances."""
    check(cancel)
    folder = Path(folder)
    n = 0
    with _errors(node, "WADO-RS"):
        stream = client(node).iter_series(study_uid, series_uid, media_types=(("application/dicom", "*"),))
        try:
            for ds in stream:
                check(cancel)
                ds.save_as(folder / file_name(ds.get("SOPInstanceUID", "")), enforce_file_format=True)
                n += 1
                progress(n / max(n, expected) if expected else 0.0,
                         f"received {n}" + (f"/{expected}" if expected else ""))
        finally:
            with contextlib.suppress(Exception):
                stream.close()
    if n == 0:
        raise NodeError(node, f"WADO-RS: no instances (no series {series_uid} on the node)")
    if expected and n < expected:
        raise NodeError(node, f"WADO-RS: {n} of {expected} instances received")
    return n


def send(node: WebNode, paths: list[Path], progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None) -> int:
    """STOW-RS DICOM files to ``node`` in batches; returns how many it stored. An instance it
    refuses is an error naming the file."""
    check(cancel)
    paths = [Path(p) for p in paths]
    web = client(node)
    batches, batch, size = [], [], 0
    for p in paths:
        batch.append(p)
        size += p.stat().st_size
        if size >= STOW_BATCH_BYTES:
            batches.append(batch)
            batch, size = [], 0
    if batch:
        batches.append(batch)
    done = 0
    for batch in batches:
        check(cancel)
        datasets = []
        for p in batch:
            try:
                datasets.append(dcmread(p))
            except Exception as e:  # noqa: BLE001 - any unreadable file is named
                raise DelineateError(f"{p}: not a DICOM file to send ({e})") from None
        with _errors(node, "STOW-RS"):
            answer = web.store_instances(datasets)
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            by_uid = {str(d.SOPInstanceUID): p for d, p in zip(datasets, batch)}
            item = failed[0]
            name = by_uid.get(str(item.get("ReferencedSOPInstanceUID", "")), Path("?")).name
            raise NodeError(node, f"STOW-RS refused {name} (failure reason {item.get('FailureReason', '?')}); "
                                  f"{len(failed)} of {len(batch)} in its batch refused")
        done += len(batch)
        progress(done / len(paths), f"sent {done}/{len(paths)}")
    return done
