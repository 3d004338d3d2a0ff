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


COMMANDS = (
    ("export-dataset", "export approved corrections as an nnU-Net v2 or MONAI dataset", dataset_arguments,
     cmd_export_dataset),
    ("check-store", "check the corrections store: index integrity, missing files, and the litter of interrupted "
                    "saves (--repair removes that litter)", check_arguments, cmd_check_store),
)
