"""The window's case commands: run a model (the default one, or one chosen by its card), compare
with a second model, import a model, save the correction, retrain, export. Each gathers its inputs
on the UI thread, runs the app action in the task runner and puts the result into the session."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from PySide6 import QtCore, QtWidgets

from app.actions import review, segmenting
from app.session import CaseSession
from core.errors import DelineateError
from core.time_series import shown_time_point
from gui import dialogs
from gui.dialogs import CompareDialog, show_error
from gui.shell import Shell

RESEARCH_ONLY = "research use only, not for clinical use"


class CaseController(QtCore.QObject):
    def __init__(self, session: CaseSession, shell: Shell) -> None:
        super().__init__(shell)
        self.session, self.shell = session, shell
        self.last_comparison = None
        self.last_export: Optional[list] = None
        self.last_retrain = None

    # -- models ------------------------------------------------------------------------------
    def run_default_model(self) -> None:
        """The model made for this kind of image; if there is none, ask (never another modality's silently)."""
        from app.actions.models import NoDefaultModel, default_model

        if self.session.volume is None:
            return
        try:
            card = default_model(self.session.volume)
        except NoDefaultModel as exc:  # ask, listing the models of the image's dimension first
            self.run_model_dialog(cards=exc.candidates, note=f"{exc}.")
            return
        except DelineateError as exc:
            show_error(self.shell.widget, "model registry", exc)
            return
        self.run_model(card)

    def run_model_dialog(self, compare: bool = False, cards: Optional[list] = None, note: str = "") -> None:
        from app.actions.models import default_model
        from gui.model_dialog import ModelDialog
        from inference.registry import Registry

        if self.session.volume is None:
            return
        if compare and self.session.labelmap is None:
            self.shell.message("Run a model first: the comparison is with the mask on screen")
            return
        reg = Registry()
        try:
            default = default_model(self.session.volume, reg)
        except DelineateError:
            default = None
        dlg = ModelDialog(reg.cards() if cards is None else cards, reg.problems, default, self.shell.widget,
                          run_text="Compare" if compare else "Run", note=note)
        self.model_dialog = dlg  # kept for tests while it is shown
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.chosen() is not None:
            (self.compare_model if compare else self.run_model)(dlg.chosen(), dlg.device.currentText())

    def run_model(self, card, device: str = "auto") -> None:
        """Segment the open image in a worker (of a series over time, the time point on screen, held
        as it is while the cine bar plays on); the result becomes the editable label map, so edits
        not in the store are asked about first (its new history cannot undo back to them)."""
        self.confirm_then(f"running {card.name} over them", lambda: self._run_model(card, device))

    def _run_model(self, card, device: str) -> None:
        if self.session.volume is None:
            return
        volume = dataclasses.replace(self.session.volume)  # same grid and voxels; a step swaps only the view's
        k = shown_time_point(volume)
        self.shell.run(f"Running {card.name}",
                       lambda p, c, _part: segmenting.segment_checked(volume, card, device, p, c),
                       lambda guarded: self._segmented(guarded, k), card.id)

    def _segmented(self, guarded, time_point: Optional[int] = None) -> None:
        run = guarded.run
        try:
            went_back = self.session.set_run(run, guarded.warnings, time_point)
        except DelineateError as exc:  # its time point could not be read again: the mask is not put over another's
            show_error(self.shell.widget, "model run", exc)
            return
        if self.session.run is run:
            back = f"back on time point {time_point + 1}, which it segmented; " if went_back else ""
            self.shell.message(f"{run.card.id} v{run.card.version} on {run.device}: {run.seconds:.1f} s — "
                               f"{back}{RESEARCH_ONLY}", 20000)

    def compare_model(self, card, device: str = "auto") -> None:
        """Run another model and compare it with the mask on screen (which stays as it is)."""
        volume, current = self.session.volume, self.session.labelmap.copy()
        mine = self.session.run.card.id if self.session.run is not None else "the mask on screen"

        def done(result: segmenting.Comparison) -> None:
            if volume is self.session.volume:
                self.session.viewer.add_heatmap(result.heatmap)
                self.last_comparison = (card, result.rows, int(result.differ.sum()))
                CompareDialog(mine, card, result.rows, result.fraction, self.shell.widget).open()

        self.shell.run(f"Comparing with {card.name}",
                       lambda p, c, _part: segmenting.compare(volume, current, card, mine, device, p, c), done, card.id)

    def import_model_dialog(self) -> None:
        from gui.import_dialog import ImportDialog

        dlg = ImportDialog(self.shell.widget)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.import_model(dlg.spec())

    def import_model(self, spec) -> None:
        from app.actions.models import import_model

        self.shell.run("Importing model", lambda p, c, _part: import_model(spec, progress=p, cancel=c),
                       lambda card: self.shell.message(f"Imported: {card.summary()}", 15000), str(spec.path))

    # -- review --------------------------------------------------------------------------------
    def save_then(self, then, root=None) -> None:
        """Save the open case if it has anything unsaved, then ``then()`` (the worklist's Next /
        Previous case). A failed save shows its error and does not call ``then``: nothing edited
        is left behind."""
        s = self.session
        if s.volume is None or s.labelmap is None or not self.unsaved():
            then()
            return
        self._save_keeping_state(then, root)

    def _save_keeping_state(self, then, root=None) -> None:
        """An approved case stays approved; anything else is saved in review, so moving on never
        approves a case nobody approved."""
        s = self.session
        stored = s.review_state or (s.volume.metadata or {}).get("store_state")
        self.save_correction("approved" if stored == "approved" else "in_review", root=root, then=then)

    def unsaved(self) -> bool:
        """Whether the mask on screen differs from what the store has of it: an image not in the
        store yet, a model run on it, or edits or measurements since it was opened from the store
        or last saved (undoing back to a saved state is not a change)."""
        s = self.session
        if s.store_case is None:
            return True
        if s.run is not None and not s.mask_saved():  # a store case opens without a run: this mask is new
            return True
        return s.has_unsaved_edits()

    def ask_unsaved(self, doing: str, then=None, root=None) -> str:
        """Before the case is left (another image opened, the window closed): if the physician's
        edits are not in the store, ask "Save the corrections to <case> before <doing>?". SAVE saves
        as Next case does and calls ``then()`` once it is saved (not if the save fails); DISCARD
        drops them (and their crash-recovery copy); CANCEL keeps the case as it is. Returns the
        answer, "" when nothing needed asking."""
        from store import recovery

        s = self.session
        if not s.has_unsaved_edits():
            return ""
        case = f"case {s.store_case}" if s.store_case else (Path(s.source).name if s.source else "this image")
        answer = dialogs.ask_save_corrections(self.shell.widget, case, doing)
        if answer == dialogs.SAVE:
            self._save_keeping_state(then or (lambda: None), root)
        elif answer == dialogs.DISCARD:
            recovery.clear()  # not offered back at the next start either
        else:
            self.shell.message(f"Kept {case} open with its corrections", 8000)
        return answer

    def confirm_then(self, doing: str, go, root=None) -> None:
        """``go()`` now if nothing is unsaved or the edits are discarded, after the save if saved,
        never if cancelled (every way of opening another case comes through here)."""
        if self.ask_unsaved(doing, go, root) in ("", dialogs.DISCARD):
            go()

    def save_correction(self, state: str, reason: str = "", root=None, then=None) -> None:
        """Save the AI mask and the corrected one, with provenance, to the corrections store;
        ``then()`` after it is saved."""
        if self.session.volume is None or self.session.labelmap is None:
            return
        if state == "rejected" and not reason:
            reason, ok = QtWidgets.QInputDialog.getText(self.shell.widget, "Reject",
                                                        "Why is this segmentation rejected?")
            if not ok or not reason.strip():
                return
        reviewer = self.shell.reviewer()
        if not reviewer:  # the name box cancelled: a correction is not stored without its reviewer of record
            self.shell.message("Not saved: a correction needs a reviewer of record (your name); nothing was "
                               "changed", 15000)
            return
        try:
            req = review.correction_request(self.session, state, reviewer, reason)
        except DelineateError as exc:
            show_error(self.shell.widget, "corrections store", exc)
            return
        mark = self.session.edit_mark()  # what is being saved: edits made while it saves are still unsaved

        def saved(result) -> None:
            from store import recovery

            recovery.clear()  # the store has it now
            self.session.mark_saved(result[0], result[1], state, mark)
            self.shell.message(f"Saved correction {result[1]} of case {result[0]} ({state.replace('_', ' ')})", 15000)
            if then is not None:
                then()

        self.shell.run("Saving correction", lambda p, c, _part: review.save_correction(req, root, p, c), saved,
                       "corrections store")

    def retrain_model(self, root=None, out_root=None, iterations: int = 200) -> None:
        """Fine-tune the draft's (or the default) model on the store's approved corrections."""
        try:
            base = review.retrain_base(self.session)
        except DelineateError as exc:
            show_error(self.shell.widget, "model registry", exc)
            return

        def done(card) -> None:
            self.last_retrain = card
            QtWidgets.QMessageBox.information(self.shell.widget, "Retrained", review.retrain_summary(card))

        self.shell.run(f"Retraining {base.id}",
                       lambda p, c, _part: review.retrain(base, root, out_root, iterations, p, c), done, "retraining")

    def retrain_interactive(self, root=None, out_root=None, steps: int = 200) -> None:
        """Fine-tune the promptable network (the Interactive tool's "network" engine) on the store's
        approved corrections; the next object uses it if it was promoted."""
        def done(card) -> None:
            self.last_retrain = card
            QtWidgets.QMessageBox.information(self.shell.widget, "Retrained",
                                              review.retrain_interactive_summary(card))

        self.shell.run("Retraining the interactive network",
                       lambda p, c, _part: review.retrain_interactive(root, out_root, steps, p, c), done, "retraining")

    # -- export --------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        from gui.export_dialog import ExportDialog

        vol = self.session.volume
        if vol is None or self.session.labelmap is None:
            self.shell.message("Nothing to export: open an image and segment it first")
            return
        stem = (Path(vol.source).name.split(".")[0] if vol.source else "case") or "case"
        dlg = ExportDialog(self.shell.last_dir(), f"{stem}-seg", self.session.run is not None, self.shell.widget,
                           explanation=self.session.viewer.active_heatmap(), at=self.session.viewer.cursor_world())
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.export_case(**dlg.values())

    def export_case(self, fmt: str, path: str, deidentify: bool = False, fractional: bool = False,
                    compress: bool = False, explanation=None) -> None:
        """Export what is on screen (a copy: editing may go on meanwhile) in a worker."""
        from app.actions.exporting import case_from_session, export_case
        from gui.export_dialog import export_failed

        case = case_from_session(self.session, str(self.shell.settings.value("reviewer", "") or ""))

        def done(written) -> None:
            self.last_export = written
            self.shell.message(f"Exported {written[0]}" + (f" and {len(written) - 1} more files" if len(written) > 1
                                                           else ""), 15000)

        self.shell.tasks.start(f"Exporting {fmt}", lambda p, c, _part: export_case(
            fmt, case, path, fractional=fractional, deidentify=deidentify, compress=compress, progress=p, cancel=c,
            explanation=explanation),
            done, lambda exc: export_failed(self.shell.widget, path, exc))
