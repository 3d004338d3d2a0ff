#!/usr/bin/env python3
"""Delineate: review and correct AI segmentations of medical images.

No arguments (or an image path or sample name): open the viewer (gui/). A command runs headless (cli/).
"""
from __future__ import annotations

import sys

from cli.entry import execute, opens_viewer, parse
from cli.parser import build_parser  # noqa: F401  (main.build_parser: scripts and tests)
from cli.paths import existing


def viewer(args) -> int:
    path = existing(args.path) if args.path else None
    from gui.app import run

    return run(path, model=not args.no_model)


def selftest(args) -> int:
    from cli.commands.selftest import run

    try:
        from gui.selftest import window_check
    except Exception as exc:  # a broken Qt/VTK install is what the self-test reports, as a FAIL line
        def window_check(*_, error=exc):
            raise error
    return run(args, window_check)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--selftest"]:
        argv[0] = "selftest"
    args = parse(["gui", *argv] if opens_viewer(argv) else argv)
    return execute(args, {"gui": viewer, "selftest": selftest}.get(args.command))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
