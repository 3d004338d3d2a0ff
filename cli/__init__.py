"""The command line: argparse only. ``cli.parser`` declares the commands (each command module's
``COMMANDS``: name, help, arguments, run); a command parses its arguments, calls ``app.actions`` or
the library, and prints the result; a DelineateError becomes one ``error:`` line and exit code 2 (3
for a model refused as unsafe). Option lists come from the enumerations the cards and the GUI use;
only the chosen command's arguments are built, so ``--help`` imports neither numpy nor torch. The
viewer is not started from here: ``main.py`` sends no command (or a path) to ``gui``."""
