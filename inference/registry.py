"""The model registry: cards under ``resources/models`` (shipped) and the user's model folder
(imported and retrained models), ``<root>/<id>/<version>/card.json``."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from core.errors import DelineateError
from inference.card import CardError, ModelCard

SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "models"


def user_models_dir() -> Path:
    env = os.environ.get("DELINEATE_MODELS")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Delineate", "Delineate")) / "models"


def next_minor_version(version: str, taken) -> str:
    """``major.(minor + 1).0`` of ``version`` (a suffix such as "-fed" ignored), past every version in
    ``taken`` (matched exactly): what a retrained model is numbered."""
    major, minor = ([int(p) if p.isdigit() else 0 for p in version.split("-")[0].split(".")[:2]] + [0, 0])[:2]
    taken = set(taken)
    minor += 1
    while f"{major}.{minor}.0" in taken:
        minor += 1
    return f"{major}.{minor}.0"


def _version_key(v: str):
    return tuple(int(p) if p.isdigit() else p for p in v.replace("-", ".").split("."))


class Registry:
    def __init__(self, roots: Optional[list[Path]] = None) -> None:
        self.roots = [Path(r) for r in (roots if roots is not None else [SHIPPED, user_models_dir()])]
        self.problems: list[str] = []  # cards that did not validate (shown, never silently used)

    def cards(self) -> list[ModelCard]:
        out, self.problems = [], []
        for root in self.roots:
            for path in sorted(root.glob("*/*/card.json")) if root.is_dir() else []:
                try:
                    out.append(ModelCard.load(path))
                except CardError as exc:
                    self.problems.append(str(exc))
        return out

    def versions(self, model_id: str) -> list[ModelCard]:
        return sorted((c for c in self.cards() if c.id == model_id), key=lambda c: _version_key(c.version))

    def get(self, model_id: str, version: Optional[str] = None) -> ModelCard:
        found = self.versions(model_id)
        if version is not None:
            found = [c for c in found if c.version == version]
        else:  # the latest promoted version; unpromoted ones only by explicit version
            found = [c for c in found if c.promoted] or found
        if not found:
            known = sorted({c.id for c in self.cards()})
            raise DelineateError(f"no model '{model_id}'{f' version {version}' if version else ''}; "
                                 f"models: {', '.join(known) or 'none'}")
        return found[-1]

    def default_for(self, modality: str, spatial_dims: int) -> ModelCard:
        """The shipped/latest model for this modality and dimensionality (2D images get 2D models)."""
        cards = [c for c in self.cards() if c.promoted]
        for pick in (lambda c: c.modality == modality and c.spatial_dims == spatial_dims,
                     lambda c: c.modality == modality,
                     lambda c: c.spatial_dims == spatial_dims):
            chosen = [c for c in cards if pick(c)]
            if chosen:
                return max(chosen, key=lambda c: (c.folder is not None and SHIPPED in c.folder.parents,
                                                  _version_key(c.version)))
        raise DelineateError(f"no model for {modality} {spatial_dims}D images; see `main.py models`")

    def new_folder(self, model_id: str, version: str) -> Path:
        folder = inside(user_models_dir(), safe_id(model_id), safe_version(version))
        if folder.exists():
            raise DelineateError(f"model {model_id} version {version} already exists at {folder}")
        folder.mkdir(parents=True)
        return folder


# -- names are data: ids and versions from model files never become paths as they are ------------------
_PATHLIKE = re.compile(r"[/\\\x00]|\.\.|^\.|^~|^[A-Za-z]:")


def _refuse_pathlike(text: str, what: str) -> None:
    from inference.weights import UnsafeModelError

    if _PATHLIKE.search(text) or text.strip() in ("", ".", ".."):
        raise UnsafeModelError(f"refused: the model's {what} {text!r} looks like a path, not a name")


def safe_id(name: str, what: str = "name") -> str:
    """A registry id from a model's name: lower case, [a-z0-9._-], no leading dot, no '..'. A name
    that looks like a path (separators, '..', a leading dot or drive) is refused, not repaired."""
    text = str(name).strip()
    _refuse_pathlike(text, what)
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.lower())[:100].strip("-.")
    if not out:
        from inference.weights import UnsafeModelError

        raise UnsafeModelError(f"refused: the model's {what} {text!r} has no usable characters for an id")
    return out


def safe_version(version: str) -> str:
    """A version is used as a folder name only when it is one: [0-9A-Za-z._+-], no '..', no leading dot."""
    text = str(version).strip()
    _refuse_pathlike(text, "version")
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,63}", text):
        from inference.weights import UnsafeModelError

        raise UnsafeModelError(f"refused: the model's version {text!r} is not a version (use e.g. 1.0.0)")
    return text


def inside(root: Path, *parts: str) -> Path:
    """root/parts..., resolved, and refused unless it stays inside root."""
    from inference.weights import UnsafeModelError

    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or base not in path.parents:
        raise UnsafeModelError(f"refused: {'/'.join(parts)!r} would be written outside the model folder {base}")
    return path


@contextlib.contextmanager
def staged(root: Path, model_id: str, version: str) -> Iterator[Path]:
    """A temporary folder inside the registry for an import's files, renamed to <root>/<id>/<version>
    only when the import succeeds; on any failure it is removed and the registry is as it was."""
    root = Path(root)
    final = inside(root, safe_id(model_id), safe_version(version))
    if final.exists():
        raise DelineateError(f"model {final.parent.name} version {final.name} already exists at {final}")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    import time

    for stale in root.glob(".importing-*"):  # left by an import the machine did not survive
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 86400:
                shutil.rmtree(stale)
    tmp = Path(tempfile.mkdtemp(prefix=".importing-", dir=root.resolve()))
    made_parent = False
    try:
        yield tmp
        made_parent = not final.parent.exists()
        final.parent.mkdir(exist_ok=True)
        os.rename(tmp, final)  # atomic; fails rather than merging into a folder that appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder, made in ((final.parent, made_parent), (root, made_root)):
            if made:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
