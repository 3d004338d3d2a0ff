"""A file that does not say its modality (NIfTI; NRRD and MetaImage without one): a CT in Hounsfield
units is read as CT, and says so, so it gets the CT model, not the MR one; MR-like data stays MR."""
import numpy as np
import pytest

from core.modality import looks_like_ct
from core.volume import Volume
from formats.io import read_image, write_image
from tests.ct_torso_phantom import torso


@pytest.fixture(scope="module")
def ct():
    return torso(np.random.default_rng(5), spacing=(4.0, 4.0, 8.0), size=(120, 120, 48))[0]


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_a_ct_without_its_modality_is_read_as_ct(ct, tmp_path, suffix):
    plain = Volume(ct.array, ct.geometry)  # no modality: as a file that does not store one
    write_image(plain, tmp_path / f"ct{suffix}")
    back = read_image(tmp_path / f"ct{suffix}")
    assert back.modality == "CT" and any("Hounsfield" in w for w in back.warnings)


def test_mr_like_data_is_not_taken_for_ct(tmp_path):
    from formats import samples

    mni = read_image(samples.path())
    assert mni.modality == "MR" and not mni.warnings
    rng = np.random.default_rng(0)
    body = np.zeros((20, 64, 64), np.float32)
    body[:, 16:48, 16:48] = 1
    cases = {"magnitude": 800 * body + rng.normal(0, 5, body.shape),
             "z-scored": (body - body.mean()) / body.std() + rng.normal(0, 0.1, body.shape),
             "phase": rng.uniform(-4096, 4095, body.shape)}
    for name, a in cases.items():
        assert not looks_like_ct(a), name
        write_image(Volume(a.astype(np.float32), Volume.from_array(a).geometry), tmp_path / f"{name}.nii.gz")
        assert read_image(tmp_path / f"{name}.nii.gz").modality == "MR", name
