"""One instance of a series, the middle one by Instance Number, for a thumbnail: found at IMAGE
level (C-FIND or QIDO-RS) and retrieved alone (C-GET of one SOP instance, or WADO-RS), so a
browser shows what a series looks like without moving the whole series.

Failures are ``NodeError`` naming the node, as for every PACS call."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydicom.dataset import Dataset
from pynetdicom import StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelFind,
                                  StudyRootQueryRetrieveInformationModelGet)

from core.progress import CancelToken, check, no_progress
from pacs import dimse
from pacs.cache import file_name
from pacs.nodes import DimseNode, LocalAE, NodeError, Node, WebNode


def _middle(answers: list[tuple[str, Optional[int]]]) -> str:
    """The SOP Instance UID in the middle of the stack (by Instance Number, then UID)."""
    ordered = sorted(answers, key=lambda a: (a[1] is None, a[1] or 0, a[0]))
    return ordered[len(ordered) // 2][0]


def _number(value) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _dimse(node: DimseNode, study_uid: str, series_uid: str, folder: Path, local: LocalAE,
           cancel: Optional[CancelToken]) -> Path:
    receiver = dimse._Receiver(folder, 1, no_progress, cancel)
    contexts = [StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelGet] + [
        (cx.abstract_syntax, cx.transfer_syntax) for cx in StoragePresentationContexts]
    roles = [build_role(cx.abstract_syntax, scp_role=True) for cx in StoragePresentationContexts]
    with dimse.association(node, local, contexts, roles, [(evt.EVT_C_STORE, receiver)]) as assoc:
        ask = Dataset()
        ask.QueryRetrieveLevel = "IMAGE"
        ask.StudyInstanceUID, ask.SeriesInstanceUID = study_uid, series_uid
        ask.SOPInstanceUID, ask.InstanceNumber = "", ""
        found = [(str(d.get("SOPInstanceUID", "")), _number(d.get("InstanceNumber")))
                 for d in dimse._c_find(assoc, node, ask, cancel)]
        found = [f for f in found if f[0]]
        if not found:
            raise NodeError(node, "no instances in this series")
        get = Dataset()
        get.QueryRetrieveLevel = "IMAGE"
        get.StudyInstanceUID, get.SeriesInstanceUID, get.SOPInstanceUID = study_uid, series_uid, _middle(found)
        responses = assoc.send_c_get(get, StudyRootQueryRetrieveInformationModelGet)
        dimse._sub_operations(node, assoc, responses, receiver, "C-GET", cancel)
    return next(folder.iterdir())


def _web(node: WebNode, study_uid: str, series_uid: str, folder: Path, cancel: Optional[CancelToken]) -> Path:
    from pacs import dicomweb

    web = dicomweb.client(node)
    with dicomweb._errors(node, "QIDO-RS"):
        answers = web.search_for_instances(study_uid, series_uid, fields=["InstanceNumber"])
    found = []
    for a in answers:
        ds = Dataset.from_json(a)
        if ds.get("SOPInstanceUID"):
            found.append((str(ds.SOPInstanceUID), _number(ds.get("InstanceNumber"))))
    if not found:
        raise NodeError(node, "no instances in this series")
    check(cancel)
    sop = _middle(found)
    with dicomweb._errors(node, "WADO-RS"):
        ds = web.retrieve_instance(study_uid, series_uid, sop, media_types=(("application/dicom", "*"),))
    path = folder / file_name(sop)
    ds.save_as(path, enforce_file_format=True)
    return path


def middle_instance(node: Node, study_uid: str, series_uid: str, folder: str | Path,
                    local: Optional[LocalAE] = None, cancel: Optional[CancelToken] = None) -> Path:
    """Retrieve the series' middle instance into ``folder``; returns its file."""
    check(cancel)
    folder = Path(folder)
    if isinstance(node, WebNode):
        return _web(node, study_uid, series_uid, folder, cancel)
    return _dimse(node, study_uid, series_uid, folder, local or LocalAE(), cancel)
