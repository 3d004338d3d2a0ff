"""Flower's simulation engine (Ray) over sites given by their stores: the same ServerApp and ClientApp
as the deployment runtime, run in this process (the ServerApp in a thread, each site's ClientApp in
a Ray actor) instead of a SuperLink and one SuperNode process per site. For tests and for planning a
federation (how many rounds, which strategy) on copies of the sites' stores; real sites use the
deployment runtime (federated.runtime). Simulated node ``partition-id`` i is the site at
``stores[i]``; the run config takes the same keys as `flwr run --run-config`
(flower-app/pyproject.toml) and the summary is the deployment runtime's."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from core.errors import DelineateError
from federated.runtime import APP_DIR


def defaults() -> dict:
    """The Flower App's run config defaults (what `flwr run` would start from)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    return dict(tomllib.loads((APP_DIR / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"])


def _server(run_config: dict):
    from flwr.serverapp import ServerApp

    from federated.server_app import app as server_app

    wrapper = ServerApp()

    @wrapper.main()
    def main(grid, context) -> None:
        # run_simulation starts the ServerApp with an empty run config: give it the run's
        context.run_config.update(run_config)
        server_app(grid, context)

    return wrapper


def _client(stores: list[str], models: list[str]):
    """The deployment ClientApp, with each simulated node's node config set as a SuperNode's
    ``--node-config 'store=... models=...'`` would be."""
    from flwr.clientapp import ClientApp

    from federated.client_app import app as client_app

    wrapper = ClientApp()

    def at_site(msg, context):
        i = int(context.node_config["partition-id"])
        context.node_config["store"], context.node_config["models"] = stores[i], models[i]
        return client_app(msg, context), i

    @wrapper.train()
    def train(msg, context):
        return at_site(msg, context)[0]

    @wrapper.evaluate()
    def evaluate(msg, context):
        reply, i = at_site(msg, context)
        if not reply.has_error():  # which store decided: the summary's sites are in Flower's node order
            reply.content["metrics"]["site-index"] = i
        return reply

    return wrapper


def simulate(stores: list, home: Path, run_config: dict, cpus: Optional[int] = None,
             object_store_mb: int = 100) -> tuple[dict, list[Path]]:
    """A federation of ``len(stores)`` simulated sites (models kept in ``home``/siteN-models, the
    aggregated version in ``home``/server-models unless ``models-dir`` says otherwise); returns
    (summary, the sites' model folders) like federated.runtime.one_machine, each of the summary's
    sites with its ``store``. ``cpus``: Ray's CPUs (default: one a site, at most this machine's);
    each site's ClientApp takes one, so that many sites train at a time."""
    import importlib.util

    from federated.site import require_store
    from federated.strategies import STRATEGIES
    from store.location import is_url

    if importlib.util.find_spec("ray") is None:
        raise DelineateError("the simulation needs Ray: pip install -r requirements.txt")
    if not stores:
        raise DelineateError("give at least one site's store")
    if run_config.get("strategy", "fedavg") not in STRATEGIES:
        raise DelineateError(f"unknown strategy {run_config['strategy']!r}; one of {', '.join(STRATEGIES)}")
    if int(run_config.get("rounds", 1)) < 1 or int(run_config.get("local-iterations", 1)) < 1:
        raise DelineateError("rounds and local iterations must be at least 1")
    for s in stores:
        require_store(s)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    result = home / "result.json"
    result.unlink(missing_ok=True)
    models = [home / f"site{i}-models" for i in range(len(stores))]
    config = {**defaults(), "min-sites": len(stores), "models-dir": str((home / "server-models").resolve()),
              **run_config, "result-file": str(result.resolve())}
    unknown = sorted(set(config) - set(defaults()))
    if unknown:
        raise DelineateError(f"unknown run config keys: {', '.join(unknown)}")
    sites = [str(s) if is_url(s) else str(Path(s).resolve()) for s in stores]
    cpus = max(1, min(cpus or len(stores), os.cpu_count() or 1))
    backend = {"init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False,
                             "object_store_memory": object_store_mb * 1024 * 1024},
               "client_resources": {"num_cpus": 1, "num_gpus": 0}}
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "FLWR_TELEMETRY_ENABLED", "RAY_USAGE_STATS_ENABLED",
                                            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO")}
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # CPU only: leave device variables alone
    try:
        import ray
        from flwr.simulation import run_simulation

        try:
            run_simulation(_server(config), _client(sites, [str(m.resolve()) for m in models]), len(stores),
                           backend_config=backend)
        except DelineateError:
            raise
        except Exception as e:  # the ServerApp's or Flower's error, as one line
            raise DelineateError(f"the simulated federation failed: {e}") from e
        finally:
            if ray.is_initialized():  # Flower shuts Ray down when it ends normally, not on every error
                ray.shutdown()
    finally:
        for k, v in saved.items():  # Flower's Ray backend puts this process's sys.path in PYTHONPATH
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if not result.exists():
        raise DelineateError("the simulated federation ended without a result (see the log above)")
    summary = json.loads(result.read_text())
    for s in summary["sites"]:
        if "site-index" in s:
            s["store"] = sites[int(s["site-index"])]
    return summary, models
