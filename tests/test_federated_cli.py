"""The federated command line and the pieces it rests on, without a federation: help without
importing Flower, bad input as one line naming the problem, parameters that round-trip exactly,
versions that never collide with a site's own retraining."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import ROOT


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_both_roles_and_does_not_import_flower():
    out = run("federated", "--help")
    assert out.returncode == 0 and "server" in out.stdout and "site" in out.stdout
    code = "import sys, main; from cli.parser import parse; parse(['federated', 'server', '--rounds', '2']); " \
           "print('flwr' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("args, words", [
    (("federated", "site", "--superlink", "127.0.0.1:9", "--insecure", "--store", "/nonexistent/store"),
     ["/nonexistent/store", "no corrections store"]),
    (("federated", "site", "--superlink", "nohostport", "--insecure", "--store", "."), ["HOST:PORT"]),
    (("federated", "site", "--superlink", "127.0.0.1:9"), ["--insecure"]),
    (("federated", "server", "--certificate", "/nope.pem", "--key", "/nope.key", "--ca", "/nope-ca.pem"),
     ["/nope-ca.pem", "no such file"]),
])
def test_bad_input_is_one_clear_line(args, words):
    out = run(*args)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert all(w in out.stderr for w in words), out.stderr


def test_parameters_round_trip_exactly_and_refuse_another_model():
    from core.errors import DelineateError
    from federated import parameters
    from inference.registry import SHIPPED, Registry
    from inference.runner import load_model

    card = Registry([SHIPPED]).get("us-lesion-2d")
    a, b = load_model(card, torch.device("cpu")), load_model(card, torch.device("cpu"))
    arrays = parameters.to_arrays(a)
    assert all(x.dtype == np.float32 for x in arrays) and [x.shape for x in arrays] == parameters.shapes(a)
    for p in b.parameters():
        torch.nn.init.zeros_(p)
    parameters.load_arrays(b, arrays)
    assert all(np.array_equal(x, y) for x, y in zip(arrays, parameters.to_arrays(b)))
    with pytest.raises(DelineateError, match="shape"):
        parameters.load_arrays(b, [x[..., :1] if x.ndim else x for x in arrays])
    with pytest.raises(DelineateError, match="arrays"):
        parameters.load_arrays(b, arrays[:-1])


def test_federated_versions_do_not_collide_with_local_retraining():
    from federated.versions import next_version
    from inference.registry import SHIPPED, Registry

    base = Registry([SHIPPED]).get("us-lesion-2d")
    assert next_version(base, ["1.0.0"]) == "1.1.0-fed"
    assert next_version(base, ["1.0.0", "1.1.0", "1.2.0-fed"]) == "1.3.0-fed"


def test_retrained_versions_are_numbered_alike_everywhere():
    """One numbering for a site's retraining (store, interactive network) and the federated one."""
    from inference.registry import next_minor_version

    assert next_minor_version("1.1.0", []) == "1.2.0"
    assert next_minor_version("2.0.0", {"2.1.0", "2.2.0"}) == "2.3.0"
    assert next_minor_version("1.1.0-fed", ["1.2.0-fed"]) == "1.2.0"  # matched exactly: a site's own 1.2.0 is free
    assert next_minor_version("v3", []) == "0.1.0"
