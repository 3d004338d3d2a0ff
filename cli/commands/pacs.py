"""pacs echo|find|get|send|nodes|add|cache: talking to a hospital's archive through app.actions.pacs.

NODE is a configured name (``pacs add``), ``AET@host:port`` (DIMSE) or a DICOMweb URL."""
from __future__ import annotations

import json

from cli.progress import progress_bar

def _node(p) -> None:
    p.add_argument("node", help="configured name, AET@host:port (DIMSE) or http(s)://... (DICOMweb)")


def pacs_arguments(p) -> None:
    from app.actions.pacs import METHODS
    from pacs.query import LEVELS

    p.add_argument("--config", help="PACS settings file (default: pacs.json in the user's config folder, "
                                    "or $DELINEATE_PACS_NODES)")
    sub = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    _node(sub.add_parser("echo", help="check a node answers (C-ECHO, or a QIDO-RS request)"))
    f = sub.add_parser("find", help="search studies or series (C-FIND or QIDO-RS)")
    _node(f)
    f.add_argument("--patient-id", default="")
    f.add_argument("--name", default="", help="patient name, * and ? wildcards (Doe^J*)")
    f.add_argument("--from", dest="date_from", default="", help="study date from (YYYYMMDD or YYYY-MM-DD)")
    f.add_argument("--to", dest="date_to", default="", help="study date to")
    f.add_argument("--modality", default="")
    f.add_argument("--accession", default="")
    f.add_argument("--study", default="", help="Study Instance UID")
    f.add_argument("--level", choices=LEVELS, default="study")
    f.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    g = sub.add_parser("get", help="retrieve a series into the local cache and print its folder")
    _node(g)
    g.add_argument("study_uid")
    g.add_argument("series_uid")
    g.add_argument("--method", choices=METHODS, default="auto",
                   help="C-GET, C-MOVE (to Delineate's Storage SCP, local.port) or WADO-RS (default: C-GET "
                        "for a DIMSE node, WADO-RS for a URL)")
    g.add_argument("--refresh", action="store_true", help="retrieve again even when cached")
    s = sub.add_parser("send", help="send DICOM files or folders (C-STORE or STOW-RS), e.g. an exported SEG")
    _node(s)
    s.add_argument("paths", nargs="+")
    sub.add_parser("nodes", help="list the configured nodes and Delineate's own AE")
    a = sub.add_parser("add", help="add (or replace) a node in the settings")
    a.add_argument("name")
    a.add_argument("address", help="AET@host:port or a DICOMweb URL")
    a.add_argument("--tls", action="store_true", help="DIMSE over TLS")
    a.add_argument("--ca-file", help="CA bundle that signs the server's certificate")
    a.add_argument("--auth", choices=("none", "basic", "bearer"), default="none", help="DICOMweb authentication")
    a.add_argument("--user", default="", help="user name (basic)")
    a.add_argument("--secret-env", default="", help="environment variable holding the password or token "
                                                    "(secrets are never written to the settings file)")
    a.add_argument("--local-ae", help="Delineate's own AE title (default DELINEATE)")
    a.add_argument("--local-port", type=int, help="port of Delineate's Storage SCP for C-MOVE (default 11113)")
    c = sub.add_parser("cache", help="show the retrieve cache, or empty it")
    c.add_argument("--clear", action="store_true")


def _row(m) -> str:
    uid = m.series_uid or m.study_uid
    what = f"#{m.series_number or ''} {m.series_description}" if m.series_uid else m.study_description
    return f"{m.study_date:<8}  {m.patient_id:<12} {m.patient_name:<20} {m.modality:<6} {str(m.instances or ''):>5}  " \
           f"{what[:30]:<30}  {uid}"


def cmd_pacs(args) -> int:
    from app.actions import pacs as actions

    which = args.pacs_command
    if which == "echo":
        seconds = actions.echo(args.node, config=args.config)
        print(f"{actions.node(args.node, args.config)}: answered in {seconds * 1000:.0f} ms")
    elif which == "find":
        from pacs.query import Query

        q = Query(args.patient_id, args.name, args.date_from, args.date_to, args.modality, args.accession, args.study)
        found = actions.find(args.node, q, args.level, config=args.config, progress=progress_bar)
        if args.json:
            print(json.dumps([m.as_dict() for m in found], indent=1))
        else:
            for m in found:
                print(_row(m))
            print(f"{len(found)} {'series' if args.level == 'series' else 'studies'}")
    elif which == "get":
        folder = actions.retrieve(args.node, args.study_uid, args.series_uid, method=args.method,
                                  refresh=args.refresh, config=args.config, progress=progress_bar)
        print(folder)
    elif which == "send":
        n = actions.send(args.node, args.paths, config=args.config, progress=progress_bar)
        print(f"sent {n} files to {actions.node(args.node, args.config)}")
    elif which == "nodes":
        s = actions.settings(args.config)
        print(f"settings: {s.path}")
        print(f"local AE: {s.local.ae_title}, Storage SCP port {s.local.port} (for C-MOVE)")
        for name, n in sorted(s.nodes.items()):
            print(f"{name}: {n}{' (TLS)' if getattr(n, 'tls', False) else ''}")
    elif which == "add":
        _add(args)
    elif which == "cache":
        store = actions.cache(args.config)
        if args.clear:
            print(f"removed {store.clear()} series from {store.root}")
        else:
            entries = store.entries()
            print(f"{store.root}: {len(entries)} series, {sum(e.size for e in entries) / 1e6:.1f} MB "
                  f"(limit {store.max_bytes / 1e9:g} GB)")
    return 0


def _add(args) -> None:
    from dataclasses import replace

    from pacs import nodes

    s = nodes.load(args.config)
    n = nodes.parse_node(args.address)
    if isinstance(n, nodes.WebNode):
        n = nodes.WebNode(n.url, args.name, args.auth, args.user, args.secret_env, args.ca_file)
    else:
        n = replace(n, name=args.name, tls=args.tls, ca_file=args.ca_file)
    s.nodes[args.name] = n
    if args.local_ae or args.local_port:
        s.local = nodes.LocalAE(args.local_ae or s.local.ae_title, args.local_port or s.local.port, s.local.bind)
    path = nodes.save(s, args.config)
    print(f"{args.name}: {n} saved in {path}")


COMMANDS = (
    ("pacs", "talk to a PACS: echo, find, get (into the local cache), send; nodes, add, cache", pacs_arguments,
     cmd_pacs),
)
