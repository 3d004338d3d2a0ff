"""The out-of-distribution guard around a model run (inference.envelope): is this image one the
model was made for, and was the model sure of it? Its reasons go to the banner over the views, the
CLI's stderr, the report and the stored correction's provenance. A warning never stops the run: the
physician decides."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Guarded:
    run: object  # inference.runner.Segmentation
    warnings: list[str] = field(default_factory=list)
    uncertainty: float = 0.0  # the run's one-pass case uncertainty
    calibrated: bool = False  # whether the card's envelope was measured (else: declared fields only)


def check_image(volume, card) -> list[str]:
    """Reasons ``volume`` is outside ``card``'s envelope (empty: inside)."""
    from inference.envelope import check_image as check, envelope_of, intensity_quantiles

    env = envelope_of(card)
    quantiles = None
    if env.quantiles:
        from inference.runner import model_grid, model_input

        # what the network sees: its grid, its normalisation
        quantiles = intensity_quantiles(model_input(volume, card, model_grid(volume, card))[0])
    return check(volume, card, env, quantiles)


def check_run(volume, card, run) -> Guarded:
    """The image checks plus the run's own uncertainty against the calibrated threshold."""
    from inference.envelope import check_run as check, envelope_of, run_uncertainty

    env = envelope_of(card)
    uncertainty = run_uncertainty(run.probabilities, run.labels.array)
    return Guarded(run, check_image(volume, card) + check(card, env, uncertainty), uncertainty, bool(card.envelope))
