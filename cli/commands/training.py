"""train and benchmark-models: the shipped models' recipes, retraining on the store, the benchmark."""
from __future__ import annotations


def train_arguments(p) -> None:
    p.add_argument("recipe", nargs="?", choices=("brain", "ct", "us"))
    p.add_argument("--from-store", action="store_true", help="fine-tune on the approved corrections in the store")
    p.add_argument("--base", help="with --from-store: the model to start from (default: the recipe's); "
                                  "promptable-net fine-tunes the interactive engine's network")
    p.add_argument("--store", help="with --from-store: the store folder (default: the user's)")
    p.add_argument("--iterations", type=int, help="default: the recipe's")
    p.add_argument("--out", help="models folder (default: resources/models, the shipped models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heldout", type=int, default=4, help="held-out generated cases for the card's Dice")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--init", help="start from a registered model's weights, ID or ID/VERSION (fine-tuning)")
    p.add_argument("--version", help="version of the new model (default: the recipe's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="also write the weights every N iterations (checkpoint.safetensors in the output folder)")


def cmd_train(args) -> int:
    from pathlib import Path

    import torch

    from inference.registry import SHIPPED
    from inference.training.recipes import RECIPES
    from inference.training.train import train

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.from_store and (args.base or "").partition("/")[0] == "promptable-net":
        from app.actions.review import retrain_interactive, retrain_interactive_summary
        from cli.progress import progress_bar

        card = retrain_interactive(args.store or None, Path(args.out) / "promptable-net" if args.out else None,
                                   args.iterations or 200, progress_bar)
        print(retrain_interactive_summary(card))
        return 0
    if args.from_store:
        from app.actions.review import retrain, retrain_summary
        from cli.progress import progress_bar
        from inference.registry import Registry

        reg = Registry()
        base = reg.get(args.base or args.recipe and {"brain": "brain-tissue", "ct": "ct-torso-phantom",
                                                      "us": "us-lesion-2d"}[args.recipe])
        card = retrain(base, args.store or None, Path(args.out) if args.out else None,
                       args.iterations or 200, progress_bar, registry=reg)
        print(card.summary())
        print(retrain_summary(card))
        return 0
    if args.recipe is None:
        raise SystemExit("name a recipe (brain, ct, us), or --from-store --base MODEL")
    recipe = RECIPES[args.recipe]()
    parent = None
    if args.init:
        from inference.registry import Registry

        model_id, _, version = args.init.partition("/")
        parent = Registry().get(model_id, version or None)
    card = train(recipe, Path(args.out) if args.out else SHIPPED, args.iterations, seed=args.seed,
                 heldout_cases=args.heldout, parent=parent, version=args.version, lr=args.lr,
                 checkpoint_every=args.checkpoint_every)
    print(card.summary())
    return 0


def benchmark_arguments(p) -> None:
    from inference.benchmark import TASK_DIMS

    p.add_argument("--task", default="us", choices=tuple(TASK_DIMS))
    p.add_argument("--budget", type=float, default=2.0, help="training minutes per architecture (default 2)")
    p.add_argument("--iterations", type=int, help="a fixed number of iterations instead of a time budget")
    p.add_argument("--only", help="comma-separated architectures (e.g. UNet,SegNet)")
    p.add_argument("--heldout", type=int, default=8, help="held-out generated cases")
    p.add_argument("--out", default="docs", help="folder for benchmark-TASK.md/.csv/.png (default docs/)")
    p.add_argument("--models", help="where the trained models are registered (default: the user's model folder)")


def cmd_benchmark(args) -> int:
    from pathlib import Path

    from inference import benchmark

    budget = None if args.iterations else args.budget
    rows = benchmark.run(args.task, Path(args.out), budget, args.iterations, args.only.split(",") if args.only else None,
                         args.heldout, Path(args.models) if args.models else None)
    print(f"wrote {Path(args.out) / f'benchmark-{args.task}.md'} ({len(rows)} models)")
    return 0


COMMANDS = (
    ("train", "train a default model on generated data (CPU is fine)", train_arguments, cmd_train),
    ("benchmark-models", "train every architecture on the same generated data and budget, evaluate on the same "
                         "held-out cases; Markdown + CSV + plot", benchmark_arguments, cmd_benchmark),
)
