"""MONAI modules without MONAI's eager start-up: ``import monai`` imports every submodule (networks,
transforms, data, apps and their optional dependencies: 5-12 s on a 2-core CPU), where building a
U-Net and sliding a window over an image need a few dozen modules.

    light("monai.networks.nets.unet")  # that module, and what it imports
    light("monai.networks.nets").UNet  # the same: the package re-exports it from .unet

A MONAI package imported this way is created without running its ``__init__`` (a *pending*
package). Asked for a name it lacks, it imports the submodule its ``__init__`` takes that name
from (read from the source, not run), or the submodule of that name; anything else runs its
``__init__`` then. So ``from monai.networks.nets import SegResNet`` or ``monai.transforms.Compose``
later in the same process work as after a plain ``import monai``, paying only for what they use.
The root package runs its ``__init__`` (version, warning filters) without importing every submodule."""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types

_LOCK = threading.Lock()
_ACTIVE = 0  # light imports under way: the finder makes pending packages only then


def light(name: str) -> types.ModuleType:
    """The MONAI module ``name``, imported without running the ``__init__`` of MONAI packages not yet
    imported (they complete themselves when asked for a name they lack)."""
    if name in sys.modules:
        return importlib.import_module(name)  # waits while another thread is still importing it
    with _light_mode():
        return importlib.import_module(name)


@contextlib.contextmanager
def _light_mode():
    global _ACTIVE
    with _LOCK:
        _ACTIVE += 1
        if _ACTIVE == 1:
            sys.meta_path.insert(0, _FINDER)
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0:
                sys.meta_path.remove(_FINDER)


class _PendingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not _ACTIVE or not (fullname == "monai" or fullname.startswith("monai.")):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.submodule_search_locations is None or spec.loader is None:
            return None  # a plain module: imported as usual
        spec.loader = _PendingLoader(spec.loader)
        return spec


class _PendingLoader(importlib.abc.Loader):
    """Creates the package module and leaves its ``__init__`` for later."""

    def __init__(self, real) -> None:
        self.real = real

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.__spec__.loader = module.__loader__ = self.real
        module.__dict__["__getattr__"] = _pending_getattr(module)


def _pending_getattr(module: types.ModuleType):
    root = module.__name__ == "monai"
    exports = {} if root else _reexports(module)
    state = {"done": False, "lock": threading.RLock()}

    def __getattr__(attr: str):
        dunder = attr.startswith("__") and attr.endswith("__")
        with _light_mode():
            if not dunder and attr in exports:  # re-exported by __init__: from that submodule only
                where, name = exports[attr]
                value = getattr(importlib.import_module(where), name)
                setattr(module, attr, value)
                return value
            if not dunder:
                sub = f"{module.__name__}.{attr}"
                try:  # a submodule: just that one
                    return importlib.import_module(sub)
                except ModuleNotFoundError as exc:
                    if exc.name != sub:
                        raise
            if dunder and not root and attr != "__all__":
                raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}")
            with state["lock"]:
                if not state["done"]:
                    state["done"] = True
                    if root:
                        _init_root(module)
                    else:
                        del module.__dict__["__getattr__"]
                        module.__spec__.loader.exec_module(module)  # its own __init__, as a plain import runs it
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}") from None

    return __getattr__


def _reexports(package: types.ModuleType) -> dict:
    """name -> (submodule, its name there) for the package's own top-level ``from .x import name``
    lines, read from its ``__init__`` without running it (MONAI's modules import names from their
    package, e.g. ``from monai.networks.blocks import ADN``, which running the package's ``__init__``
    from there would make circular)."""
    import ast

    out = {}
    try:
        with open(package.__spec__.origin, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, TypeError, ValueError):
        return out
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.level == 1:
            where = f"{package.__name__}.{node.module}"
        elif node.level == 0 and node.module.startswith(package.__name__ + "."):
            where = node.module
        else:
            continue
        for alias in node.names:
            if alias.name != "*":
                out[alias.asname or alias.name] = (where, alias.name)
    return out


def _init_root(monai: types.ModuleType) -> None:
    """``monai/__init__`` (version, warning filters, the TF32 check) without its import of every
    submodule (``load_submodules``)."""
    module = importlib.import_module("monai.utils.module")
    eager = module.load_submodules
    module.load_submodules = lambda *a, **k: ([], [])
    try:
        monai.__spec__.loader.exec_module(monai)
    finally:
        module.load_submodules = eager


_FINDER = _PendingFinder()
