"""The model registry: cards under ``resources/models`` (shipped) and the user's model folder
(imported and retrained models), ``<root>/<id>/<version>/card.json``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from core.errors import DelineateError
from inference.card import CardError, ModelCard

SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "models"


def user_models_dir() -> Path:
    env = os.environ.get("DELINEATE_MODELS")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Delineate", "Delineate")) / "models"


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
        folder = user_models_dir() / model_id / version
        if folder.exists():
            raise DelineateError(f"model {model_id} version {version} already exists at {folder}")
        folder.mkdir(parents=True)
        return folder
