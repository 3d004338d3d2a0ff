"""MONAI bundles read as data, never evaluated: ``network_def`` and the few inference settings we use
(preprocessing spacing/intensity/orientation, the inferer's roi) must be literals -- numbers,
strings, booleans, null, lists and dicts of those, or ``@`` references to such values. The network
is built only from an allow-list of ``monai.networks.nets`` classes and our own architectures.
Anything MONAI's ConfigParser would evaluate (``$`` expressions, ``%`` macros, ``_requires_``,
``_disabled_`` expressions, ``_mode_``, nested ``_target_`` components) is refused, naming the key.
MONAI's ConfigParser is never called on a bundle: its resolution runs Python.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from core.errors import DelineateError
from inference.weights import UnsafeModelError

#: monai.networks.nets classes a bundle's network_def may name (plain segmentation networks whose
#: constructors take only numbers, strings and lists; nothing that downloads or imports by name)
MONAI_NETS = ("UNet", "BasicUNet", "BasicUNetPlusPlus", "AttentionUnet", "SegResNet", "SegResNetDS", "DynUNet",
              "UNETR", "SwinUNETR", "VNet", "HighResNet")
#: our own architectures (inference/architectures.py, inference/networks.py)
OWN_NETS = {"ResUNetPP": "inference.architectures", "FCN": "inference.architectures",
            "SegNet": "inference.architectures", "TransUNet": "inference.architectures",
            "DeepLab": "inference.networks"}
MAX_PARAMETERS = 2_000_000_000  # a network_def asking for more is refused before memory is touched
_PLAIN = (int, float, bool, type(None))


def _refuse(where: str, problem: str):
    raise UnsafeModelError(f"{where}: refused: {problem}")


def _lookup(config: dict, ref: str, where: str):
    node: Any = config
    for part in ref.replace("::", "#").split("#"):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DelineateError(f"{where}: the reference '@{ref}' names nothing in the config")
    return node


MAX_VALUES = 100_000  # a network's arguments are a few dozen values; references can multiply them


def literal(value, config: dict, where: str, depth: int = 0, budget: Optional[list] = None):
    """``value`` as plain data, following plain ``@`` references; refuses whatever would be evaluated,
    and a value whose references expand past MAX_VALUES (ten lists of ten references eight levels
    deep are a 1 KB file that expands to 10^9 values)."""
    budget = [MAX_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        _refuse(where, f"references expand to more than {MAX_VALUES:,} values")
    if depth > 16:
        _refuse(where, "references nest too deeply (a cycle?)")
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, str):
        if value.startswith("$"):
            _refuse(where, f"'$' expression {value[:60]!r} (it would run Python)")
        if value.startswith("%"):
            _refuse(where, f"'%' macro {value[:60]!r} (it would read another file)")
        if value.startswith("@"):
            target = _lookup(config, value[1:], where)
            if isinstance(target, dict) and "_target_" in target:
                _refuse(where, f"'{value}' refers to a component, not a plain value")
            return literal(target, config, f"{where} -> {value}", depth + 1, budget)
        return value
    if isinstance(value, list):
        return [literal(v, config, f"{where}[{i}]", depth, budget) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str) or key[:1] in ("$", "@", "%"):
                _refuse(where, f"key {str(key)[:60]!r} would be evaluated")
            if key == "_desc_":  # documentation only
                continue
            if key.startswith("_") and key.endswith("_"):
                _refuse(f"{where}.{key}", f"'{key}' would be evaluated by MONAI's config parser "
                                          "(components and expressions are not read)")
            out[key] = literal(v, config, f"{where}.{key}", depth, budget)
        return out
    _refuse(where, f"a {type(value).__name__} is not plain data")


def deref(value, config: dict, where: str):
    """Follow plain ``@`` references structurally (nothing is evaluated); '$' and '%' are refused."""
    for _ in range(16):
        if not isinstance(value, str):
            return value
        if not value.startswith("@"):
            return literal(value, config, where)
        value = _lookup(config, value[1:], where)
    _refuse(where, "references nest too deeply (a cycle?)")


def network_class(target, where: str):
    """The class a ``_target_`` names, from the allow-list only."""
    import importlib

    if not isinstance(target, str):
        _refuse(f"{where}._target_", "must be a class name")
    name = target.rsplit(".", 1)[-1]
    if name in OWN_NETS and target in (name, f"{OWN_NETS[name]}.{name}"):
        return getattr(importlib.import_module(OWN_NETS[name]), name)
    if name in MONAI_NETS:
        from inference.monai_light import light

        nets = light("monai.networks.nets")

        cls = getattr(nets, name)
        if target in (name, f"monai.networks.nets.{name}", f"{cls.__module__}.{name}"):
            return cls
    _refuse(f"{where}._target_", f"{target[:80]!r} is not an allowed network (allowed: "
                                 f"{', '.join(MONAI_NETS + tuple(OWN_NETS))})")


def build_network(net_def, config: Optional[dict] = None, where: str = "network_def"):
    """(network, plain network_def): the network an allow-listed ``_target_`` names, built with literal
    arguments only. Also used for imported cards, whose stored network_def is checked the same way."""
    import torch

    config = config if config is not None else {"network_def": net_def}
    net_def = deref(net_def, config, where)
    if not isinstance(net_def, dict) or "_target_" not in net_def:
        _refuse(where, "must be a component with a _target_")
    cls = network_class(literal(net_def["_target_"], config, f"{where}._target_"), where)
    kwargs = literal({k: v for k, v in net_def.items() if k != "_target_"}, config, where)
    plain = {"_target_": net_def["_target_"], **kwargs}
    try:
        with torch.device("meta"):  # count first: a crafted def must not exhaust memory
            n = sum(p.numel() for p in cls(**kwargs).parameters())
    except Exception:  # noqa: BLE001 - e.g. SwinUNETR reads a tensor's value while it is built
        n = _count_in_child(net_def["_target_"], kwargs, where)
    if n > MAX_PARAMETERS:
        _refuse(where, f"{cls.__name__} would have {n:,} parameters")
    try:
        return cls(**kwargs), plain
    except Exception as exc:  # noqa: BLE001 - a constructor rejecting its arguments raises anything
        raise DelineateError(f"{where}: {cls.__name__} rejected its arguments ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _count_parameters(target: str, kwargs: dict, progress=None) -> int:
    try:
        net = network_class(target, "network_def")(**kwargs)
    except MemoryError:
        raise
    except RuntimeError as exc:
        if "alloc" in str(exc):  # torch's own out-of-memory
            raise MemoryError(str(exc)) from None
        return 0
    except Exception:  # noqa: BLE001 - rejected arguments: the real build says which
        return 0
    return sum(p.numel() for p in net.parameters())


def _count_in_child(target: str, kwargs: dict, where: str) -> int:
    """Build in a child under the decode memory limit and count there: a network too big to build
    kills the child, not the app (the meta device could not count it). 0 when the arguments are
    rejected, so the real build reports them."""
    from core.errors import FormatError
    from formats import sandbox

    try:
        return sandbox.call(where, _count_parameters, target, kwargs, preload=("torch", "monai.networks.nets"))
    except FormatError as exc:
        _refuse(where, f"{target} is too big to build within this machine's memory limit")
    except DelineateError:
        return 0


def read_config(path: Path) -> dict:
    """A bundle config file as data: JSON, or YAML through safe_load (no Python tags)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DelineateError(f"{path}: cannot read ({exc})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DelineateError(f"{path}: not valid JSON ({exc})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise DelineateError(f"{path}: reading YAML bundle configs needs PyYAML; convert it to JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.constructor.ConstructorError as exc:
            raise UnsafeModelError(f"{path}: refused: YAML tag that would build Python objects "
                                   f"({str(exc).splitlines()[0]})") from None
        except yaml.YAMLError as exc:
            raise DelineateError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DelineateError(f"{path}: expected a mapping at the top")
    return data


def find_config(bundle: Path, stem: str) -> Optional[Path]:
    for suffix in (".json", ".yaml", ".yml"):
        path = bundle / "configs" / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def transforms(config: dict, where: str) -> list[dict]:
    """preprocessing#transforms as plain dicts (each with a plain ``_target_``); disabled ones dropped."""
    pre = deref(config.get("preprocessing"), config, f"{where}: preprocessing")
    if pre is None:
        return []
    items = deref(pre.get("transforms", []) if isinstance(pre, dict) else pre, config,
                  f"{where}: preprocessing.transforms")
    if not isinstance(items, list):
        _refuse(f"{where}: preprocessing.transforms", "must be a list")
    out = []
    for i, t in enumerate(items):
        at = f"{where}: preprocessing.transforms[{i}]"
        t = deref(t, config, at)
        if not isinstance(t, dict):
            _refuse(at, "must be a component")
        target = t.get("_target_")
        if not isinstance(target, str) or target[:1] in ("$", "@", "%"):
            _refuse(f"{at}._target_", "must be a plain class name")
        disabled = t.get("_disabled_", False)
        if not isinstance(disabled, bool):
            _refuse(f"{at}._disabled_", "must be true or false")
        if not disabled:
            out.append({"_target_": target, "_where_": at,
                        **{k: v for k, v in t.items() if not (k.startswith("_") and k.endswith("_"))}})
    return out


def transform(items: list[dict], name: str, config: dict, keys: tuple[str, ...]) -> Optional[dict]:
    """The first transform named ``name`` (or its dictionary form), with the arguments in ``keys`` as
    literals (the others are never read, so never evaluated)."""
    for t in items:
        if t["_target_"].rsplit(".", 1)[-1] in (name, name + "d"):
            return {k: literal(t[k], config, f"{t['_where_']}.{k}") for k in keys if k in t}
    return None
