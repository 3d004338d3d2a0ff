"""What an image's intensities say about its modality where the file does not say it (NIfTI has no
modality field; NRRD and MetaImage usually carry none)."""
from __future__ import annotations

import numpy as np

SAMPLE = 500_000  # voxels looked at, evenly strided


def looks_like_ct(array) -> bool:
    """Hounsfield units: values down to about -1000 (air, or the scanner's padding below it), at least
    2 % of voxels in the air band (-1100..-900) and at least 10 % in soft tissue (-150..150). MR
    magnitude images are not negative, z-scored ones stay within a few units of zero, and phase maps
    (-4096..4095, flat) put about 4 % in the soft-tissue band."""
    a = np.asarray(array).reshape(-1)
    s = a[:: max(1, a.size // SAMPLE)].astype(np.float32)
    s = s[np.isfinite(s)]
    if s.size == 0 or s.min() > -900:
        return False
    air = np.count_nonzero((s >= -1100) & (s <= -900)) / s.size
    tissue = np.count_nonzero((s >= -150) & (s <= 150)) / s.size
    return air >= 0.02 and tissue >= 0.10


def modality_of(data, default: str) -> tuple[str, list[str]]:
    """For a file that does not say its modality: CT when its values look like Hounsfield units (a CT
    in NIfTI would otherwise get the MR model), else ``default``; and the warning that says so."""
    if looks_like_ct(data):
        return "CT", ["the file does not say its modality: taken as CT, as its values look like Hounsfield units"]
    return default, []
