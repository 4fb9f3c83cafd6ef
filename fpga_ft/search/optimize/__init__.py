"""Cross-layer optimizer: algorithm, architecture and circuit knobs under a reliability target.

One *candidate* is

* **algorithm** knobs (only with training data, :mod:`fpga_ft.search.algorithm`): per layer the
  weight/bias bit width, the bit width and clip bound (2^integer) of the following
  ``quantized_relu``, and the weight pruning sparsity; the model is rebuilt and fine-tuned;
* **architecture** knobs: per layer how many of its neurons (output channels) are *critical*
  (fully triplicated dot product, voted at the output), taken from the top of a vulnerability
  ranking of the original model (:mod:`fpga_ft.measure.vulnerability`, fault-injection oracle by
  default); the fraction is ``count / n_out``;
* **circuit** knobs: per layer ``protected_msbs`` (0 .. accumulator width): the top bits of
  every product and partial-sum word of the other neurons TMR'd and voted.

Each candidate is built (:func:`fpga_ft.generate.design.build_design`, cached), costed (LUT, FF, DSP,
BRAM_18K and latency in cycles from the project's real HLS/Vivado reports when it has them,
else :func:`fpga_ft.measure.resources.estimate_resources` with the exact quantized weights) and run
through a fault-injection campaign at the target BER (:func:`fpga_ft.simulate.campaign.run_campaign`,
same seed for every candidate: common random numbers). The objective is to minimise LUTs by
default, or another registered objective (:mod:`.objectives`: FF, DSP, a weighted sum, a user
function); constraints (Optuna ``constraints_func``; a value <= 0 is satisfied):

1. accuracy: ``(clean baseline accuracy - max_accuracy_drop) - campaign CI lower bound``;
2. latency: ``latency / unprotected latency - 1 - max_latency_overhead``;
3. fit: ``max(utilisation of LUT, FF, DSP, BRAM_18K on the board) - 1``.

The search runs on an Optuna study in persistent storage (SQLite file by default, any
SQLAlchemy URL such as ``postgresql://`` for several workers on several machines). Running
the same command again continues the study: it runs until the study holds ``trials``
COMPLETE trials (completed trials are never repeated). RUNNING trials of a killed worker are
failed and their parameters re-queued: at once when the worker ran on this host and its
process is gone, otherwise when its heartbeat (every
:data:`~fpga_ft.search.optimize.storage.HEARTBEAT_SECONDS` seconds) is older than
:data:`~fpga_ft.search.optimize.storage.GRACE_SECONDS` seconds. Asking for a new trial happens
under a study lock (a file lock next to a SQLite file, ``pg_advisory_lock`` on PostgreSQL,
``GET_LOCK`` on MySQL), so concurrent workers never run more than the requested number of
trials. Everything a result needs (plan, knobs, figures, accuracy interval, constraint
values) is stored as trial user attributes, and the settings, baseline and neuron ranking as
study user attributes: a study can be read back from the storage alone (:func:`load_result`).

The package, one module per stage of a study:

* :mod:`.targets`: :class:`Target`, :class:`ProtectionSpec`, :func:`fmt_ber`;
* :mod:`.evaluation`: :class:`~.evaluation.Evaluation` (what evaluating a candidate gives, and
  the one table of its JSON keys), :class:`~.evaluation.Baseline`;
* :mod:`.evaluator`: :class:`Evaluator` (build, cost, fault-inject one candidate) and the
  neuron ranking;
* :mod:`.space`: :class:`SearchSpace` (the Optuna parameters) and the default seeds;
* :mod:`.objectives`: :class:`Objective`, the objective registry (:func:`register_objective`,
  :func:`get_objective`);
* :mod:`.storage`: storage URLs, the study lock, worker liveness and heartbeats;
* :mod:`.results`: trial entries, the Pareto front, :class:`OptimizeResult`, :func:`load_result`;
* :mod:`.loop`: study naming, samplers, :func:`optimize` and the refinement of the best trial;
* :mod:`.confirm`: the confirmation of a study's choice by an independent campaign (the
  winner's curse), :func:`~.confirm.confirm_cheapest`;
* :mod:`.plot`: :func:`plot_pareto`.
"""

from __future__ import annotations

from fpga_ft.search.optimize.evaluation import Evaluation
from fpga_ft.search.optimize.evaluator import (DEFAULT_MAX_REPEATS_FACTOR, DEFAULT_RANKING, DEFAULT_RANKING_REPEATS,
                                              DEFAULT_REPEATS, Evaluator)
from fpga_ft.search.optimize.loop import default_study_name, optimize
from fpga_ft.search.optimize.objectives import OBJECTIVES, Objective, get_objective, register_objective
from fpga_ft.search.optimize.plot import plot_pareto
from fpga_ft.search.optimize.results import OptimizeResult, load_result, pareto_front
from fpga_ft.search.optimize.space import SearchSpace
from fpga_ft.search.optimize.storage import STORAGE_FILE, default_storage_url, display_url, normalize_url
from fpga_ft.search.optimize.targets import ProtectionSpec, Target, fmt_ber

__all__ = [
    "Target", "ProtectionSpec", "Evaluator", "Evaluation", "SearchSpace", "OptimizeResult", "optimize", "load_result",
    "default_storage_url", "default_study_name", "pareto_front", "plot_pareto", "STORAGE_FILE",
    "fmt_ber", "display_url", "normalize_url", "DEFAULT_REPEATS", "DEFAULT_MAX_REPEATS_FACTOR", "DEFAULT_RANKING", "DEFAULT_RANKING_REPEATS",
    "Objective", "OBJECTIVES", "get_objective", "register_objective",
]
