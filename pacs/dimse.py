"""DIMSE services against a DICOM archive with pynetdicom: C-ECHO, C-FIND (study and series level),
C-GET, C-MOVE to a Storage SCP Delineate runs while retrieving, and C-STORE of files back.

Every failure is a ``NodeError`` naming the node (AE title@host:port) and the problem; timeouts are
short enough that a wrong port, host or AE title is reported within 10 s. Retrieved instances are
written as received (no decoding) into the folder given, which the cache makes a temp folder: a
cancelled or failed transfer never looks complete. Cancel aborts the association."""
from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Iterable, Optional

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, StoragePresentationContexts, _config, build_role, evt
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelFind,
                                  StudyRootQueryRetrieveInformationModelGet,
                                  StudyRootQueryRetrieveInformationModelMove, Verification)

from core.errors import DelineateError
from core.progress import CancelToken, ProgressFn, check, no_progress
from pacs.cache import file_name
from pacs.nodes import DimseNode, LocalAE, NodeError
from pacs.query import Match, Query, match_from

_config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False  # they hold patient IDs

CONNECT_TIMEOUT = 5.0  # TCP connect: a wrong host or a filtered port
ACSE_TIMEOUT = 8.0  # association accept/reject: a wrong AE title
DIMSE_TIMEOUT = 60.0  # one response; an archive fetching from tape may pause between instances
NETWORK_TIMEOUT = 60.0
PROBE_TIMEOUT = 1.5  # a second look at a failed connection, to say why; the total stays under 10 s
_PENDING = (0xFF00, 0xFF01)


def _ae(local: LocalAE) -> AE:
    ae = AE(ae_title=local.ae_title)
    ae.connection_timeout, ae.acse_timeout = CONNECT_TIMEOUT, ACSE_TIMEOUT
    ae.dimse_timeout, ae.network_timeout = DIMSE_TIMEOUT, NETWORK_TIMEOUT
    ae.maximum_pdu_size = 0  # no limit on what the archive sends us
    return ae


class _Hold(threading.Event):
    """pynetdicom's reactor checkpoint, held shut while the calling thread drives a requestor
    association. Otherwise the reactor thread can take a response off the queue before send_*()
    does, drop it ("Received unexpected C-STORE service message", pynetdicom issue 875) and leave us
    waiting until the archive times out: seen 2 runs in 5 of this module on a loaded machine.
    Nothing else needs that reactor: C-GET sub-operations are served inside send_c_get, and a peer's
    abort reaches send_*() through the DIMSE queue. Let go before release or abort."""

    def __init__(self):
        super().__init__()
        self.holding, self.entered = True, False

    def wait(self, timeout=None):
        self.entered = True  # the reactor is here, and stays until let go
        return super().wait(timeout)

    def set(self):
        if not self.holding:
            super().set()

    def let_go(self):
        self.holding = False
        super().set()


def _hold(assoc) -> None:
    hold = _Hold()
    assoc._reactor_checkpoint = hold
    deadline = time.monotonic() + 2.0
    while not hold.entered and assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.0005)


def _let_go(assoc) -> None:
    hold = getattr(assoc, "_reactor_checkpoint", None)
    if isinstance(hold, _Hold):
        hold.let_go()


def _no_delay(event) -> None:
    """Send each PDU at once: with Nagle's algorithm a DIMSE exchange waits on delayed ACKs,
    40 ms or more per instance."""
    sock = getattr(event.assoc.dul.socket, "socket", None)
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _tls(node: DimseNode):
    if not node.tls:
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=node.ca_file)
        if node.cert_file:
            ctx.load_cert_chain(node.cert_file, node.key_file)
    except (OSError, ssl.SSLError) as e:
        raise NodeError(node, f"TLS set-up failed: {e}") from None
    return ctx, node.host


