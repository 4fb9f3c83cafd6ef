"""Statistics for fault-injection campaigns.

**Confidence interval of the accuracy.** fpga-ft reports the accuracy under faults as
``correct / inferences`` over all repeats, and its confidence interval as the **Wilson
score interval on the misclassification count** ``errors = inferences - correct``
(:func:`wilson_interval`), turned into an accuracy interval ``1 - hi .. 1 - lo``. Wilson is
well behaved at counts near 0 or n (no zero-width interval at 0 errors, never outside
[0, 1]) and its coverage stays close to nominal for the campaign sizes used here.
Clopper-Pearson (:func:`clopper_pearson_interval`, exact, conservative) is available too.

In transient mode the inferences are independent trials (each draws fresh faults); with a
fixed test set they are Bernoulli trials with per-sample probabilities, whose count has a
variance no larger than the binomial one, so the binomial interval is conservative. In
accumulate mode consecutive inferences share accumulated weight faults and the interval
is an approximation (see ``docs/fault_model.md``). In the held modes (latched, stuck-at) the
devices are the independent draws: :func:`mean_interval` and :func:`quantile_interval` over
device accuracies, :func:`clopper_pearson_interval` on a count of devices.

**Sample size.** :func:`leveugle_sample_size` is the statistical fault-injection sample
size of Leveugle, Calvez, Maistri and Vanhauwaert, "Statistical fault injection: quantified
error and confidence", DATE 2009: ``n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))`` for a
population of N possible faults, margin of error e, cut-off t of the normal distribution
for the confidence level, and estimated proportion p (0.5 when unknown: the worst case).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from fpga_ft.core.errors import FpgaFtError

__all__ = [
    "z_value", "wilson_interval", "clopper_pearson_interval", "binomial_interval", "halfwidth",
    "accuracy_interval", "leveugle_sample_size", "binomial_count_interval", "METHODS",
    "quantile_interval", "mean_interval",
]

METHODS = ("wilson", "clopper-pearson")


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise FpgaFtError(f"confidence must be in (0, 1), got {confidence}")
    return confidence


def _check_counts(k: int, n: int) -> tuple[int, int]:
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise FpgaFtError(f"invalid binomial counts: {k} successes out of {n} trials")
    return k, n


def z_value(confidence: float = 0.95) -> float:
    """Two-sided standard-normal cut-off t for ``confidence`` (1.959964 for 0.95)."""
    confidence = _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n`` (``(0, 1)`` when n = 0)."""
    k, n = _check_counts(k, n)
    if n == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    spread = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low, high = max(0.0, centre - spread), min(1.0, centre + spread)
    if k == 0:
        low = 0.0
    if k == n:
        high = 1.0
    return low, high


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of ``k / n`` from the beta distribution."""
    from scipy.stats import beta

    k, n = _check_counts(k, n)
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - _check_confidence(confidence)
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2.0, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - alpha / 2.0, k + 1, n - k))
    return low, high


def binomial_interval(k: int, n: int, confidence: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Interval of the proportion ``k / n`` by ``method`` (``wilson`` or ``clopper-pearson``)."""
    method = method.lower().replace("_", "-")
    if method == "wilson":
        return wilson_interval(k, n, confidence)
    if method in ("clopper-pearson", "exact"):
        return clopper_pearson_interval(k, n, confidence)
    raise FpgaFtError(f"unknown interval method '{method}' (valid: {', '.join(METHODS)})")


def halfwidth(interval: tuple[float, float]) -> float:
    """Half the width of an interval (what early stopping compares to its target)."""
    return (interval[1] - interval[0]) / 2.0


def accuracy_interval(correct: int, total: int, confidence: float = 0.95,
                      method: str = "wilson") -> tuple[float, float, float]:
    """(accuracy, low, high): the interval is computed on the misclassification count
    ``total - correct`` and mirrored to accuracy (identical to computing it on ``correct``
    for Wilson and Clopper-Pearson, which are symmetric under k -> n - k)."""
    correct, total = _check_counts(correct, total)
    err_low, err_high = binomial_interval(total - correct, total, confidence, method)
    accuracy = correct / total if total else float("nan")
    return accuracy, 1.0 - err_high, 1.0 - err_low


def leveugle_sample_size(population: int, margin: float = 0.01, confidence: float = 0.95,
                         p: float = 0.5) -> int:
    """Faults to inject for margin of error ``margin`` at ``confidence`` (Leveugle et al.,
    DATE 2009): ``n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))``, rounded up.

    Args:
        population: N, the number of possible faults (e.g. exposed bits x inferences).
        margin: e, the margin of error (half-width) on the estimated proportion.
        confidence: confidence level; t is its two-sided normal cut-off.
        p: estimated proportion of faults that cause a failure (0.5: worst case).
    """
    population = int(population)
    if population < 1:
        raise FpgaFtError(f"population must be >= 1, got {population}")
    if not 0.0 < margin < 1.0:
        raise FpgaFtError(f"margin of error must be in (0, 1), got {margin}")
    if not 0.0 < p < 1.0:
        raise FpgaFtError(f"estimated proportion p must be in (0, 1), got {p}")
    t = z_value(confidence)
    n = population / (1.0 + margin * margin * (population - 1) / (t * t * p * (1.0 - p)))
    return min(population, int(math.ceil(n - 1e-9)))


def binomial_count_interval(trials: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """Central interval of a Binomial(trials, p) count with probability ``confidence``:
    where an observed number of flips must fall (used by the tests)."""
    from scipy.stats import binom

    low, high = binom.interval(_check_confidence(confidence), int(trials), float(p))
    return int(low), int(high)


def quantile_interval(values, q: float, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Distribution-free confidence interval of the ``q``-quantile of the population that
    ``values`` (independent draws, e.g. device accuracies) sample: order statistics
    X_(r) <= x_q <= X_(s) with r, s from the Binomial(n, q) count of draws below x_q, so the
    bound is binomial on the number of draws (devices), not on anything inside them. A bound
    that would need more draws than there are (e.g. the lower bound of the 1st percentile
    from fewer than ~300 devices at 95 %) is None."""
    from scipy.stats import binom

    ordered = sorted(float(v) for v in values)
    n = len(ordered)
    if n == 0:
        return None, None
    alpha = 1.0 - _check_confidence(confidence)
    if not 0.0 <= q <= 1.0:
        raise FpgaFtError(f"quantile must be in [0, 1], got {q}")
    r = int(binom.ppf(alpha / 2.0, n, q))  # X_(r), 1-based: P(count < r) <= alpha / 2
    s = int(binom.ppf(1.0 - alpha / 2.0, n, q)) + 1
    low = ordered[r - 1] if r >= 1 else None
    high = ordered[s - 1] if s <= n else None
    return low, high


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of independent draws ``values`` (e.g. device
    accuracies: the spread between devices, not the count of inferences, sets its width).
    A single draw gives (-inf, inf) clipped to the draw's unit range by the caller."""
    from scipy.stats import t as student_t

    data = [float(v) for v in values]
    n = len(data)
    if n < 2:
        return float("-inf"), float("inf")
    mean = sum(data) / n
    var = sum((v - mean) ** 2 for v in data) / (n - 1)
    half = float(student_t.ppf(0.5 + _check_confidence(confidence) / 2.0, n - 1)) * math.sqrt(var / n)
    return mean - half, mean + half
