"""The argument parser. Only the chosen command's arguments are built (they import the enumerations
they offer: export formats, normalisations, devices); the others are a name and a help line, which is
all the top-level ``--help`` shows."""
from __future__ import annotations

import argparse
from typing import Optional

from cli.commands import evaluation, exporting, images, models, pacs, selftest, store, training
from cli.commands import federated
from cli.commands import interactive_train
from cli.commands import interactive

DESCRIPTION = "Delineate: review and correct AI segmentations of medical images."


def gui_arguments(p) -> None:
    p.add_argument("path", nargs="?", help="image file, DICOM folder or sample name (default: the MNI152 T1 "
                                           "sample, segmented by the default brain model)")
    p.add_argument("--no-model", action="store_true", help="do not run the default model on the sample")


def cmd_gui(args) -> int:
    from core.errors import DelineateError

    raise DelineateError("the viewer opens from main.py (python main.py [PATH])")


GUI = ("gui", "open the viewer (default when no command is given)", gui_arguments, cmd_gui)
_BY_NAME = {c[0]: c for c in (GUI,) + images.COMMANDS + models.COMMANDS + training.COMMANDS + store.COMMANDS
            + federated.COMMANDS
            + exporting.COMMANDS + selftest.COMMANDS + evaluation.COMMANDS + pacs.COMMANDS
            + interactive_train.COMMANDS + interactive.COMMANDS}
#: the order --help lists them in
NAMES = ("gui", "info", "convert", "segment", "models", "train", "explain", "export-dataset", "check-store", "store",
         "export",
         "benchmark-models", "import-model", "evaluate", "calibrate-guard", "selftest", "interactive", "federated",
         "calibrate-confidence",
         "benchmark-interactive",
         "pacs", "train-interactive")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """Every command's arguments, or (``command`` given) only that command's: the rest are names."""
    p = argparse.ArgumentParser(prog="delineate", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in NAMES:
        _name, help_text, arguments, run = _BY_NAME[name]
        sp = sub.add_parser(name, help=help_text)
        if command is None or command == name:
            arguments(sp)
        sp.set_defaults(func=run)
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    argv = list(argv)
    return build_parser(argv[0] if argv and argv[0] in NAMES else "").parse_args(argv)
