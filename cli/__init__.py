"""Command line: argparse only; each command calls app.actions."""
