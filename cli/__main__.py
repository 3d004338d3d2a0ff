"""``python -m cli COMMAND ...``: the commands without the viewer (``main.py`` opens that)."""
import sys

from cli.entry import main

sys.exit(main(sys.argv[1:]))
