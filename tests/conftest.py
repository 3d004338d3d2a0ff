import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# tests never write into the user's data folder (store, recovery file, imported models)
import os  # noqa: E402
import tempfile  # noqa: E402

_SANDBOX = Path(tempfile.mkdtemp(prefix="delineate-tests-"))
for _var, _sub in (("DELINEATE_STORE", "store"), ("DELINEATE_RECOVERY", "recovery/case.npz"),
                   ("DELINEATE_MODELS", "models"), ("DELINEATE_LOG_DIR", "logs"),
                   ("DELINEATE_PACS_NODES", "pacs.json"), ("DELINEATE_PACS_CACHE", "pacs-cache")):
    os.environ.setdefault(_var, str(_SANDBOX / _sub))

from core.labels import Code, Label, LabelMap, LabelTable  # noqa: E402
# one PostgreSQL for the whole run (tests.pg_server), and the store location on each backend
from tests.pg_server import pg_server, store_root  # noqa: E402,F401
from core.volume import Volume, WindowPreset  # noqa: E402


def rotation(ax, ay, az) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.fixture
def oblique_ct() -> Volume:
    """Oblique, anisotropic CT-like volume; origin exactly representable in float32 (NIfTI)."""
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1500, size=(7, 20, 24)).astype(np.int16)
    return Volume.from_array(arr, spacing=(0.75, 0.5, 2.5), origin=(-100.25, 37.5, 12.125),
                             direction=rotation(0.2, -0.1, 0.35), modality="CT",
                             window_presets=[WindowPreset("abdomen", 40, 400)])


@pytest.fixture
def labels_on(oblique_ct):
    arr = np.zeros(oblique_ct.geometry.shape_zyx, np.uint8)
    arr[2:5, 4:10, 5:12] = 1
    arr[1:3, 12:18, 14:20] = 3
    table = LabelTable((
        Label(1, "Liver", (220, 120, 80), Code("SCT", "123037004", "Anatomical Structure"),
              Code("SCT", "10200004", "Liver")),
        Label(3, "Tumour", (250, 250, 20)),
    ))
    return LabelMap(arr, oblique_ct.geometry, table)


@pytest.fixture
def oblique_mr():
    rng = np.random.default_rng(0)
    arr = rng.normal(100, 20, size=(9, 22, 26)).astype(np.float32)
    arr[3:6, 5:15, 5:20] += 200
    return Volume.from_array(arr, spacing=(1.1, 0.9, 3.0), origin=(-20.5, 13.25, 40.0),
                             direction=rotation(0.25, -0.15, 0.4), modality="MR")


# Tests whose outcome depends on model numerics: `make test` runs them a second time with
# DELINEATE_CPU_BF16=0, the fp32 path that CPUs without bf16 units (AMD, older Intel, Apple) take.
PRECISION_SENSITIVE = {"test_inference.py", "test_xai.py", "test_xai_faithfulness.py", "test_architectures.py", "test_importers.py",
                        "test_us_scale.py"}


_FINISHED: dict = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    _FINISHED["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without running C++ static destructors. Once (CI, 2026-11-27, after 1017 tests had
    passed and been reported) SimpleITK's exit handler spun for over ten minutes walking a std::map,
    which would time CI out; a clean run had never shown it and it did not come back in isolation.
    By now every fixture is torn down (PostgreSQL stopped) and pytest has written its report.
    DELINEATE_TEST_NORMAL_EXIT=1 exits normally (to look for the cause)."""
    if "status" in _FINISHED and os.environ.get("DELINEATE_TEST_NORMAL_EXIT") != "1":
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_FINISHED["status"])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in PRECISION_SENSITIVE:
            item.add_marker(pytest.mark.precision)


@pytest.fixture
def fp32(monkeypatch):
    """Pin what a threshold on a trained model depends on: fp32 (whatever the CPU has), deterministic
    algorithms, one thread (reductions are summed in one order)."""
    import torch

    from inference import device

    monkeypatch.setattr(device, "_FAST_BF16", False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)