def _why_unreachable(node: DimseNode) -> str:
    """Why no association came up when the archive did not reject it: ask the network directly."""
    try:
        with socket.create_connection((node.host, node.port), timeout=PROBE_TIMEOUT) as sock:
            if node.tls:
                ctx, hostname = _tls(node)
                with ctx.wrap_socket(sock, server_hostname=hostname):
                    pass
    except ssl.SSLCertVerificationError as e:
        return (f"its TLS certificate could not be verified ({e.verify_message}): give the bundle of the "
                "authority that signed it as ca_file")
    except ssl.SSLError as e:
        return f"TLS handshake failed ({e.reason or e}): is this port a TLS port?"
    except socket.gaierror:
        return f"unknown host {node.host!r}"
    except ConnectionRefusedError:
        return f"connection refused on port {node.port} (no DICOM service there: check the port)"
    except OSError as e:
        return f"cannot connect ({e.strerror or e}): check the host, port and firewall"
    return ("the port answers, but not with a DICOM association (another service there, or TLS expected: "
            "check the port and the TLS setting)")


@contextlib.contextmanager
def association(node: DimseNode, local: LocalAE, contexts: Iterable, roles=(), handlers=()):
    """An established association, released on success and aborted on any error or cancel."""
    ae = _ae(local)
    for cx in contexts:
        if isinstance(cx, tuple):
            ae.add_requested_context(*cx)
        else:
            ae.add_requested_context(cx)
    answer = {}

    def on_acse(event):
        p = event.primitive
        if isinstance(p, A_ASSOCIATE) and p.result in (0x01, 0x02):
            answer["reason"] = p.reason_str
        elif isinstance(p, A_ASSOCIATE) and p.result == 0x00:
            answer["accepted"] = True

    for _attempt in range(3):
        t0 = time.monotonic()
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=list(roles) or None,
                             evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay), (evt.EVT_ACSE_RECV, on_acse), *handlers],
                             tls_args=_tls(node))
        # a reject that pynetdicom took for an abort (the archive closed the connection right after
        # it; 1 time in 12 against Orthanc) is asked again while that costs little
        if assoc.is_established or assoc.is_rejected or answer or time.monotonic() - t0 > 2.0:
            break
    if not assoc.is_established:
        if assoc.is_rejected:
            raise NodeError(node, f"rejected the association ({answer.get('reason', 'no reason given')}): check "
                                  f"that its AE title is {node.ae_title!r} and that it knows ours, "
                                  f"{local.ae_title!r}")
        if answer.get("accepted"):
            asked = ", ".join(sorted({cx.abstract_syntax.name for cx in ae.requested_contexts}))
            raise NodeError(node, f"accepted the association but none of the services asked ({asked})")
        raise NodeError(node, _why_unreachable(node))
    _hold(assoc)
    try:
        yield assoc
    except BaseException:
        _let_go(assoc)
        assoc.abort()
        raise
    else:
        _let_go(assoc)
        if assoc.is_established:
            assoc.release()


def _no_answer(node, assoc, what: str) -> NodeError:
    if assoc is not None:
        _let_go(assoc)  # the reactor records an abort
    deadline = time.monotonic() + 1.0  # an abort may reach the response before the association's state
    while assoc is not None and assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.02)
    if assoc is not None and not assoc.is_established:  # aborted, or the connection closed
        return NodeError(node, f"aborted the association on {what}: an archive does this to a calling AE title "
                               f"it does not know; is {assoc.requestor.ae_title!r} among its DICOM nodes?")
    return NodeError(node, f"no {what} response within {DIMSE_TIMEOUT:.0f} s")


def _status(node, status: Dataset, what: str, assoc=None) -> int:
    if status is None or "Status" not in status:
        raise _no_answer(node, assoc, what)
    return int(status.Status)


def _failed(node, code: int, what: str, status: Dataset):
    comment = status.get("ErrorComment", "") if status is not None else ""
    return NodeError(node, f"{what} failed with status 0x{code:04X}{': ' + str(comment) if comment else ''}")


def echo(node: DimseNode, local: Optional[LocalAE] = None, progress: ProgressFn = no_progress,
         cancel: Optional[CancelToken] = None) -> float:
    """C-ECHO; returns the round trip in seconds (association included)."""
    check(cancel)
    t0 = time.perf_counter()
    with association(node, local or LocalAE(), [Verification]) as assoc:
        code = _status(node, assoc.send_c_echo(), "C-ECHO", assoc)
    if code != 0:
        raise _failed(node, code, "C-ECHO", None)
    progress(1.0, f"{node} answered")
    return time.perf_counter() - t0


