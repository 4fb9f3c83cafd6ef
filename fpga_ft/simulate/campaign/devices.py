"""Device-level statistics of a campaign in a held fault mode (latched, stuck-at), and the
rate of wrong outputs from an upset rate.

In the held modes every chunk of a campaign is one **device**: one fault pattern in the
weight memory (drawn at the start of a scrub interval and held for it), run on the
interval's inferences. Its accuracy is a draw from the distribution of device accuracies
(the fault pattern's, plus the sampling noise of its inferences). :class:`DeviceStats`
summarises the draws: mean with a t interval over devices, percentiles with
distribution-free order-statistic bounds, and the probability that a device falls below a
target accuracy with a Clopper-Pearson bound on the count of devices (not of inferences).
:class:`FailureRate`: wrong outputs per hour and FIT from the outputs that faults changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.stats import clopper_pearson_interval, mean_interval, quantile_interval

#: the device percentiles reported (fractions)
PERCENTILES = (("p01", 0.01), ("p05", 0.05), ("p50", 0.50))
HOURS_PER_FIT = 1e9  # FIT: failures per 1e9 device-hours


@dataclass(frozen=True)
class Percentile:
    """A percentile of the device accuracies (fraction) and its confidence bounds (None:
    more devices are needed to bound it on that side)."""

    value: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class DeviceStats:
    """Statistics over devices (accuracies are fractions in [0, 1]).

    Attributes:
        accuracies: accuracy of each device, in campaign order.
        inferences: inferences each device ran (its scrub interval, or the pass).
        confidence: level of every bound.
        target: the target accuracy (None: not given).
    """

    accuracies: tuple[float, ...]
    inferences: tuple[int, ...]
    confidence: float
    target: float | None = None

    @property
    def count(self) -> int:
        return len(self.accuracies)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    def percentile(self, q: float) -> Percentile:
        low, high = quantile_interval(self.accuracies, q, self.confidence)
        return Percentile(float(np.quantile(self.accuracies, q)), low, high)

    def below_target(self) -> tuple[int, float, float, float] | None:
        """(devices below target, their fraction, Clopper-Pearson low, high), or None."""
        if self.target is None:
            return None
        k = sum(1 for a in self.accuracies if a < self.target)
        low, high = clopper_pearson_interval(k, self.count, self.confidence)
        return k, k / self.count, low, high

    def to_dict(self) -> dict:
        low, high = mean_interval(self.accuracies, self.confidence)
        data = {"count": self.count, "mean": self.mean, "mean_ci_low": max(0.0, low),
                "mean_ci_high": min(1.0, high), "std": float(np.std(self.accuracies, ddof=1)) if self.count > 1 else 0.0,
                "min": float(min(self.accuracies)), "max": float(max(self.accuracies)),
                "inferences_per_device": int(round(float(np.mean(self.inferences)))),
                "confidence": self.confidence}
        for name, q in PERCENTILES:
            p = self.percentile(q)
            data[name] = p.value
            data[f"{name}_ci"] = [p.low, p.high]
        below = self.below_target()
        data["target"] = self.target
        data["prob_below_target"] = None if below is None else below[1]
        data["prob_below_target_ci"] = None if below is None else [below[2], below[3]]
        data["accuracies"] = list(self.accuracies)
        data["inferences"] = list(self.inferences)
        data["method"] = ("t interval of the mean over devices; order-statistic (binomial) bounds of the "
                          "percentiles; Clopper-Pearson on the count of devices below target")
        return data


def devices_from_dict(data: dict) -> DeviceStats:
    """The :class:`DeviceStats` of its ``to_dict()``."""
    return DeviceStats(accuracies=tuple(float(a) for a in data["accuracies"]),
                       inferences=tuple(int(n) for n in data["inferences"]), confidence=float(data["confidence"]),
                       target=None if data.get("target") is None else float(data["target"]))


def device_stats(records, confidence: float, target: float | None = None) -> DeviceStats:
    """:class:`DeviceStats` from the campaign's chunk records (one device each)."""
    if target is not None and not 0.0 <= float(target) <= 1.0:
        raise FpgaFtError(f"target accuracy must be in [0, 1], got {target}")
    records = list(records)
    return DeviceStats(accuracies=tuple(r["correct"] / r["n"] for r in records),
                       inferences=tuple(int(r["n"]) for r in records), confidence=float(confidence),
                       target=None if target is None else float(target))


@dataclass(frozen=True)
class FailureRate:
    """Wrong outputs caused by faults, per unit time, at an inference rate.

    Attributes:
        changed: inferences whose class differs from the fault-free one.
        inferences: inferences run.
        inference_rate: inferences per second of the device.
        confidence: level of the upper bound (Clopper-Pearson on ``changed``).
    """

    changed: int
    inferences: int
    inference_rate: float
    confidence: float

    def per_hour(self) -> tuple[float, float]:
        """(wrong outputs per hour, upper confidence bound)."""
        _, high = clopper_pearson_interval(self.changed, self.inferences, self.confidence)
        scale = self.inference_rate * 3600.0
        return self.changed / self.inferences * scale, high * scale

    def to_dict(self) -> dict:
        rate, high = self.per_hour()
        return {"wrong_outputs_per_hour": rate, "wrong_outputs_per_hour_high": high,
                "fit": rate * HOURS_PER_FIT, "fit_high": high * HOURS_PER_FIT,
                "inference_rate": self.inference_rate, "confidence": self.confidence,
                "units": "wrong outputs (class differs from fault-free) per device-hour; FIT per 1e9 device-hours"}


def plot_devices(results, path, title: str = "") -> None:
    """Histogram of the device accuracies of each campaign of ``results`` that has them
    (a PNG, or any format matplotlib writes), the target as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    target = None
    held = [r for r in results if r.devices is not None]
    every = np.concatenate([np.asarray(r.devices.accuracies) for r in held]) * 100.0 if held else np.zeros(1)
    bins = np.histogram_bin_edges(every, bins=min(60, max(10, len(every) // 5)))  # shared by every BER
    for result in held:
        stats = result.devices
        ax.hist(np.asarray(stats.accuracies) * 100.0, bins=bins, alpha=0.6,
                label=f"BER {result.ber:g} ({stats.count} devices)")
        target = stats.target if stats.target is not None else target
    if target is not None:
        ax.axvline(target * 100.0, color="k", linestyle="--", label=f"target {target * 100:.1f} %")
    ax.set_xlabel("device accuracy (%)")
    ax.set_ylabel("devices")
    ax.set_title(title or "accuracy of devices (one fault pattern each)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_device_table(results) -> str:
    """One row per campaign with device statistics: devices, mean, 1st / 5th / 50th
    percentile device, probability below the target (with its bound), wrong outputs per hour."""

    def pct(value) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    header = ["BER", "devices", "mean", "p01", "p05", "p50", "P(below target)", "wrong/h"]
    rows = []
    for r in results:
        if r.devices is None:
            continue
        d = r.devices.to_dict()
        below = "-" if d["prob_below_target"] is None else \
            f"{pct(d['prob_below_target'])} (<= {pct(d['prob_below_target_ci'][1])})"
        wrong = "-" if r.failure_rate is None else f"{r.failure_rate.per_hour()[0]:.3g}"
        rows.append([f"{r.ber:.3g}", str(d["count"]), pct(d["mean"]), pct(d["p01"]), pct(d["p05"]), pct(d["p50"]),
                     below, wrong])
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [header, *rows])
