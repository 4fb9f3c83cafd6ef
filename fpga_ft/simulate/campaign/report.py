"""The text table and the accuracy-vs-BER plot of a sweep (``fpga-ft inject``)."""

from __future__ import annotations

from pathlib import Path

from fpga_ft.core.faults import BER_UNITS, SITES


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def format_sweep_table(results) -> str:
    """One row per campaign (BER): accuracy, CI, clean accuracy, inferences, repeats, flips
    injected/masked per site, wall time."""
    header = ["BER", "accuracy", f"{int(round(100 * results[0].confidence))}% CI", "clean", "inferences",
              "repeats", *[f"{s} inj/masked" for s in SITES], "time"]
    rows = []
    for r in results:
        rows.append([f"{r.ber:.3g}", _pct(r.accuracy_mean), f"{_pct(r.ci_low)} .. {_pct(r.ci_high)}",
                     _pct(r.clean_accuracy), f"{r.inferences:,}", str(r.repeats),
                     *[f"{r.faults_injected[s]:,}/{r.faults_masked[s]:,}" for s in SITES], f"{r.seconds:.2f} s"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def plot_accuracy(results, out: str, title: str = "") -> None:
    """Accuracy vs BER (log x axis), CI error bars, clean accuracy as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted((r for r in results if r.ber > 0), key=lambda r: r.ber)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if points:
        bers = [r.ber for r in points]
        means = [r.accuracy_mean for r in points]
        errors = [[r.accuracy_mean - r.ci_low for r in points], [r.ci_high - r.accuracy_mean for r in points]]
        conf = int(round(100 * points[0].confidence))
        ax.errorbar(bers, means, yerr=errors, marker="o", capsize=3, label=f"under faults ({conf}% CI)")
        ax.set_xscale("log")
    clean = results[0].clean_accuracy
    ax.axhline(clean, linestyle="--", color="gray", label=f"clean ({100 * clean:.1f}%)")
    ax.set_xlabel(f"bit error rate ({BER_UNITS})")
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
