"""What evaluating one candidate gives: :class:`Evaluation` (and the unprotected design's
:class:`Baseline`, the campaign's :class:`AccuracyFigures`), and the one table of their JSON
keys.

Units: accuracies are fractions (0..1) of the test set classified correctly, with the
campaign's 95 % confidence bounds; resource counts as in
:mod:`fpga_ft.core.resources` (``LUT``, ``FF``, ``DSP``, ``BRAM_18K``), ``latency_cycles`` in
clock cycles; overheads are fractions of the unprotected design's figure (0.10 = 10 % more);
utilisation is the fraction of what the board offers; ``seconds`` wall time.

The JSON form (:meth:`Evaluation.to_dict`) is what a study stores as trial user attributes
and what results show; its keys are written once, in :data:`RESULT_KEYS` (a result entry)
and :data:`DETAIL_KEYS` (stored with the trial, not shown), and everything that lists them
(:data:`fpga_ft.search.optimize.results.ENTRY_KEYS`, the public form of a result, the rows of
:mod:`fpga_ft.search.compare`) derives from them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.core.resources import FIT_KEYS, ResourceFigures
from fpga_ft.search.algorithm import AlgorithmKnobs
from fpga_ft.search.optimize.targets import Target

#: Slack on the latency constraint (floating point: 11/10 - 1 > 0.10).
LATENCY_TOLERANCE = 1e-9
#: The fit constraint of an unbounded utilisation (a resource the board lacks is used).
UNFIT = 1e9


def clean_float(value, digits: int = 6) -> float | None:
    """``value`` rounded to ``digits`` decimals for JSON; ``None`` for None, inf and NaN."""
    if value is None:
        return None
    value = float(value)
    if math.isinf(value) or math.isnan(value):
        return None
    return round(value, digits)


#: The verdict on each constraint (accuracy, latency, fit: ``targets.CONSTRAINT_NAMES``).
CONSTRAINT_FLAGS = ("accuracy_ok", "latency_ok", "fits")


def constraint_flags(constraints) -> dict[str, bool]:
    """:data:`CONSTRAINT_FLAGS` of constraint values (a value <= 0 is satisfied)."""
    return {flag: value <= 0 for flag, value in zip(CONSTRAINT_FLAGS, constraints, strict=True)}


def _figure_counts(figures: ResourceFigures) -> dict:
    """The counts results show (``LUT``, ``FF``, ``DSP``, ``BRAM_18K``) and ``latency_cycles``."""
    return {**figures.counts(FIT_KEYS), "latency_cycles": figures.latency_cycles}


def _utilization(values: Mapping[str, float]) -> dict:
    return {key: clean_float(value) for key, value in values.items()}


@dataclass(frozen=True)
class AccuracyFigures:
    """Accuracy under faults: the mean over the campaign's passes and the 95 % confidence
    bounds (fractions 0..1), and ``repeats``, the passes over the test set it rests on (more
    than the evaluator's ``repeats`` when sequential evaluation added passes to decide the
    accuracy constraint; 0: not known)."""

    mean: float
    ci_low: float
    ci_high: float
    repeats: int = 0

    @classmethod
    def of(cls, campaign) -> AccuracyFigures:
        """From a :class:`fpga_ft.simulate.campaign.CampaignResult`."""
        return cls(mean=campaign.accuracy_mean, ci_low=campaign.ci_low, ci_high=campaign.ci_high,
                   repeats=int(campaign.repeats))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "repeats": self.repeats}


@dataclass(frozen=True)
class Baseline:
    """The unprotected original design under a BER (faults per bit per inference): its figures,
    utilisation of the board (``FIT_KEYS``), clean (fault-free) accuracy and accuracy under
    faults, and its project directory."""

    figures: ResourceFigures
    utilization: Mapping[str, float]
    clean_accuracy: float
    accuracy: AccuracyFigures
    ber: float
    design: str

    def to_dict(self) -> dict:
        """JSON form (stored as the study's ``baseline`` attribute)."""
        return {
            **_figure_counts(self.figures),
            "source": self.figures.source,
            "utilization": _utilization(self.utilization),
            "clean_accuracy": self.clean_accuracy,
            "accuracy": self.accuracy.to_dict(),
            "accuracy_loss": self.clean_accuracy - self.accuracy.mean,
            "ber": self.ber,
            "design": self.design,
            "plan": {"layers": {}},
        }


@dataclass(frozen=True)
class Evaluation:
    """One candidate built, costed and fault-injected (:meth:`Evaluator.evaluate
    <fpga_ft.search.optimize.evaluator.Evaluator.evaluate>`).

    * ``plan`` / ``knobs``: the protection plan and algorithm knobs built; ``spec``: per layer
      ``critical`` (neurons), ``critical_fraction`` (of the layer's) and ``msbs``;
    * ``figures``: LUT/FF/DSP/BRAM_18K and latency (cycles), from the project's vendor reports
      (``source`` ``"report"``) or the estimate (``"estimate"``); ``utilization``: fractions
      of the board (``inf`` for a resource the board lacks);
    * ``accuracy``: accuracy under the target's BER; ``clean_accuracy``: this design's
      fault-free accuracy; ``baseline``: the unprotected original design, ``target``: the
      study's target, from which the overheads and the constraints follow;
    * ``design``: project directory; ``model_file``: the retrained model's file (``None`` for
      the original model); ``retrain``: fine-tuning figures; ``seconds``: wall time of this
      call; ``memoized``: answered from the evaluator's memo.
    """

    plan: ProtectionPlan
    knobs: AlgorithmKnobs
    spec: Mapping[str, Mapping[str, float]]
    figures: ResourceFigures
    utilization: Mapping[str, float]
    accuracy: AccuracyFigures
    clean_accuracy: float
    baseline: Baseline
    target: Target
    design: str
    model_file: str | None = None
    retrain: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    memoized: bool = False

    @property
    def accuracy_loss(self) -> float:
        """Unprotected clean accuracy minus the mean accuracy under faults (fraction)."""
        return self.baseline.clean_accuracy - self.accuracy.mean

    @property
    def lut_overhead(self) -> float | None:
        """LUTs over the unprotected design's, minus 1 (``None`` when that has none)."""
        base = self.baseline.figures.LUT
        return self.figures.LUT / base - 1.0 if base else None

    @property
    def latency_overhead(self) -> float | None:
        """Latency over the unprotected design's, minus 1 (``None`` when that is 0 cycles or
        either latency is unknown)."""
        base, latency = self.baseline.figures.latency_cycles, self.figures.latency_cycles
        return latency / base - 1.0 if base and latency is not None else None

    @property
    def constraints(self) -> list[float]:
        """Accuracy, latency and fit constraint values (<= 0 satisfied; the Optuna
        ``constraints_func``): the target's accuracy floor minus the CI lower bound; the
        latency overhead minus the allowed one; the highest utilisation minus 1."""
        acc = self.accuracy_floor - float(self.accuracy.ci_low)
        lat = (self.latency_overhead or 0.0) - float(self.target.max_latency_overhead) - LATENCY_TOLERANCE
        fit = max(self.utilization[key] for key in FIT_KEYS) - 1.0
        return [float(acc), float(lat), float(fit) if math.isfinite(fit) else UNFIT]

    @property
    def feasible(self) -> bool:
        """Every constraint satisfied."""
        return all(c <= 0 for c in self.constraints)

    @property
    def accuracy_ok(self) -> bool:
        return constraint_flags(self.constraints)["accuracy_ok"]

    @property
    def accuracy_floor(self) -> float:
        """The least accuracy the target allows (fraction): the unprotected clean accuracy
        minus the allowed drop; the accuracy constraint holds when ``accuracy.ci_low`` is at
        least this."""
        return self.baseline.clean_accuracy - float(self.target.max_accuracy_drop)

    @property
    def accuracy_undecided(self) -> bool:
        """The accuracy interval straddles :attr:`accuracy_floor` (CI low below it, CI high
        at or above it) while the latency and fit constraints hold: more campaign passes can
        change the verdict (sequential evaluation)."""
        _, latency, fit = self.constraints
        return latency <= 0 and fit <= 0 and self.accuracy.ci_low < self.accuracy_floor <= self.accuracy.ci_high

    def again(self, seconds: float) -> Evaluation:
        """This evaluation answered from the memo, ``seconds`` after it was asked for."""
        return dataclasses.replace(self, seconds=seconds, memoized=True)

    def to_dict(self) -> dict:
        """JSON form: :data:`RESULT_KEYS` then :data:`DETAIL_KEYS`."""
        return {key: value(self) for key, value in (*_RESULT, *_DETAIL)}

    def public_dict(self) -> dict:
        """The result entry (:data:`RESULT_KEYS` only)."""
        return {key: value(self) for key, value in _RESULT}

    def trial_attrs(self) -> dict:
        """What a study stores as the trial's user attributes: the JSON form, with the wall
        time (rounded to ms) as ``evaluation_seconds``."""
        attrs = self.to_dict()
        attrs["evaluation_seconds"] = round(attrs.pop("seconds"), 3)
        return attrs


_Getter = Callable[[Evaluation], Any]


def _count(key: str) -> _Getter:
    return lambda e: _figure_counts(e.figures)[key]


#: The JSON keys of a result entry and how each is read from an :class:`Evaluation`, in the
#: order results show them.
_RESULT: tuple[tuple[str, _Getter], ...] = (
    ("plan", lambda e: e.plan.to_dict()),
    ("knobs", lambda e: e.knobs.to_dict()),
    ("spec", lambda e: {name: dict(values) for name, values in e.spec.items()}),
    *((key, _count(key)) for key in (*FIT_KEYS, "latency_cycles")),
    ("accuracy", lambda e: e.accuracy.to_dict()),
    ("clean_accuracy", lambda e: e.clean_accuracy),
    ("accuracy_loss", lambda e: e.accuracy_loss),
    ("lut_overhead", lambda e: e.lut_overhead),
    ("latency_overhead", lambda e: e.latency_overhead),
    ("feasible", lambda e: e.feasible),
    ("constraints", lambda e: e.constraints),
    ("utilization", lambda e: _utilization(e.utilization)),
    ("source", lambda e: e.figures.source),
    ("model_file", lambda e: e.model_file),
    ("design", lambda e: e.design),
    ("seconds", lambda e: e.seconds),
)
#: Stored with a trial for reference (the plan as YAML, the fine-tuning figures, whether the
#: evaluator's memo answered), not part of a result entry.
_DETAIL: tuple[tuple[str, _Getter], ...] = (
    ("plan_yaml", lambda e: e.plan.to_yaml()),
    ("retrain", lambda e: dict(e.retrain)),
    ("memoized", lambda e: e.memoized),
)
#: Keys of a result entry (:meth:`Evaluation.public_dict`), in order.
RESULT_KEYS = tuple(key for key, _ in _RESULT)
#: Keys stored with a trial besides :data:`RESULT_KEYS`.
DETAIL_KEYS = tuple(key for key, _ in _DETAIL)

__all__ = [
    "AccuracyFigures",
    "Baseline",
    "CONSTRAINT_FLAGS",
    "DETAIL_KEYS",
    "Evaluation",
    "LATENCY_TOLERANCE",
    "RESULT_KEYS",
    "clean_float",
    "constraint_flags",
]
