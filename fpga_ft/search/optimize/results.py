"""Results of a study, read from trial and study user attributes: trial entries (LUT, FF, DSP,
BRAM_18K counts, latency in cycles, accuracy as fractions with its confidence interval), the
Pareto front (objective vs accuracy), :class:`OptimizeResult` and :func:`load_result`. The
objective value of an entry is its first Optuna value (:func:`objective_value`; the study's
objective, LUT by default, :mod:`.objectives`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.search.optimize.objectives import DEFAULT_OBJECTIVE
from fpga_ft.search.optimize.evaluation import RESULT_KEYS
from fpga_ft.search.optimize.storage import display_url, make_storage
from fpga_ft.search.optimize.targets import CONSTRAINT_NAMES

#: The trial user attributes a result entry holds: an evaluation's result keys (but the wall
#: time, which the trial's duration gives) and the trial's label.
ENTRY_KEYS = (*(key for key in RESULT_KEYS if key != "seconds"), "label")
#: The keys of an entry that results show (``best``, ``closest``, ``pareto``), in order.
PUBLIC_KEYS = ("number", "label", *RESULT_KEYS)


def entry_of(trial) -> dict:
    """The JSON form of a completed trial (from its user attributes): ``number``, the
    :data:`ENTRY_KEYS` it has, ``values``, ``memoized`` and ``seconds`` (the trial's duration)."""
    attrs = trial.user_attrs
    entry = {"number": trial.number}
    for key in ENTRY_KEYS:
        if key in attrs:
            entry[key] = attrs[key]
    entry["values"] = list(trial.values) if trial.values is not None else None
    entry["memoized"] = bool(attrs.get("memoized"))
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    entry["seconds"] = duration
    return entry


def objective_value(entry: dict) -> float:
    """The objective value of a trial entry: its first Optuna value (an entry without values,
    e.g. one built by hand: its LUTs)."""
    values = entry.get("values")
    return float(values[0]) if values else float(entry["LUT"])


def pareto_front(entries: Sequence[dict]) -> list[dict]:
    """Feasible entries not dominated in (objective lower, accuracy mean higher), by objective."""
    feasible = [e for e in entries if e.get("feasible")]
    front = []
    for e in feasible:
        cost, acc = objective_value(e), e["accuracy"]["mean"]
        dominated = any((objective_value(o) <= cost and o["accuracy"]["mean"] >= acc)
                        and (objective_value(o) < cost or o["accuracy"]["mean"] > acc) for o in feasible)
        if not dominated:
            front.append(e)
    unique = {}
    for e in sorted(front, key=lambda e: (objective_value(e), -e["accuracy"]["mean"], e["number"])):
        unique.setdefault((objective_value(e), round(e["accuracy"]["mean"], 9)), e)
    return list(unique.values())


def _violation(e: dict) -> float:
    return sum(max(0.0, float(c)) for c in e.get("constraints", [1.0, 1.0, 1.0]))


@dataclass
class OptimizeResult:
    study_name: str
    storage: str
    settings: dict
    baseline: dict
    entries: list
    trials: list
    multi_objective: bool
    requested: int
    run_trials: int = 0
    run_seconds: float = 0.0
    failed_here: list = field(default_factory=list)
    reaped: list = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        feasible = [e for e in self.entries if e.get("feasible")]
        if not feasible:
            return None
        return min(feasible, key=lambda e: (objective_value(e), -e["accuracy"]["ci_low"], e["number"]))

    @property
    def closest(self) -> dict | None:
        """With no feasible trial: the one that violates the constraints least."""
        if not self.entries:
            return None
        return min(self.entries, key=lambda e: (_violation(e), objective_value(e), e["number"]))

    @property
    def objective(self) -> str:
        """The name of the objective the study minimises (settings; default LUT)."""
        return str(self.settings.get("objective", DEFAULT_OBJECTIVE))

    @property
    def pareto(self) -> list[dict]:
        return pareto_front(self.entries)

    @property
    def seconds_per_trial(self) -> float | None:
        """Mean wall time of the completed trials that built and measured a design (trials
        answered from this process's memo of already evaluated candidates excluded)."""
        durations = [e["seconds"] for e in self.entries if e.get("seconds") is not None and not e.get("memoized")]
        return sum(durations) / len(durations) if durations else None

    def to_dict(self) -> dict:
        complete = [t for t in self.trials if t["state"] == "COMPLETE"]
        return {
            "study": self.study_name,
            "storage": self.storage,
            "multi_objective": self.multi_objective,
            "objective": [f"{self.objective} (minimise)", "accuracy under BER (maximise)"] if self.multi_objective
            else [f"{self.objective} (minimise)"],
            "constraints": list(CONSTRAINT_NAMES),
            "target": self.settings.get("target"),
            "best": public_entry(self.best),
            "closest": public_entry(self.closest) if self.best is None else None,
            "pareto": [public_entry(e) for e in self.pareto],
            "trials": {"requested": self.requested, "count": len(self.trials), "complete": len(complete),
                       "feasible": sum(1 for e in self.entries if e.get("feasible")),
                       "run_here": self.run_trials, "items": self.trials},
            "baseline": self.baseline,
            "seconds_per_trial": self.seconds_per_trial,
            "seconds_this_run": round(self.run_seconds, 2),
            "settings": self.settings,
        }


def public_entry(entry: dict | None) -> dict | None:
    """A study entry with the keys of the JSON (PUBLIC_KEYS) only."""
    if entry is None:
        return None
    return {k: entry.get(k) for k in PUBLIC_KEYS if k in entry}


def _collect(study, requested: int, multi_objective: bool, **extra) -> OptimizeResult:
    from optuna.trial import TrialState

    attrs = study.user_attrs
    trials, entries = [], []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        feasible = t.user_attrs.get("feasible") if t.state == TrialState.COMPLETE else None
        trials.append({"number": t.number, "state": t.state.name,
                       "values": list(t.values) if t.values is not None else None, "feasible": feasible,
                       "label": t.user_attrs.get("label")})
        if t.state == TrialState.COMPLETE and "LUT" in t.user_attrs:
            entries.append(entry_of(t))
    return OptimizeResult(study_name=study.study_name, storage=extra.pop("storage"), settings=attrs.get("settings", {}),
                          baseline=attrs.get("baseline", {}), entries=entries, trials=trials,
                          multi_objective=multi_objective, requested=requested, **extra)


def load_result(storage: str, study_name: str, requested: int = 0) -> OptimizeResult:
    """Read a study's results back from its storage alone (no model, no evaluation)."""
    import optuna

    store = make_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        raise FpgaFtError(f"no study '{study_name}' in {display_url(storage)}") from None
    return _collect(study, requested, len(study.directions) > 1, storage=display_url(storage))
