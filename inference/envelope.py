"""The out-of-distribution guard: what a model was made for (its card's envelope) against the case
in front of it, before and after a run.

Before: modality, 2D/3D, physical spacing (a model cannot see detail thinner slices would have shown)
and the image's intensity distribution after the card's normalisation, as quantiles compared with
the ranges seen on the model's in-range held-out cases. After: the run's case-level uncertainty (mean
normalised entropy of one pass over the image) against a threshold calibrated on the same held-out
cases. A card without a calibrated envelope is checked for modality, dimension and spacing
only, and the guard says so. Torch-free; the normalised image is computed by the caller."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from core.geometry import Geometry

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: a slice or pixel this many times thicker than the model's spacing loses detail it relies on
SPACING_FACTOR = 3.0
#: an intensity quantile may stray this fraction of the calibrated range beyond it (plus an absolute
#: slack in normalised units) before the guard speaks: held-out cases are a sample, not the envelope
QUANTILE_SLACK, QUANTILE_ABS = 0.5, 0.25
SAMPLE_VOXELS = 200_000
#: grey images stored as RGB (most ultrasound) carry some colour (Doppler, annotations): a picture
#: with more coloured pixels than this is not one
COLOURFUL = 0.2
#: CT stores air as about -1000 HU; no MR or ultrasound image has values this low (a z-scored MR
#: reaches -5), so a share of voxels at or below it says the modality tag is wrong
HU_AIR, HU_AIR_SHARE = -500.0, 0.05


@dataclass
class Envelope:
    modalities: list[str]
    spatial_dims: int
    spacing_max_mm: Optional[list[float]] = None  # (x, y, z); None: any
    quantiles: dict = field(default_factory=dict)  # "q0.5" -> [low, high] after normalisation
    uncertainty_max: Optional[float] = None  # case uncertainty of one pass, calibrated
    calibrated_on: str = ""  # what the ranges and the threshold were measured on

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Envelope":
        return cls(modalities=[str(m) for m in d["modalities"]], spatial_dims=int(d["spatial_dims"]),
                   spacing_max_mm=[float(v) for v in d["spacing_max_mm"]] if d.get("spacing_max_mm") else None,
                   quantiles={str(k): [float(v[0]), float(v[1])] for k, v in (d.get("quantiles") or {}).items()},
                   uncertainty_max=None if d.get("uncertainty_max") is None else float(d["uncertainty_max"]),
                   calibrated_on=str(d.get("calibrated_on", "")))


def envelope_of(card) -> Envelope:
    """The card's calibrated envelope, else what its fields say (modality, dimension, spacing)."""
    return Envelope.from_dict(card.envelope) if card.envelope else declared(card)


def declared(card) -> Envelope:
    return Envelope([card.modality], card.spatial_dims,
                    [s * SPACING_FACTOR for s in card.spacing] if card.spacing else None)


