"""federated server|site|simulate: federated retraining with Flower (docs/federated.md)."""
from __future__ import annotations

from pathlib import Path


def federated_arguments(p) -> None:
    sub = p.add_subparsers(dest="federated_command", metavar="ROLE", required=True)
    s = sub.add_parser("server", help="run a federation: start a SuperLink, wait for the sites, aggregate, keep "
                                      "the new version")
    _run_options(s)
    s.add_argument("--min-sites", type=int, default=2, help="sites that must take part (default 2)")
    s.add_argument("--listen", default="0.0.0.0:9093", help="the SuperLink's HOST:PORT (default 0.0.0.0:9093)")
    s.add_argument("--certificate", help="the SuperLink's TLS certificate (PEM)")
    s.add_argument("--key", help="its private key (PEM)")
    s.add_argument("--ca", help="the CA certificate that signed it (PEM)")
    s.add_argument("--insecure", action="store_true", help="no TLS (testing on one machine only)")
    s.add_argument("--models", help="where to keep the new version (default: the user's model folder)")
    t = sub.add_parser("site", help="join a federation as a site: your store stays here, only parameters and "
                                    "scalar metrics are sent")
    t.add_argument("--superlink", required=True, help="the server's HOST:PORT")
    t.add_argument("--store", help="this site's corrections store (default: the user's)")
    t.add_argument("--models", help="this site's model folder (default: the user's)")
    t.add_argument("--ca", help="the CA certificate that signed the SuperLink's certificate (PEM)")
    t.add_argument("--insecure", action="store_true", help="no TLS (testing on one machine only)")
    t.add_argument("--port", type=int, default=9094, help="local port for the site's ClientApp (one per site on "
                                                          "a machine; default 9094)")
    t.add_argument("--once", action="store_true", help="leave after deciding on one federated model")
    m = sub.add_parser("simulate", help="simulate a federation on this machine with Flower's simulation engine: "
                                        "one simulated site per --store (tests, planning; real sites use server/site)")
    m.add_argument("--store", action="append", required=True, metavar="STORE",
                   help="a site's corrections store (a copy for planning); repeat, one per site")
    m.add_argument("--home", help="where the sites' and the server's models go (default: a new temporary folder)")
    m.add_argument("--cpus", type=int, help="CPUs for the simulation (default: one a site, at most this machine's)")
    m.add_argument("--models", help="where to keep the aggregated version (default: HOME/server-models)")
    _run_options(m)


def _run_options(p) -> None:
    """What a federation runs: the server's options, and the simulation's (same names, same defaults)."""
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="us-lesion-2d", help="the base model's ID (default us-lesion-2d)")
    p.add_argument("--model-version", default="", help="its version (default: the latest promoted)")
    p.add_argument("--strategy", choices=("fedavg", "fedprox", "fedmedian"), default="fedavg",
                   help="fedmedian resists a site with bad data")
    p.add_argument("--local-iterations", type=int, default=20, help="training iterations at each site per round")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--proximal-mu", type=float, default=0.0, help="FedProx's mu (default 0.01 with fedprox)")
    p.add_argument("--dp-clip", type=float, default=0.0, help="differential privacy: clip each site's update to "
                                                              "this L2 norm (0: off)")
    p.add_argument("--dp-noise", type=float, default=0.0, help="differential privacy: Gaussian noise multiplier")
    p.add_argument("--seed", type=int, default=0)


def _tls_or_insecure(args, need_key: bool):
    from core.errors import DelineateError
    from federated.runtime import Tls

    if args.insecure:
        return None
    if not args.ca or (need_key and not (args.certificate and args.key)):
        raise DelineateError("give TLS files (" + ("--certificate, --key and " if need_key else "")
                             + "--ca), or --insecure to test on one machine")
    for f in [args.ca] + ([args.certificate, args.key] if need_key else []):
        if not Path(f).is_file():
            raise DelineateError(f"{f}: no such file")
    return Tls(Path(args.ca), Path(args.certificate) if need_key else None, Path(args.key) if need_key else None)


def cmd_federated(args) -> int:
    import signal
    import sys

    from app.actions import federated
    from cli.progress import progress_bar

    # a terminated command still stops its SuperLink or SuperNode (they run in their own process groups)
    signal.signal(signal.SIGTERM, lambda *_a: sys.exit(143))

    if args.federated_command == "server":
        summary = federated.serve(args.rounds, args.min_sites, args.model, args.model_version, args.strategy,
                                  args.local_iterations, args.lr, args.proximal_mu, args.dp_noise, args.dp_clip,
                                  args.listen, _tls_or_insecure(args, True),
                                  Path(args.models) if args.models else None, seed=args.seed, progress=progress_bar)
        print(federated.summary_text(summary))
        return 0
    if args.federated_command == "simulate":
        return _simulate(args)
    tls = _tls_or_insecure(args, False)
    try:
        return federated.join(args.superlink, args.store, Path(args.models) if args.models else None,
                              tls.ca if tls else None, args.port, progress=progress_bar, until_done=args.once)
    except KeyboardInterrupt:
        return 130


def _simulate(args) -> int:
    import tempfile

    from app.actions.federated import summary_text
    from federated.simulation import simulate

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="delineate-simulation-"))
    config = {"rounds": args.rounds, "model": args.model, "model-version": args.model_version,
              "strategy": args.strategy, "local-iterations": args.local_iterations, "lr": args.lr,
              "proximal-mu": args.proximal_mu, "dp-noise": args.dp_noise, "dp-clip": args.dp_clip, "seed": args.seed}
    if args.models:
        config["models-dir"] = str(Path(args.models).resolve())
    summary, models = simulate(args.store, home, config, cpus=args.cpus)
    print(summary_text(summary))
    for i, s in enumerate(summary["sites"], 1):
        if "store" in s:
            print(f"  site {i}: {s['store']} (its models in {models[int(s['site-index'])]})")
    return 0


COMMANDS = (
    ("federated", "federated retraining with Flower: `federated server` runs a federation, `federated site` "
                  "joins one with this machine's store, `federated simulate` runs one over local stores "
                  "(docs/federated.md)", federated_arguments, cmd_federated),
)
