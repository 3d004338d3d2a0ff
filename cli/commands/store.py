"""export-dataset and check-store: the corrections store as training data, and its health."""
from __future__ import annotations


def _store(p, help_text: str = "corrections store folder (default: the user's)") -> None:
    p.add_argument("--store", help=help_text)


def dataset_arguments(p) -> None:
    p.add_argument("output", help="folder")
    p.add_argument("--format", choices=("nnunet", "monai"), default="nnunet")
    p.add_argument("--name", default="Dataset500_Delineate", help="nnU-Net dataset name (DatasetNNN_Name)")
    _store(p)


def cmd_export_dataset(args) -> int:
    from pathlib import Path

    from store.corrections import CorrectionsStore
    from store.dataset import export

    with CorrectionsStore(Path(args.store) if args.store else None) as store:
        counts = export(store, Path(args.output), args.format, args.name)
    print(f"wrote {counts['train']} training and {counts['holdout']} held-out cases to {args.output} ({args.format})")
    return 0


def check_arguments(p) -> None:
    p.add_argument("--repair", action="store_true", help="remove unreferenced files and temp folders first")
    _store(p)


def cmd_check_store(args) -> int:
    from pathlib import Path

    from store.corrections import CorrectionsStore

    if args.store and not (Path(args.store) / "index.sqlite").is_file():
        raise SystemExit(f"error: {args.store}: not a Delineate store (no index.sqlite)")
    with CorrectionsStore(Path(args.store) if args.store else None) as store:
        for path in store.repair() if args.repair else []:
            print(f"removed {path}")
        problems = store.check()
        n = len(store.cases())
    for p in problems:
        print(p)
    print(f"{store.root}: {n} cases, " + (f"{len(problems)} problems" if problems else "healthy"))
    return 1 if problems else 0


COMMANDS = (
    ("export-dataset", "export approved corrections as an nnU-Net v2 or MONAI dataset", dataset_arguments,
     cmd_export_dataset),
    ("check-store", "check the corrections store: index integrity, missing files, and the litter of interrupted "
                    "saves (--repair removes that litter)", check_arguments, cmd_check_store),
)
