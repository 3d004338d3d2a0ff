"""export-dataset, check-store and store: the corrections store as training data, its health, and
a team store's administration (info, migrate, assign, break-lock, audit). ``--store`` (alias
``--url``) takes a folder or a ``postgresql://...?files=/shared/folder`` URL."""
from __future__ import annotations

_STORE_HELP = ("corrections store: a folder or postgresql://user@host/db?files=/shared/folder "
               "(default: $DELINEATE_STORE, else the user's)")


def _store(p, help_text: str = _STORE_HELP) -> None:
    p.add_argument("--store", "--url", dest="store", help=help_text)


def dataset_arguments(p) -> None:
    p.add_argument("output", help="folder")
    p.add_argument("--format", choices=("nnunet", "monai"), default="nnunet")
    p.add_argument("--name", default="Dataset500_Delineate", help="nnU-Net dataset name (DatasetNNN_Name)")
    _store(p)


def cmd_export_dataset(args) -> int:
    from app.actions.store_cases import export_dataset

    counts = export_dataset(args.output, args.format, args.name, args.store)
    print(f"wrote {counts['train']} training and {counts['holdout']} held-out cases to {args.output} ({args.format})")
    return 0


def check_arguments(p) -> None:
    p.add_argument("--repair", action="store_true", help="remove unreferenced files and temp folders first")
    _store(p)


def cmd_check_store(args) -> int:
    from app.actions.store_cases import check_store

    root, removed, problems, n = check_store(args.store, args.repair)
    for path in removed:
        print(f"removed {path}")
    for p in problems:
        print(p)
    print(f"{root}: {n} cases, " + (f"{len(problems)} problems" if problems else "healthy"))
    return 1 if problems else 0


def store_arguments(p) -> None:
    sub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    _store(sub.add_parser("info", help="backend, location, schema version, cases by state, live locks"))
    _store(sub.add_parser("migrate", help="create the store (tables in an empty database) or bring it to this "
                                          "release's schema"))
    a = sub.add_parser("assign", help="assign a case to a reviewer (\"\" to nobody)")
    a.add_argument("case")
    a.add_argument("reviewer")
    a.add_argument("--by", default="", help="who assigns it (default: your login)")
    _store(a)
    b = sub.add_parser("break-lock", help="break a stale lock on a case; the reason goes into the audit trail")
    b.add_argument("case")
    b.add_argument("--reason", required=True)
    b.add_argument("--by", default="", help="who breaks it (default: your login)")
    _store(b)
    t = sub.add_parser("audit", help="the audit trail (of one case, or all), oldest first")
    t.add_argument("case", nargs="?")
    _store(t)


def cmd_store(args) -> int:
    from app.actions import store_cases

    if args.store_command in ("info", "migrate"):
        info = store_cases.store_info(args.store, migrate=args.store_command == "migrate")
        print(f"{info['location']} ({info['backend']}, schema {info['schema']}, files in {info['files']})")
        print("cases: " + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in info["cases"].items()))
        for line in info["locks"] or ["no case is locked"]:
            print(line)
    elif args.store_command == "assign":
        store_cases.assign_case(args.case, args.reviewer, args.by, args.store)
        print(f"case {args.case} assigned to {args.reviewer or 'nobody'}")
    elif args.store_command == "break-lock":
        old = store_cases.break_lock(args.case, args.by, args.reason, args.store)
        print(f"case {args.case}: broke the lock of {old.holder} on {old.host}" if old else
              f"case {args.case} was not locked")
    else:
        for e in store_cases.audit_trail(args.case, args.store):
            states = f"{e['old_state'] or '-'} -> {e['new_state']}" if e["old_state"] != e["new_state"] else e["new_state"]
            print(f"{e['at']}  {e['case_id']}  {e['action']:<12} {states:<24} {e['actor']} ({e['login']}@{e['host']})"
                  + (f"  {e['detail']}" if e["detail"] else ""))
    return 0


COMMANDS = (
    ("export-dataset", "export approved corrections as an nnU-Net v2 or MONAI dataset", dataset_arguments,
     cmd_export_dataset),
    ("check-store", "check the corrections store: index integrity, missing files, and the litter of interrupted "
                    "saves (--repair removes that litter)", check_arguments, cmd_check_store),
    ("store", "the corrections store: info, migrate, assign a case, break a stale lock, the audit trail",
     store_arguments, cmd_store),
)
