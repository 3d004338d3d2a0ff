"""app.actions.store_cases without Qt: listing and opening the store's cases (on a store written
by the previous release too)."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.actions.store_cases import list_cases, open_case
from core.errors import DelineateError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def root(tmp_path):
    shutil.copytree(FIXTURES / "store-v2", tmp_path / "store")
    return tmp_path / "store"


def test_list_and_open_cases(root):
    cases = list_cases(root)
    assert len(cases) == 2 and cases[0].updated >= cases[1].updated
    (approved,) = list_cases(root, state="approved")
    assert approved.state == "approved" and approved.id in {c.id for c in cases}
    steps = []
    image, ai, corrected = open_case(approved.id, root, progress=lambda f, m="": steps.append(f))
    assert steps[0] == 0.0 and steps[-1] == 1.0
    assert image.metadata["store_case"] == approved.id and image.array.shape == (4, 8, 8)
    assert corrected.geometry.same_grid(image.geometry) and ai.geometry.same_grid(image.geometry)
    assert np.count_nonzero(corrected.array == 2) == 4 and np.count_nonzero(ai.array == 2) == 0


def test_errors_are_clear_and_listing_creates_no_store(tmp_path, root):
    assert list_cases(tmp_path / "nothing-here") == [] and not (tmp_path / "nothing-here").exists()
    with pytest.raises(DelineateError, match="unknown review state 'done'"):
        list_cases(root, state="done")
    with pytest.raises(DelineateError, match="no case 0000 in the store"):
        open_case("0000", root)
