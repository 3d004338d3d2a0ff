"""Images a model was not made for, drawn by code that shares nothing with the training generators:
CT bodies, MR heads at coarse slice spacing, colour photographs, CT labelled as MR."""
import numpy as np

from core.volume import Volume


def ct_body(rng, spacing=(1.5, 1.5, 3.0)) -> Volume:
    """A torso slab in HU: air, fat rim, soft tissue, a spine, two lungs."""
    nz, ny, nx = int(rng.integers(20, 40)), int(rng.integers(90, 140)), int(rng.integers(110, 160))
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float32)
    a, b = nx * rng.uniform(0.38, 0.46), ny * rng.uniform(0.3, 0.42)
    body = ((x - nx / 2) / a) ** 2 + ((y - ny / 2) / b) ** 2
    hu = np.full((nz, ny, nx), -1000.0, np.float32)
    hu[body < 1] = -90.0
    hu[body < 0.8] = 45.0
    for side in (-1, 1):
        hu[((x - nx / 2 - side * a * 0.45) / (a * 0.3)) ** 2 + ((y - ny / 2) / (b * 0.6)) ** 2 < 1] = -850.0
    hu[((x - nx / 2) / 6) ** 2 + ((y - ny / 2 - b * 0.7) / 6) ** 2 < 1] = 650.0
    hu += rng.normal(0, 12, hu.shape).astype(np.float32)
    return Volume.from_array(hu, spacing=spacing, modality="CT")


def mr_head(rng, spacing=(1.0, 1.0, 1.0)) -> Volume:
    """A head: skull shell, CSF, grey rim and white core, T1-like, with a bias field."""
    n = int(rng.integers(56, 72))
    z, y, x = (np.mgrid[0:n, 0:n, 0:n].astype(np.float32) - n / 2) / (n / 2)
    r = np.sqrt(x ** 2 + (y * 1.1) ** 2 + (z * 1.2) ** 2)
    t1 = np.zeros_like(r)
    t1[r < 0.95] = 60.0  # scalp
    t1[r < 0.88] = 15.0  # skull
    t1[r < 0.82] = 35.0  # CSF
    t1[r < 0.78] = 85.0  # grey matter
    t1[r < 0.6] = 120.0  # white matter
    t1 *= 1 + 0.1 * x
    t1 += rng.normal(0, 3, t1.shape).astype(np.float32)
    return Volume.from_array(t1.astype(np.float32), spacing=spacing, modality="MR")


def photo(rng) -> Volume:
    """A colour photograph: smooth coloured regions and texture, 8-bit RGB."""
    h, w = int(rng.integers(200, 400)), int(rng.integers(200, 400))
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rgb = np.stack([np.sin(6 * xx + rng.uniform(0, 6)), np.cos(5 * yy + rng.uniform(0, 6)),
                    np.sin(4 * (xx + yy) + rng.uniform(0, 6))], -1)
    rgb = (rgb + 1) * 110 + rng.normal(0, 8, rgb.shape)
    return Volume.from_array(np.clip(rgb, 0, 255).astype(np.uint8)[None], spacing=(0.2, 0.2, 1.0), modality="OT")


def out_of_envelope(rng):
    """(description, volume, model id) cases outside the shipped models' envelopes, several per kind."""
    cases = []
    for _ in range(5):
        cases.append(("CT to the brain model", ct_body(rng), "brain-tissue"))
        cases.append(("MR to the CT model", mr_head(rng), "ct-torso-phantom"))
        cases.append(("colour photograph to the ultrasound model", photo(rng), "us-lesion-2d"))
        cases.append(("10 mm slices to the 2 mm brain model", mr_head(rng, (1.0, 1.0, 10.0)), "brain-tissue"))
        ct = ct_body(rng)  # the modality tag lies: only the intensities can tell
        cases.append(("CT labelled MR to the brain model",
                      Volume.from_array(ct.array, spacing=(1.5, 1.5, 3.0), modality="MR"), "brain-tissue"))
    return cases
