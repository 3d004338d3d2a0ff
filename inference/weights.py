"""Weights without unpickling code: safetensors, or torch.load(weights_only=True). A checkpoint
that needs arbitrary Python objects is refused, never executed."""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from core.errors import DelineateError


class UnsafeModelError(DelineateError):
    """A model refused because importing or running it would run code it carries, or write outside
    the model registry; ``main.py import-model`` exits with ``exit_code``."""

    exit_code = 3

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line


class UnsafeWeightsError(UnsafeModelError):
    pass


#: what a TorchScript archive's pickles may name: its own compiled classes (``__torch__.*``, which
#: the TorchScript unpickler resolves to compiled types, never to Python) and the tensor plumbing
_TORCHSCRIPT_GLOBALS = {
    "torch._utils": {"_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter", "_rebuild_qtensor",
                     "_rebuild_sparse_tensor"},
    "torch.jit._pickle": {"restore_type_tag", "build_intlist", "build_floatlist", "build_boollist",
                          "build_tensorlist", "build_doublelist", "build_complexlist"},
    "collections": {"OrderedDict"},
    "torch._tensor": {"_rebuild_from_type_v2"},  # its callable is itself a global, checked like the others
}


def _allowed_torchscript_global(module: str, name: str) -> bool:
    if module == "__torch__" or module.startswith("__torch__."):
        return True
    if module == "torch":  # storages, and dtype / qscheme / layout / memory-format constants
        value = getattr(torch, name, None)
        return name.endswith("Storage") or name in ("device", "Size") or isinstance(
            value, (torch.dtype, torch.qscheme, torch.layout, torch.memory_format))
    return name in _TORCHSCRIPT_GLOBALS.get(module, ())


def pickle_globals(data: bytes) -> list[str]:
    """Every global a pickle stream names, read with pickletools (nothing is unpickled). A global
    whose name is computed on the stack is reported as "?" so that it is refused, never guessed."""
    import pickletools

    found, strings, memo = [], [], {}
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                found.append(".".join(strings[-2:]) if len(strings) >= 2 else "?")
                strings = strings[:-2]
            elif op.name in ("INST", "OBJ"):
                found.append(str(arg).replace(" ", ".") if arg else "?")
            elif isinstance(arg, str) and "UNICODE" in op.name or op.name in ("STRING", "BINSTRING",
                                                                              "SHORT_BINSTRING"):
                strings.append(str(arg))
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT") and strings:
                memo[arg] = strings[-1]
            elif op.name == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                if arg in memo:
                    strings.append(memo[arg])
    except Exception as exc:  # noqa: BLE001 - a stream pickletools cannot follow is not read further
        found.append(f"? (unreadable pickle: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    return found


def _pickles(path: Path) -> list[tuple[str, bytes]]:
    """The pickle streams a model file holds: a zip's ``*.pkl`` records, or (a legacy torch.save
    file, a bare pickle) the file's own leading streams."""
    import io
    import pickletools
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [(n.split("/", 1)[-1], z.read(n)) for n in z.namelist() if n.endswith((".pkl", ".debug_pkl"))]
    data = Path(path).read_bytes()
    if data[:1] != b"\x80":  # every pickle torch writes starts with PROTO
        return []
    out, f = [], io.BytesIO(data)
    for _ in range(5):  # legacy torch.save: magic, protocol, sys info, the object, storage keys
        start = f.tell()
        try:
            for _op in pickletools.genops(f):
                pass
        except Exception:  # noqa: BLE001 - scanned below as far as it goes
            out.append((path.name, data[start:]))
            break
        out.append((path.name, data[start:f.tell()]))
        if f.tell() >= len(data) or data[f.tell():f.tell() + 1] != b"\x80":
            break
    return out


def refuse_pickle_payloads(path: Path) -> bool:
    """Raise UnsafeWeightsError when any pickle in ``path`` names a global beyond compiled
    TorchScript classes and tensor plumbing (os.system, builtins.eval, subprocess.Popen, ...).
    Returns whether the file holds pickles at all. Nothing is unpickled."""
    path = Path(path)
    streams = _pickles(path)
    for name, data in streams:
        bad = sorted({g for g in pickle_globals(data) if not _allowed_torchscript_global(*g.rpartition(".")[::2])})
        if bad:
            raise UnsafeWeightsError(f"{path}: refused: {name} is a pickle payload naming {', '.join(bad[:3])} "
                                     "(loading it would run code)")
    return bool(streams)


def check_torchscript_archive(path: Path) -> None:
    """A TorchScript file is a zip whose pickles (data.pkl, constants.pkl, ...) name only its own
    compiled classes and tensor plumbing; anything else is a payload, refused before torch reads it."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise DelineateError(f"{path}: no such file")
    refuse_pickle_payloads(path)
    if not zipfile.is_zipfile(path):
        raise DelineateError(f"{path}: not a TorchScript file (not a zip archive)")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if not any(n.endswith("/constants.pkl") for n in names) or not any("/code/" in n for n in names):
        raise DelineateError(f"{path}: not a TorchScript file (a checkpoint without code?); save the model with "
                             "torch.jit.save, or better export it to ONNX")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected_sha256: str = "") -> Path:
    """The weights file exists and, when the card gives one, matches its checksum."""
    path = Path(path)
    if not path.is_file():
        raise DelineateError(f"{path}: weights file not found")
    if expected_sha256 and sha256(path) != expected_sha256:
        raise DelineateError(f"{path}: weights do not match the card's sha256 (changed or corrupted)")
    return path


def unpickling_detail(exc: BaseException) -> str:
    """The line of a weights-only refusal that names the offending global."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    named = [ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln or "unsupported" in ln]
    return (named or lines or [type(exc).__name__])[0][:300]


def load_state(path: Path, expected_sha256: str = "") -> dict:
    path = verify(path, expected_sha256)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - the library raises several kinds
            raise DelineateError(f"{path}: not a valid safetensors file ({exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeWeightsError(
            f"{path}: refused: the checkpoint contains Python objects that would run code when "
            f"loaded (pickle payload), not only tensors. Convert it to safetensors with trusted "
            f"tools first. Detail: {unpickling_detail(exc)}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise DelineateError(f"{path}: cannot read checkpoint ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DelineateError(f"{path}: expected a state dict of tensors")
    return state


def save_weights(module: torch.nn.Module, path: Path) -> str:
    """Write a module's weights as safetensors, atomically (tensors shared between submodules,
    as DynUNet's are, are stored once); returns the sha256 for the card."""
    from safetensors.torch import save_model

    from formats.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        save_model(module, str(tmp))
    return sha256(path)


def load_into(module: torch.nn.Module, path: Path, expected_sha256: str = "") -> None:
    """Fill ``module`` from safetensors or a weights-only checkpoint; every tensor must fit."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_model

        verify(path, expected_sha256)
        try:
            missing, unexpected = load_model(module, str(path), strict=False)
        except Exception as exc:  # noqa: BLE001 - shape mismatches, corrupt headers
            raise DelineateError(f"{path}: weights do not fit the network ({str(exc).splitlines()[0]})") from None
    else:
        missing, unexpected = module.load_state_dict(load_state(path, expected_sha256), strict=False)
    if missing or unexpected:
        raise DelineateError(f"{path}: weights do not fit the network (missing {list(missing)[:3]}, "
                             f"unexpected {list(unexpected)[:3]})")
