"""Plot of a study: its objective (LUT by default) vs accuracy under the BER (percent, 95 %
confidence interval).
"""

from __future__ import annotations

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.search.optimize.objectives import fmt_value, get_objective
from fpga_ft.search.optimize.results import OptimizeResult, objective_value, pareto_front
from fpga_ft.search.optimize.targets import fmt_ber


def plot_pareto(path, result: OptimizeResult, title: str | None = None) -> None:
    """PNG: the objective (LUT by default) vs accuracy under the BER for every completed trial
    (feasible filled, infeasible hollow, CI as error bars), the Pareto front of the feasible
    ones, the unprotected baseline and the accuracy target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = result.entries
    base = result.baseline
    target = result.settings.get("target", {})
    name = result.objective
    try:
        objective = get_objective(name)
        unit, base_value = objective.unit, objective.of(base) if base else None
    except FpgaFtError:  # a user objective that cannot be imported here: no baseline marker
        unit, base_value = "", None
    fig, ax = plt.subplots(figsize=(8.5, 5.6), layout="constrained")

    def plot_set(items, **kw):
        if not items:
            return
        cost = np.array([objective_value(e) for e in items], dtype=float)
        mean = np.array([e["accuracy"]["mean"] for e in items]) * 100
        lo = mean - np.array([e["accuracy"]["ci_low"] for e in items]) * 100
        hi = np.array([e["accuracy"]["ci_high"] for e in items]) * 100 - mean
        marker = kw.pop("marker", "o")
        ax.errorbar(cost, mean, yerr=[lo, hi], fmt=marker, capsize=2, elinewidth=0.8, **kw)

    feasible = [e for e in entries if e.get("feasible")]
    misses_accuracy = [e for e in entries if not e.get("feasible") and e["constraints"][0] > 0]
    misses_other = [e for e in entries if not e.get("feasible") and e["constraints"][0] <= 0]
    plot_set(misses_accuracy, color="0.55", markerfacecolor="white",
             label=f"infeasible: accuracy below target ({len(misses_accuracy)})")
    plot_set(misses_other, color="tab:purple", marker="^", markerfacecolor="white",
             label=f"infeasible: accuracy ok, latency or fit not ({len(misses_other)})")
    plot_set(feasible, color="tab:blue", label=f"feasible trial ({len(feasible)})")
    front = pareto_front(entries)
    if front:
        ax.step([objective_value(e) for e in front], [e["accuracy"]["mean"] * 100 for e in front], where="post",
                color="tab:green", linewidth=1.5, label="Pareto front (feasible)")
    best = result.best
    if best:
        ax.plot(objective_value(best), best["accuracy"]["mean"] * 100, marker="*", markersize=16, color="tab:green",
                markeredgecolor="black", linestyle="none",
                label=f"best: {fmt_value(objective_value(best))} {unit or name} (trial {best['number']})")
    if base and base_value is not None:
        ax.plot(base_value, base["accuracy"]["mean"] * 100, marker="X", markersize=11, color="tab:red",
                linestyle="none", label=f"unprotected baseline: {fmt_value(base_value)} {unit}")
    if base:
        clean = base["clean_accuracy"] * 100
        ax.axhline(clean, color="black", linestyle=":", linewidth=1, label=f"clean accuracy {clean:.2f} %")
        if target:
            floor = clean - float(target.get("max_accuracy_drop", 0)) * 100
            ax.axhline(floor, color="tab:orange", linestyle="--", linewidth=1,
                       label=f"target: CI low >= {floor:.2f} %")
    ber = target.get("ber") if target else None
    source = ("vendor report" if entries and entries[0].get("source") == "report"
              else "fpga-ft estimate, Vivado post-synthesis scale")
    ax.set_xlabel(f"LUT (6-input LUTs; {source})" if name == "LUT" else f"{name} ({unit}; {source})")
    ax.set_ylabel(f"accuracy under BER {fmt_ber(ber)} (%), 95 % CI" if ber is not None else "accuracy under faults (%)")
    if base:
        low, high = ax.get_ylim()
        ax.set_ylim(low, max(high, base["clean_accuracy"] * 100 + 0.4))
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or f"{result.study_name}\n{name} vs accuracy under faults ({len(entries)} completed trials)",
                 fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)
