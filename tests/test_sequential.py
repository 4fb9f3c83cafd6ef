"""Sequential evaluation in the optimizer's Evaluator (issue 15): a candidate whose accuracy
interval straddles the target's floor gets more campaign passes, up to ``max_repeats``; a
candidate whose interval is clearly above or below the floor does not.

The bundled digits MLP on the ZCU102 (2 passes per campaign, as in test_optimize.py); each
test chooses its target from a first, non-sequential look at the candidate, so the floor
lands where the test needs it whatever the campaign's numbers are.
"""

from __future__ import annotations

import pytest
from conftest import mlp_evaluator

from fpga_ft.core.errors import FpgaFtError

BER = 1e-3
LATENCY = 1.0  # every candidate meets the latency constraint: only accuracy is decided


@pytest.fixture(scope="module")
def evaluator():
    return mlp_evaluator("zcu102")


def _candidate(evaluator):
    from fpga_ft.search.optimize import ProtectionSpec

    return {}, ProtectionSpec.uniform(evaluator.layers0, msbs=1)


def _target(evaluator, floor: float):
    """A target whose accuracy floor (clean accuracy minus the allowed drop) is ``floor``."""
    from fpga_ft.search.optimize import Target

    drop = evaluator.clean_accuracy - floor
    return Target(ber=BER, max_accuracy_drop=drop, max_latency_overhead=LATENCY)


def _first_look(evaluator, target):
    """The candidate's evaluation on the first campaign only (sequential evaluation off)."""
    budget = evaluator.max_repeats
    evaluator.max_repeats = evaluator.repeats
    try:
        return evaluator.evaluate(*_candidate(evaluator), target)
    finally:
        evaluator.max_repeats = budget


def test_straddling_candidate_gets_more_repeats(evaluator):
    probe = _first_look(evaluator, _target(evaluator, 0.0))
    low, high = probe.accuracy.ci_low, probe.accuracy.ci_high
    target = _target(evaluator, (low + high) / 2)  # the floor inside the first interval
    first = _first_look(evaluator, target)
    assert first.accuracy_undecided and first.accuracy.repeats == evaluator.repeats
    assert evaluator.max_repeats > evaluator.repeats  # the default budget allows more passes
    evaluation = evaluator.evaluate(*_candidate(evaluator), target)
    acc = evaluation.accuracy
    assert evaluator.repeats < acc.repeats <= evaluator.max_repeats
    # it stopped because the interval left the floor, or because the budget was spent
    assert not evaluation.accuracy_undecided or acc.repeats == evaluator.max_repeats
    # more samples: a narrower interval; the repeats are in the JSON
    assert acc.ci_high - acc.ci_low < high - low
    assert evaluation.to_dict()["accuracy"]["repeats"] == acc.repeats
    assert evaluation.accuracy_ok == (acc.ci_low >= evaluation.accuracy_floor)


def test_clear_candidates_get_no_more_repeats(evaluator):
    probe = _first_look(evaluator, _target(evaluator, 0.0))
    above = evaluator.evaluate(*_candidate(evaluator), _target(evaluator, probe.accuracy.ci_low - 0.01))
    assert above.accuracy_ok and above.accuracy.repeats == evaluator.repeats
    below = evaluator.evaluate(*_candidate(evaluator), _target(evaluator, probe.accuracy.ci_high + 0.01))
    assert not below.accuracy_ok and below.accuracy.repeats == evaluator.repeats


def test_infeasible_on_latency_gets_no_more_repeats(evaluator):
    """An undecided accuracy does not matter when the latency constraint already fails."""
    from fpga_ft.search.optimize import Target

    probe = _first_look(evaluator, _target(evaluator, 0.0))
    floor = (probe.accuracy.ci_low + probe.accuracy.ci_high) / 2
    target = Target(ber=BER, max_accuracy_drop=evaluator.clean_accuracy - floor, max_latency_overhead=0.0)
    evaluation = evaluator.evaluate(*_candidate(evaluator), target)
    assert evaluation.constraints[1] > 0 and evaluation.accuracy.repeats == evaluator.repeats


def test_extra_batches_use_independent_seeds():
    from fpga_ft.search.optimize.evaluator import sequential_seed

    seeds = {sequential_seed(seed, batch) for seed in range(3) for batch in range(1, 5)}
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)
    assert not seeds & set(range(2000))  # never a search or validation seed (seed + offset)


def test_max_repeats_below_repeats_is_an_error(evaluator):
    from fpga_ft.search.optimize import Evaluator

    with pytest.raises(FpgaFtError, match="max repeats must be an integer >= repeats"):
        Evaluator(evaluator.model, evaluator.x, evaluator.y, board="zcu102", repeats=3, max_repeats=2)