def _identifier(query: Query, level: str, study_uid: str = "") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level.upper()
    ds.StudyInstanceUID = study_uid or query.study_uid
    if level == "study":
        ds.PatientID, ds.PatientName = query.patient_id, query.patient_name
        ds.StudyDate, ds.AccessionNumber = query.date_range, query.accession
        ds.ModalitiesInStudy, ds.StudyDescription, ds.NumberOfStudyRelatedInstances = query.modality, "", ""
    else:
        ds.SeriesInstanceUID, ds.Modality = "", query.modality
        ds.SeriesNumber, ds.SeriesDescription, ds.NumberOfSeriesRelatedInstances = "", "", ""
    return ds


def _c_find(assoc, node, ds: Dataset, cancel) -> list[Dataset]:
    found = []
    for status, identifier in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind):
        check(cancel)
        code = _status(node, status, "C-FIND", assoc)
        if code in _PENDING:
            if identifier is not None:
                found.append(identifier)
        elif code != 0:
            raise _failed(node, code, "C-FIND", status)
    return found


def find(node: DimseNode, query: Query, level: str = "study", local: Optional[LocalAE] = None,
         progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> list[Match]:
    """Studies (or their series) matching ``query``: series are asked study by study, as the Study
    Root model requires of a strict archive."""
    if level not in ("study", "series"):
        raise DelineateError(f"query level {level!r}: study or series")
    check(cancel)
    local = local or LocalAE()
    with association(node, local, [StudyRootQueryRetrieveInformationModelFind]) as assoc:
        studies = [match_from(d) for d in _c_find(assoc, node, _identifier(query, "study"), cancel)]
        progress(0.5 if level == "series" else 1.0, f"{len(studies)} studies")
        if level == "study":
            return studies
        series = []
        for i, study in enumerate(studies):
            only_modality = Query(modality=query.modality)
            answers = _c_find(assoc, node, _identifier(only_modality, "series", study.study_uid), cancel)
            series += [match_from(d, study) for d in answers]
            progress(0.5 + 0.5 * (i + 1) / len(studies), f"{len(series)} series")
        return series


def _retrieve_identifier(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    return ds


class _Receiver:
    """The C-STORE handler of a retrieve: writes each instance as received into ``folder``; on
    cancel it refuses the instance and aborts the association that brought it."""

    def __init__(self, folder: Path, expected: Optional[int], progress: ProgressFn, cancel):
        self.folder, self.expected, self.progress, self.cancel = folder, expected, progress, cancel
        self.count = 0

    def __call__(self, event) -> int:
        if self.cancel is not None and self.cancel.cancelled:
            event.assoc.abort(block=False)
            return 0xA700  # refused: out of resources (cancelled)
        with open(self.folder / file_name(event.request.AffectedSOPInstanceUID), "wb") as f:
            f.write(event.encoded_dataset())
        self.count += 1
        total = max(self.expected or 0, self.count)
        self.progress(self.count / total if self.expected else 0.0, f"received {self.count}"
                      + (f"/{self.expected}" if self.expected else ""))
        return 0x0000


def _sub_operations(node, assoc, responses, receiver: _Receiver, what: str, cancel, hint: str = "") -> None:
    """Follow a C-GET/C-MOVE to its final response; failed sub-operations are an error. ``hint``: what
    to check when it fails before any instance arrived."""
    final = None
    for status, _identifier in responses:
        if cancel is not None and cancel.cancelled:
            break
        if status is None or "Status" not in status:
            break  # aborted: by the receiver on cancel, or by the archive
        code = int(status.Status)
        if receiver.expected is None and "NumberOfRemainingSuboperations" in status:
            receiver.expected = int(status.NumberOfRemainingSuboperations) + receiver.count
        if code not in _PENDING:
            final = (code, status)
    check(cancel)
    if final is None:
        if receiver.count == 0:
            raise _no_answer(node, assoc, what)
        raise NodeError(node, f"{what} stopped after {receiver.count} instances (association aborted or timed out)")
    code, status = final
    failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
    comment = f" ({status.ErrorComment})" if "ErrorComment" in status else ""
    if (code != 0 or failed) and receiver.count == 0:
        raise NodeError(node, f"{what} failed with status 0x{code:04X}{comment} before any instance arrived: "
                              + (hint or "is the series on this node, and may our AE title retrieve it?"))
    if code != 0 or failed:
        raise NodeError(node, f"{what} failed with status 0x{code:04X}{comment}: {receiver.count} instances "
                              f"received, {failed} failed")
    if receiver.count == 0:
        raise NodeError(node, f"{what}: no instances (no such series on the node)")


def get_series(node: DimseNode, study_uid: str, series_uid: str, folder: str | Path,
               local: Optional[LocalAE] = None, expected: Optional[int] = None,
               progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> int:
    """C-GET one series into ``folder`` (instances come back on the same association); returns
    the number of instances."""
    check(cancel)
    receiver = _Receiver(Path(folder), expected, progress, cancel)
    contexts = [StudyRootQueryRetrieveInformationModelGet] + [
        (cx.abstract_syntax, cx.transfer_syntax) for cx in StoragePresentationContexts]
    roles = [build_role(cx.abstract_syntax, scp_role=True) for cx in StoragePresentationContexts]
    with association(node, local or LocalAE(), contexts, roles, [(evt.EVT_C_STORE, receiver)]) as assoc:
        responses = assoc.send_c_get(_retrieve_identifier(study_uid, series_uid),
                                     StudyRootQueryRetrieveInformationModelGet)
        _sub_operations(node, assoc, responses, receiver, "C-GET", cancel)
    return receiver.count


def move_series(node: DimseNode, study_uid: str, series_uid: str, folder: str | Path,
                local: Optional[LocalAE] = None, expected: Optional[int] = None,
                progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> int:
    """C-MOVE one series to a Storage SCP Delineate runs (AE title and port of ``local``, which the
    archive must know) for the duration of the transfer; returns the number of instances."""
    check(cancel)
    local = local or LocalAE()
    receiver = _Receiver(Path(folder), expected, progress, cancel)
    scp = _ae(local)
    scp.supported_contexts = StoragePresentationContexts
    try:
        server = scp.start_server((local.bind, local.port), block=False,
                                  evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay), (evt.EVT_C_STORE, receiver)])
    except OSError as e:
        raise DelineateError(f"cannot run the Storage SCP {local.ae_title} on port {local.port} for C-MOVE: "
                             f"{e.strerror or e} (another program on that port? set local.port)") from None
    try:
        with association(node, local, [StudyRootQueryRetrieveInformationModelMove]) as assoc:
            responses = assoc.send_c_move(_retrieve_identifier(study_uid, series_uid), local.ae_title,
                                          StudyRootQueryRetrieveInformationModelMove)
            hint = (f"check that the archive knows the move destination {local.ae_title!r} with this computer's "
                    f"address and port {local.port}, and that no firewall blocks that port")
            _sub_operations(node, assoc, responses, receiver, "C-MOVE", cancel, hint)
    finally:
        server.shutdown()
    return receiver.count


def send(node: DimseNode, paths: list[Path], local: Optional[LocalAE] = None,
         progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> int:
    """C-STORE DICOM files to ``node``; returns how many it stored. A file it refuses is an error
    naming the file and the status."""
    check(cancel)
    paths = [Path(p) for p in paths]
    headers = {}
    for p in paths:
        try:
            ds = dcmread(p, stop_before_pixels=True)
            headers[p] = (str(ds.file_meta.MediaStorageSOPClassUID), str(ds.file_meta.TransferSyntaxUID))
        except Exception as e:  # noqa: BLE001 - any unreadable file is named
            raise DelineateError(f"{p}: not a DICOM file to send ({e})") from None
    syntaxes: dict = {}
    for sop, ts in headers.values():
        syntaxes.setdefault(sop, {ExplicitVRLittleEndian, ImplicitVRLittleEndian}).add(ts)
    if len(syntaxes) > 120:
        raise DelineateError(f"{len(syntaxes)} kinds of DICOM object in one send: at most 120")
    with association(node, local or LocalAE(), [(sop, sorted(ts)) for sop, ts in syntaxes.items()]) as assoc:
        for i, p in enumerate(paths):
            check(cancel)
            code = _status(node, assoc.send_c_store(dcmread(p)), "C-STORE", assoc)
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise NodeError(node, f"refused {p.name} (C-STORE status 0x{code:04X})")
            progress((i + 1) / len(paths), f"sent {i + 1}/{len(paths)}")
    return len(paths)