def sample_step(n_voxels: int) -> int:
    """The stride of the guard's strided samples of ``n_voxels`` values (at most SAMPLE_VOXELS of them)."""
    return max(1, n_voxels // SAMPLE_VOXELS)


def intensity_quantiles(normalised: np.ndarray) -> dict:
    """Quantiles of a normalised image (a strided sample of at most SAMPLE_VOXELS voxels)."""
    flat = np.asarray(normalised, np.float32).reshape(-1)
    step = sample_step(flat.size)
    values = np.quantile(flat[::step], QUANTILES)
    return {f"q{q:g}": float(v) for q, v in zip(QUANTILES, values)}


def colourful_fraction(rgb: np.ndarray) -> float:
    """Share of pixels whose channels differ by more than a tenth of the image's range."""
    a = np.asarray(rgb)[..., :3].reshape(-1, 3)
    a = a[::sample_step(a.shape[0])].astype(np.float32)
    spread = a.max(1) - a.min(1)
    return float((spread > 0.1 * max(float(a.max() - a.min()), 1e-6)).mean())


def check_image(volume, card, envelope: Envelope, quantiles: Optional[dict] = None) -> list[str]:
    """Why ``volume`` lies outside what ``card`` was made for (empty: inside)."""
    reasons = []
    modality = volume.modality or "OT"
    if modality not in envelope.modalities:
        reasons.append(f"the image is {modality}; {card.id} was made for {'/'.join(envelope.modalities)}")
    dims = 2 if volume.is_planar else 3  # a cine loop's frames are times, not slices
    if dims != envelope.spatial_dims:
        reasons.append(f"the image is {dims}D; {card.id} is a {envelope.spatial_dims}D model")
    if envelope.spacing_max_mm and dims == 3 and not volume.is_color:
        coarse = [(a, s, m) for a, s, m in zip("xyz", volume.geometry.spacing, envelope.spacing_max_mm) if s > m]
        for axis, s, m in coarse:
            reasons.append(f"{s:.2g} mm along {axis}: coarser than {card.id} can use (it works at "
                           f"{m / SPACING_FACTOR:.2g} mm; up to {m:.2g} mm is accepted)")
    if card.spacing and not getattr(volume, "spacing_known", True):
        reasons.append(f"the file gives no pixel size (read as 1 mm pixels); {card.id} works at "
                       f"{min(card.spacing[:2]):.2g} mm pixels, so it sees objects at the wrong scale")
    if volume.is_color and card.in_channels == 1 and (share := colourful_fraction(volume.array)) > COLOURFUL:
        reasons.append(f"a colour picture ({share:.0%} of its pixels are coloured); {card.id} reads grey images")
    if "CT" not in envelope.modalities and not volume.is_color:
        flat = volume.array.reshape(-1)
        air = float(np.mean(flat[::sample_step(flat.size)] <= HU_AIR))
        if air >= HU_AIR_SHARE:
            reasons.append(f"{air:.0%} of its voxels are at or below {HU_AIR:g}, as air is on CT (HU); "
                           f"{'/'.join(envelope.modalities)} images have no such values: is it CT?")
    if quantiles and envelope.quantiles:
        off = []
        for name, (lo, hi) in envelope.quantiles.items():
            v = quantiles.get(name)
            slack = QUANTILE_SLACK * (hi - lo) + QUANTILE_ABS
            if v is not None and not lo - slack <= v <= hi + slack:
                off.append(f"its {float(name[1:]) * 100:g}th percentile is {v:.2f} where it saw {lo:.2f} to {hi:.2f}")
        if off:
            reasons.append(f"the intensities do not look like the {'/'.join(envelope.modalities)} images it was "
                           f"trained on ({len(off)} of {len(envelope.quantiles)} intensity percentiles outside what "
                           f"it saw after normalisation; e.g. {off[0]})")
    return reasons


def run_uncertainty(probabilities: np.ndarray) -> float:
    """Mean normalised entropy of one pass over the whole image (0 = certain, 1 = uniform over the
    classes). Over the whole image rather than the labelled voxels: a small, confidently found object
    is all border, and would read as doubt; measured on the ultrasound model's held-out cases, the
    labelled-voxel mean spread 6x from median to maximum, the whole-image mean 3.6x."""
    p = np.asarray(probabilities)
    flat = p.reshape(p.shape[0], -1)
    return float(normalised_entropy(flat[:, ::sample_step(flat.shape[1])]).mean())


def normalised_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Per voxel of ``probabilities`` [classes, ...]: entropy over the classes / log(classes), in
    float32 (0 = certain, 1 = uniform; a single class is certain)."""
    q = np.clip(np.asarray(probabilities).astype(np.float32), 1e-7, 1.0)
    return -(q * np.log(q)).sum(0) / np.log(max(q.shape[0], 2))


#: voxels an uncertainty map keeps at most (every s-th voxel along each axis)
MAP_VOXELS = 2_000_000


def entropy_map(probabilities: np.ndarray, grid: Geometry, max_voxels: int = MAP_VOXELS) -> tuple:
    """(float32 normalised entropy, its grid) of ``probabilities`` [classes, z, y, x] on ``grid``, at
    every s-th voxel along each axis longer than one, s chosen so at most about ``max_voxels`` are
    left: small enough to keep with a run (the report's most uncertain region) where the
    probabilities themselves are not kept."""
    shape = probabilities.shape[1:]
    dims = max(1, sum(n > 1 for n in shape))
    step = max(1, int(np.ceil((np.prod(shape) / max_voxels) ** (1 / dims))))
    steps = tuple(step if n > 1 else 1 for n in shape)  # z, y, x
    values = normalised_entropy(probabilities[(slice(None),) + tuple(slice(None, None, k) for k in steps)])
    coarse = Geometry(tuple(values.shape[::-1]), np.asarray(grid.spacing) * steps[::-1], grid.origin, grid.direction)
    return values, coarse


def check_run(card, envelope: Envelope, uncertainty: float) -> list[str]:
    if envelope.uncertainty_max is not None and uncertainty > envelope.uncertainty_max:
        return [f"the model is unsure of this case (uncertainty {uncertainty:.3f}; on its held-out cases at "
                f"most {envelope.uncertainty_max:.3f})"]
    return []


def input_quantiles(volume, card) -> dict:
    """Quantiles of what the network sees: the image on its grid, normalised as its card says."""
    from inference.runner import model_grid, model_input

    return intensity_quantiles(model_input(volume, card, model_grid(volume, card))[0])


def run_and_measure(volume, card, progress=None, cancel=None, device: Optional[str] = None):
    """(the run of ``card`` on ``volume``, its input's intensity quantiles), read from the runner's
    own input rather than resampled and normalised a second time."""
    from core.progress import no_progress
    from inference.runner import segment

    seen = {}
    run = segment(volume, card, progress or no_progress, cancel, device,
                  on_input=lambda x: seen.update(quantiles=intensity_quantiles(x[0])))
    return run, seen["quantiles"]


def calibrate(card, measured, margin: float = 1.25) -> Envelope:
    """An envelope from in-range held-out cases: ``measured`` yields (run, input quantiles) per case
    (run_and_measure). Quantile ranges are the min-max seen; the uncertainty threshold the highest
    seen, times ``margin``."""
    qs, us = [], []
    for run, quantiles in measured:
        qs.append(quantiles)
        us.append(run_uncertainty(run.probabilities))
    base = declared(card)
    base.quantiles = {k: [min(q[k] for q in qs), max(q[k] for q in qs)] for k in qs[0]}
    base.uncertainty_max = float(max(us) * margin)
    base.calibrated_on = f"{len(qs)} in-range held-out cases of the training generator"
    return base
