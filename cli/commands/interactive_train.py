"""train-interactive: train the promptable network (the "network" interactive engine) on
generated scenes with simulated prompting, and write its weights and card."""
from __future__ import annotations


def arguments(p) -> None:
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget (default 60)")
    p.add_argument("--steps", type=int, default=100_000, help="at most this many steps (default: the minutes decide)")
    p.add_argument("--out", help="folder for the model version (default: resources/models/promptable-net/VERSION)")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--work", help="checkpoint folder; a run started again resumes from it (default: OUT/work, removed when done)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--tiny", action="store_true", help="a tiny network on small scenes (tests, smoke runs)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (bf16 mixed precision there)")
    p.add_argument("--workers", type=int, default=0, help="processes drawing the scenes (default 0: this one)")
    p.add_argument("--init", help="start from these weights (.safetensors): fine-tuning")
    p.add_argument("--max-rounds", type=int, help="at most this many simulated corrective rounds per batch (default 3)")
    p.add_argument("--first-share", type=float, help="share of batches that are first prompts alone (default 0.5)")
    p.add_argument("--p-perturbed", type=float, help="share of batches whose previous mask is a perturbed target (default 0.2)")


def run(args) -> int:
    from pathlib import Path

    from inference.interactive import net_model
    from inference.interactive.train_prompts import TrainConfig, TINY, train, write_model

    out = Path(args.out) if args.out else net_model.MODEL_DIR / args.version
    work = Path(args.work) if args.work else out / "work"
    opts = dict(TINY if args.tiny else {})
    opts.update({k: v for k, v in (("max_iterations", args.max_rounds), ("first_share", args.first_share),
                                   ("p_perturbed", args.p_perturbed)) if v is not None})
    cfg = TrainConfig(minutes=args.minutes, steps=args.steps, seed=args.seed, threads=args.threads,
                      device=args.device, workers=args.workers, init=args.init, **opts)
    state = train(cfg, work, log=print)
    card = write_model(state["net"], state, out, args.version)
    if not args.work:  # finished: the checkpoints were only for resuming an interrupted run
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(f"{out}: {state['step']} steps in {state['seconds'] / 60:.1f} min, "
          f"final loss {card['training']['final_loss']:.4f}")
    return 0


COMMANDS = (("train-interactive", "train the promptable network on generated scenes (interactive engine)",
             arguments, run),)
