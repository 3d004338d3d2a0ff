"""The out-of-distribution guard around a model run (inference.envelope): is this image one the
model was made for, and was the model sure of it? Its reasons go to the banner over the views, the
CLI's stderr, the report and the stored correction's provenance. A warning never stops the run: the
physician decides."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Guarded:
    run: object  # inference.runner.Segmentation
    warnings: list[str] = field(default_factory=list)
    uncertainty: float = 0.0  # the run's one-pass case uncertainty


def check_image(volume, card, quantiles: Optional[dict] = None) -> list[str]:
    """Reasons ``volume`` is outside ``card``'s envelope (empty: inside). ``quantiles``: of the
    network's input, when a run measured them (else computed here when the envelope has ranges)."""
    from inference.envelope import check_image as check, envelope_of, input_quantiles

    env = envelope_of(card)
    if quantiles is None and env.quantiles:
        quantiles = input_quantiles(volume, card)
    return check(volume, card, env, quantiles)


def check_run(volume, card, run, quantiles: Optional[dict] = None) -> Guarded:
    """The image checks plus the run's own uncertainty against the calibrated threshold."""
    from inference.envelope import check_run as check, envelope_of, run_uncertainty

    uncertainty = run_uncertainty(run.sample)  # the probabilities' strided sample it reads, without making them all
    return Guarded(run, check_image(volume, card, quantiles) + check(card, envelope_of(card), uncertainty), uncertainty)
