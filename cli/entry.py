"""Running a parsed command: a DelineateError becomes one ``error:`` line and an exit code."""
from __future__ import annotations

import sys
from typing import Callable, Optional

from cli.parser import NAMES, build_parser, parse
from cli.paths import is_image


def execute(args, run: Optional[Callable] = None) -> int:
    """``run(args)`` (default: the command's own function); 2 on a DelineateError (3 for a model
    refused as unsafe), 130 on Ctrl+C."""
    from app import logs
    from core.errors import DelineateError

    logs.start(args.command or "cli")  # the command's name only: its arguments may name a patient's files
    try:
        return (run or args.func)(args)
    except DelineateError as exc:
        logs.error(exc, args.command or "")
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 3: a model refused as unsafe (import-model)
    except KeyboardInterrupt:
        return 130


def opens_viewer(argv: list[str]) -> bool:
    """No arguments, or an image path or sample name first (not a command): main.py opens the viewer."""
    return not argv or (argv[0] not in NAMES and is_image(argv[0]))


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m cli``: a command is required (the viewer opens from main.py)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if args.command is None:
        build_parser("").print_help(sys.stderr)
        return 2
    return execute(args)
