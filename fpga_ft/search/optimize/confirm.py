"""Confirmation of a study's choice by an independent campaign (the winner's curse).

A study keeps the cheapest trial whose campaign cleared the accuracy floor. Among many trials
near the floor, the cheapest one that cleared it is the one most likely to have cleared it by
luck: re-measured with other fault draws it often misses (measured on the digits MLP:
search CI low 94.91 % against a floor of 94.78 %, re-measured 94.69 %). A confirmation
re-measures the feasible trials cheapest first with an independent campaign (its own seed)
and keeps the first that predicts a further independent campaign of the same size to meet the
target with probability >= :data:`CONFIRM_PASS_PROBABILITY` (:func:`pass_probability`).
Asking the confirmation campaign only to clear the floor again is not enough: a design just
above the floor clears any one campaign about half the time (measured: confirmed at 95.02 %,
re-measured 94.69 %).

Used by ``fpga-ft optimize`` (the plan it writes) and by ``fpga-ft compare`` (TMR-CL's row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

from fpga_ft.search.optimize.evaluator import Evaluator
from fpga_ft.search.optimize.objectives import Objective, get_objective
from fpga_ft.search.optimize.targets import Target

#: Offset of the confirmation campaigns' seed from the search seed (compare's validation uses 1000).
CONFIRM_SEED_OFFSET = 2000
#: Feasible trials tried, cheapest first, before giving up.
CONFIRM_CANDIDATES = 8
#: Predicted probability that an independent campaign of the same size meets the target,
#: above which a trial is confirmed.
CONFIRM_PASS_PROBABILITY = 0.9
#: Passes over the test set of a confirmation campaign (the size of compare's validation).
DEFAULT_CONFIRM_REPEATS = 30


def pass_probability(mean: float, ci_low: float, ci_high: float, floor: float) -> float:
    """Predicted probability that an independent campaign of the same size as the one that
    measured (``mean``, [``ci_low``, ``ci_high``], fractions, 95 % interval) finds its own
    95 % lower bound at or above ``floor``: with sigma the campaign's standard error (interval
    width / 2 / 1.96) and a flat prior on the true accuracy, the other campaign's mean is
    normal around ``mean`` with variance 2 sigma^2 and its lower bound sits ``mean - ci_low``
    below its mean, so the probability is Phi((ci_low - floor) / (sqrt(2) sigma))."""
    sigma = (ci_high - ci_low) / (2.0 * NormalDist().inv_cdf(0.975))
    if sigma <= 0.0:
        return 1.0 if ci_low >= floor else 0.0
    return NormalDist().cdf((ci_low - floor) / (math.sqrt(2.0) * sigma))


@dataclass(frozen=True)
class ConfirmedTrial:
    """One trial re-measured: its number, objective value, accuracy mean and CI low
    (fractions) in the confirmation campaign, the predicted pass probability, the verdict."""

    number: int
    objective: float
    mean: float
    ci_low: float
    pass_probability: float
    confirmed: bool

    def to_dict(self) -> dict:
        return {"number": self.number, "objective": self.objective, "mean": self.mean, "ci_low": self.ci_low,
                "pass_probability": round(self.pass_probability, 4), "confirmed": self.confirmed}


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation tried (cheapest first) and the study entry it chose (None: no
    tried trial was confirmed)."""

    repeats: int
    seed: int
    probability: float
    tried: tuple[ConfirmedTrial, ...]
    chosen: dict | None

    def to_dict(self) -> dict:
        return {"repeats": self.repeats, "seed": self.seed, "probability": self.probability,
                "tried": [t.to_dict() for t in self.tried],
                "chosen": None if self.chosen is None else self.chosen["number"]}


def confirm_cheapest(entries: Sequence[dict], ev: Evaluator, target: Target, repeats: int = DEFAULT_CONFIRM_REPEATS,
                     *, objective: str | Objective | None = None, candidates: int = CONFIRM_CANDIDATES,
                     probability: float = CONFIRM_PASS_PROBABILITY) -> Confirmation:
    """The cheapest feasible study entry confirmed by an independent campaign (``repeats``
    passes, seed ``ev.seed + CONFIRM_SEED_OFFSET``): one whose campaign clears the floor and
    predicts a further independent campaign of the same size to meet it with at least
    ``probability``. At most ``candidates`` entries are tried, in the order of the objective
    (ties: higher search CI low first, then trial number)."""
    rank = get_objective(objective)
    floor = ev.accuracy_floor(target)
    feasible = sorted((e for e in entries if e.get("feasible") and e.get("plan") is not None),
                      key=lambda e: (rank.of(e), -e["accuracy"]["ci_low"], e["number"]))
    seed = ev.seed + CONFIRM_SEED_OFFSET
    tried: list[ConfirmedTrial] = []
    chosen = None
    for entry in feasible[:candidates]:
        result = ev.campaign(ev.design_of(entry), target, repeats=repeats, seed=seed)
        chance = pass_probability(result.accuracy_mean, result.ci_low, result.ci_high, floor)
        ok = bool(result.ci_low >= floor and chance >= probability)
        tried.append(ConfirmedTrial(entry["number"], rank.of(entry), result.accuracy_mean, result.ci_low, chance, ok))
        if ok:
            chosen = entry
            break
    return Confirmation(repeats, seed, probability, tuple(tried), chosen)


def describe(confirmation: Confirmation, objective: str | Objective | None = None) -> list[str]:
    """One line per tried trial, for the commands' logs."""
    name = get_objective(objective).name
    return [f"confirmation: trial {t.number} ({name} {t.objective:,.0f}): accuracy {t.mean * 100:.2f} %, CI low "
            f"{t.ci_low * 100:.2f} %, an independent re-measurement meets the target with probability "
            f"{t.pass_probability:.2f}: " + ("confirmed" if t.confirmed else "not confirmed")
            for t in confirmation.tried]
