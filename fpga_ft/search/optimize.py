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
same seed for every candidate: common random numbers). The objective is to minimise LUTs;
constraints (Optuna ``constraints_func``; a value <= 0 is satisfied):

1. accuracy: ``(clean baseline accuracy - max_accuracy_drop) - campaign CI lower bound``;
2. latency: ``latency / unprotected latency - 1 - max_latency_overhead``;
3. fit: ``max(utilisation of LUT, FF, DSP, BRAM_18K on the board) - 1``.

The search runs on an Optuna study in persistent storage (SQLite file by default, any
SQLAlchemy URL such as ``postgresql://`` for several workers on several machines). Running
the same command again continues the study: it runs until the study holds ``trials``
COMPLETE trials (completed trials are never repeated). RUNNING trials of a killed worker are
failed and their parameters re-queued: at once when the worker ran on this host and its
process is gone, otherwise when its heartbeat (every :data:`HEARTBEAT_SECONDS`) is older
than :data:`GRACE_SECONDS`. Asking for a new trial happens under a study lock (a file lock
next to a SQLite file, ``pg_advisory_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL), so
concurrent workers never run more than the requested number of trials. Everything a result
needs (plan, knobs, figures, accuracy interval, constraint values) is stored as trial user
attributes, and the settings, baseline and neuron ranking as study user attributes: a study
can be read back from the storage alone (:func:`load_result`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.util
import inspect
import json
import math
import os
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from fpga_ft import __version__
from fpga_ft.core.boards import get_board
from fpga_ft.core.cache import cache_root, data_hash, file_lock, model_fingerprint
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import FaultModel, parse_ber, parse_sites
from fpga_ft.core.jsonio import json_default
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.generate.design import build_design
from fpga_ft.generate.modelio import check_input_shape, load_model
from fpga_ft.measure import vulnerability as V
from fpga_ft.measure.reports import read_project_report
from fpga_ft.measure.resources import estimate_resources
from fpga_ft.search.algorithm import (DEFAULT_EPOCHS, AlgorithmKnobs, LayerKnobs, apply_knobs, describe_knobs,
                                      layers_with_weights)
from fpga_ft.simulate.campaign import run_campaign

__all__ = [
    "Target", "ProtectionSpec", "Evaluator", "SearchSpace", "OptimizeResult", "optimize", "load_result",
    "default_storage_url", "default_study_name", "pareto_front", "plot_pareto", "STORAGE_FILE",
]

#: File name of the default SQLite storage (in ``<design cache>/optuna/``).
STORAGE_FILE = "fpga-ft-optuna.db"
#: Seconds between heartbeats of a running trial, and how old a heartbeat may get before
#: another worker fails the trial as stale (re-queuing its parameters).
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
#: How often a worker that waits for other workers' running trials looks again (seconds).
POLL_SECONDS = 2.0
#: Retries of a killed / stale trial's parameters.
MAX_RETRIES = 2
#: Default campaign passes over the test set per candidate.
DEFAULT_REPEATS = 10
#: Vulnerability ranking defaults (injection oracle on one neuron at a time).
DEFAULT_RANKING = "injection"
DEFAULT_RANKING_REPEATS = 5
#: Stop after this many trials in a row failed with an error.
MAX_CONSECUTIVE_FAILURES = 5
#: Slack on the latency constraint (floating point: 11/10 - 1 > 0.10).
LATENCY_TOLERANCE = 1e-9
CONSTRAINT_NAMES = ("accuracy", "latency", "fit")
RESOURCE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K")
SETTINGS_VERSION = 1
#: Testing hook: seconds each trial waits before it is reported (to kill a worker mid-trial).
TRIAL_DELAY_ENV = "FPGA_FT_TRIAL_DELAY"


# ------------------------------------------------------------------------------------------
# Targets and candidates
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The reliability / performance target of a study.

    ``ber``: faults per bit per inference; ``max_accuracy_drop``: allowed accuracy loss vs the
    clean (fault-free) unprotected design, as a fraction (0.01 = 1 percentage point), checked
    on the campaign's lower confidence bound; ``max_latency_overhead``: allowed latency
    increase vs the unprotected design, fraction."""

    ber: float
    max_accuracy_drop: float = 0.01
    max_latency_overhead: float = 0.10
    sites: tuple = ("weights", "activations", "products", "accumulators")

    def __post_init__(self):
        object.__setattr__(self, "ber", parse_ber(self.ber))
        object.__setattr__(self, "sites", parse_sites(self.sites))
        if not 0.0 <= float(self.max_accuracy_drop) <= 1.0:
            raise FpgaFtError(f"max accuracy drop must be in [0, 1] (fraction), got {self.max_accuracy_drop}")
        if not float(self.max_latency_overhead) >= 0.0:
            raise FpgaFtError(f"max latency overhead must be >= 0 (fraction), got {self.max_latency_overhead}")

    def to_dict(self) -> dict:
        return {"ber": self.ber, "max_accuracy_drop": float(self.max_accuracy_drop),
                "max_latency_overhead": float(self.max_latency_overhead), "sites": list(self.sites),
                "ber_units": "faults per bit per inference"}


@dataclass(frozen=True)
class ProtectionSpec:
    """Architecture + circuit knobs: per layer the number of critical neurons (the top of the
    vulnerability ranking) and ``protected_msbs``."""

    critical: Mapping[str, int] = field(default_factory=dict)
    msbs: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"critical": {k: int(v) for k, v in self.critical.items()},
                "msbs": {k: int(v) for k, v in self.msbs.items()}}

    @classmethod
    def uniform(cls, layers, msbs: int = 0, fraction: float = 0.0) -> "ProtectionSpec":
        return cls({i.name: int(math.ceil(fraction * i.n_out - 1e-9)) for i in layers},
                   {i.name: int(msbs) for i in layers})


# ------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------
def fmt_ber(ber: float) -> str:
    """A BER for people: 0.0001 -> '1e-4', 0.00025 -> '2.5e-4', 0 -> '0'."""
    if not ber:
        return "0"
    mantissa, exponent = f"{float(ber):e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _now() -> float:
    return time.perf_counter()


def _clean_float(value, digits: int = 6):
    if value is None:
        return None
    value = float(value)
    if math.isinf(value) or math.isnan(value):
        return None
    return round(value, digits)


class Evaluator:
    """Builds, costs and fault-injects candidates of one model on one board.

    Args:
        model: QKeras model (object) or path.
        x, y: test data for the campaigns (and the ranking, unless training data is given).
        board: :class:`fpga_ft.core.boards.Board` (or name).
        x_train, y_train: training data: enables algorithm knobs (fine-tuning) and feeds the
            vulnerability ranking.
        repeats: campaign passes over the test set per candidate.
        seed: campaign seed (the same for every candidate) and fine-tuning seed.
        workers: campaign worker processes.
        epochs: fine-tuning epochs of algorithm-knob candidates.
        ranking, ranking_repeats: vulnerability method and its passes (injection oracle).
    """

    def __init__(self, model, x, y, *, board, x_train=None, y_train=None, repeats: int = DEFAULT_REPEATS,
                 seed: int = 0, workers: int = 1, epochs: int | None = None, ranking: str = DEFAULT_RANKING,
                 ranking_repeats: int = DEFAULT_RANKING_REPEATS, model_path: str | None = None,
                 progress: bool = False, hls_config=None):
        if isinstance(model, (str, os.PathLike)):
            model_path = model_path or str(model)
            model = load_model(model)
        self.model = model
        self.model_path = model_path
        #: the user's hls4ml config (fpga_ft.generate.intake.UserHlsConfig) every design honours
        self.hls_config = hls_config if hls_config is not None and not hls_config.is_empty else None
        self.board = get_board(board) if isinstance(board, str) else board
        if self.board is None:
            raise FpgaFtError("a board is needed (resources and clock): --board NAME")
        for name, value, low in (("repeats", repeats, 1), ("workers", workers, 1), ("seed", seed, 0),
                                 ("ranking repeats", ranking_repeats, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise FpgaFtError(f"{name} must be an integer >= {low}, got {value!r}")
        check_input_shape(model, x)
        self.x, self.y = np.asarray(x, dtype=np.float32), np.asarray(y).reshape(-1).astype(np.int64)
        if x_train is not None:
            check_input_shape(model, x_train)
            x_train = np.asarray(x_train, dtype=np.float32)
            y_train = np.asarray(y_train).reshape(-1).astype(np.int64)
        self.x_train, self.y_train = x_train, y_train
        self.repeats, self.seed, self.workers = int(repeats), int(seed), int(workers)
        self.epochs = DEFAULT_EPOCHS if epochs is None else int(epochs)
        if self.epochs < 0:
            raise FpgaFtError(f"epochs must be >= 0, got {epochs}")
        self.ranking_method, self.ranking_repeats = ranking, int(ranking_repeats)
        self.progress = progress
        self.model_fp = model_fingerprint(model)
        self.data_fp = data_hash(self.x, self.y)
        self.train_fp = data_hash(x_train, y_train) if x_train is not None else None
        self.design0 = build_design(model, board=self.board, hls_config=self.hls_config)
        self.layers0 = layers_with_weights(self.design0.layers, model)
        if not self.layers0:
            raise FpgaFtError("the model has no Dense/Conv layer to protect")
        self.knob_infos = describe_knobs(model)
        predicted = self.design0.predict(self.x)
        self.clean_accuracy = float(np.mean(predicted.reshape(len(self.x), -1).argmax(axis=1) == self.y))
        self._ranking: dict[str, list[int]] | None = None
        self._ranking_info: dict = {}
        self._memo: dict = {}
        self._baseline: dict = {}
        self._retrained: dict = {}

    # ---- properties ---------------------------------------------------------------------
    @property
    def has_training_data(self) -> bool:
        return self.x_train is not None

    def settings(self) -> dict:
        """Everything that defines the numbers a study's trials produce."""
        settings = {"model_fingerprint": self.model_fp, "model": str(self.model_path or self.model.name),
                    "data": self.data_fp, "train": self.train_fp, "board": self.board.key,
                    "clock_mhz": self.board.clock_mhz, "repeats": self.repeats, "seed": self.seed,
                    "epochs": self.epochs if self.has_training_data else None,
                    "ranking": {"method": self.ranking_method, "repeats": self.ranking_repeats},
                    "fpga_ft": __version__, "version": SETTINGS_VERSION}
        if self.hls_config is not None:  # only then: settings of config-less studies are unchanged
            settings["hls_config"] = self.hls_config.key()
        return settings

    # ---- ranking --------------------------------------------------------------------------
    def ranking(self) -> dict[str, list[int]]:
        """Per layer, neuron indices from most to least vulnerable (cached on disk)."""
        if self._ranking is None:
            self._ranking, self._ranking_info = _neuron_ranking(self)
        return self._ranking

    def ranking_info(self) -> dict:
        self.ranking()
        return dict(self._ranking_info)

    # ---- plans ------------------------------------------------------------------------------
    def plan_for(self, spec: ProtectionSpec, layers=None) -> ProtectionPlan:
        """The plan of ``spec`` on ``layers`` (default: the original model's; accumulator widths
        of retrained models differ, so ``protected_msbs`` is capped at each layer's width)."""
        layers = list(layers or self.layers0)
        order = self.ranking() if any(int(v) > 0 for v in spec.critical.values()) else {}
        plan = ProtectionPlan()
        for info in layers:
            count = max(0, min(int(spec.critical.get(info.name, 0)), _max_critical(info)))
            msbs = max(0, min(int(spec.msbs.get(info.name, 0)), info.accum_type.width))
            critical = sorted(order[info.name][:count]) if count else []
            if msbs or critical:
                plan.layers[info.name] = LayerProtection(protected_msbs=msbs, critical_neurons=critical)
        return plan.validate(layers)

    # ---- models ------------------------------------------------------------------------------
    def model_for(self, knobs):
        """(Keras model, file or None, retraining info) of the algorithm knobs."""
        knobs = knobs if isinstance(knobs, AlgorithmKnobs) else AlgorithmKnobs.from_dict(knobs)
        if knobs.is_identity():
            return self.model, self.model_path, {}
        if not self.has_training_data:
            raise FpgaFtError("algorithm knobs need training data (--train T.npz)")
        key = knobs.key()
        if key not in self._retrained:
            result = apply_knobs(self.model, knobs, self.x_train, self.y_train, epochs=self.epochs, seed=self.seed)
            info = {k: result.info.get(k) for k in ("train_accuracy", "kernel_zero_fraction", "seconds", "cached")}
            self._retrained[key] = (result.model, str(result.path) if result.path else None, info)
            if len(self._retrained) > 8:  # keep memory bounded: models are cheap to reload
                self._retrained.pop(next(iter(self._retrained)))
        return self._retrained[key]

    # ---- figures -------------------------------------------------------------------------------
    def figures(self, design, layers, plan) -> dict:
        """LUT/FF/DSP/BRAM_18K, latency (cycles) and utilisation: real reports when the project
        has them, else the estimate (``source`` says which)."""
        est = estimate_resources(layers, plan, self.board.clock_mhz)
        out = {"LUT": int(est.LUT), "FF": int(est.FF), "DSP": int(est.DSP), "BRAM_18K": int(est.BRAM_18K),
               "latency_cycles": int(est.latency_cycles), "source": "estimate"}
        report = _project_report(design.project_dir)
        if report is not None:
            fig = report.get("vivado") or report.get("hls") or {}
            if fig:
                for key in RESOURCE_KEYS:
                    if fig.get(key) is not None:
                        out[key] = int(fig[key])
                out["source"] = "report"
            hls = report.get("hls") or {}
            if hls.get("latency_worst_cycles") is not None:
                out["latency_cycles"] = int(hls["latency_worst_cycles"])
        util = {}
        for key in RESOURCE_KEYS:
            avail = float(self.board.resources.get(key, 0) or 0)
            util[key] = out[key] / avail if avail > 0 else (0.0 if out[key] == 0 else math.inf)
        out["utilization"] = util
        return out

    def baseline(self, target: Target) -> dict:
        """The unprotected original design: figures, clean accuracy, accuracy under the BER."""
        key = (target.ber, target.sites)
        if key not in self._baseline:
            fig = self.figures(self.design0, self.layers0, None)
            acc = self._campaign(self.design0, target)
            self._baseline[key] = {
                "LUT": fig["LUT"], "FF": fig["FF"], "DSP": fig["DSP"], "BRAM_18K": fig["BRAM_18K"],
                "latency_cycles": fig["latency_cycles"], "source": fig["source"],
                "utilization": {k: _clean_float(v) for k, v in fig["utilization"].items()},
                "clean_accuracy": self.clean_accuracy,
                "accuracy": {"mean": acc.accuracy_mean, "ci_low": acc.ci_low, "ci_high": acc.ci_high},
                "accuracy_loss": self.clean_accuracy - acc.accuracy_mean,
                "ber": target.ber, "design": str(self.design0.project_dir), "plan": {"layers": {}},
            }
        return dict(self._baseline[key])

    def _campaign(self, design, target: Target):
        return run_campaign(design, self.x, self.y, FaultModel(ber=target.ber, sites=target.sites),
                            repeats=self.repeats, seed=self.seed, workers=self.workers)

    def evaluate(self, knobs, spec: ProtectionSpec, target: Target) -> dict:
        """Build, cost and fault-inject one candidate; returns its figures (JSON-ready)."""
        start = _now()
        knobs = knobs if isinstance(knobs, AlgorithmKnobs) else AlgorithmKnobs.from_dict(knobs)
        model, model_file, retrain = self.model_for(knobs)
        if knobs.is_identity():
            design_layers = self.layers0
        else:  # the retrained model's own widths (no C++ compile needed for that)
            base_design = build_design(model, board=self.board, compile=False, hls_config=self.hls_config)
            design_layers = layers_with_weights(base_design.layers, model)
        plan = self.plan_for(spec, design_layers)
        memo_key = (knobs.key(), plan.key(), target)
        if memo_key in self._memo:
            return dict(self._memo[memo_key], seconds=_now() - start, memoized=True)
        design = build_design(model, plan, board=self.board, hls_config=self.hls_config)
        fig = self.figures(design, design_layers, plan)
        acc = self._campaign(design, target)
        base = self.baseline(target)
        constraints = _constraints_of(fig, acc.ci_low, base, target)
        entry = {
            "plan": plan.to_dict(),
            "plan_yaml": plan.to_yaml(),
            "spec": _spec_summary(spec, design_layers),
            "knobs": knobs.to_dict(),
            "LUT": fig["LUT"], "FF": fig["FF"], "DSP": fig["DSP"], "BRAM_18K": fig["BRAM_18K"],
            "latency_cycles": fig["latency_cycles"], "source": fig["source"],
            "utilization": {k: _clean_float(v) for k, v in fig["utilization"].items()},
            "accuracy": {"mean": acc.accuracy_mean, "ci_low": acc.ci_low, "ci_high": acc.ci_high},
            "clean_accuracy": acc.clean_accuracy,
            "accuracy_loss": self.clean_accuracy - acc.accuracy_mean,
            "lut_overhead": fig["LUT"] / base["LUT"] - 1.0 if base["LUT"] else None,
            "latency_overhead": (fig["latency_cycles"] / base["latency_cycles"] - 1.0
                                 if base["latency_cycles"] else None),
            "constraints": constraints,
            "feasible": all(c <= 0 for c in constraints),
            "design": str(design.project_dir),
            "model_file": model_file,
            "retrain": retrain,
        }
        self._memo[memo_key] = entry
        return dict(entry, seconds=_now() - start, memoized=False)


def _constraints_of(fig: dict, ci_low: float, base: dict, target: Target) -> list[float]:
    acc = (base["clean_accuracy"] - float(target.max_accuracy_drop)) - float(ci_low)
    lat = (fig["latency_cycles"] / base["latency_cycles"] - 1.0 if base["latency_cycles"] else 0.0) \
        - float(target.max_latency_overhead) - LATENCY_TOLERANCE
    fit = max(fig["utilization"][k] for k in RESOURCE_KEYS) - 1.0
    return [float(acc), float(lat), float(fit) if math.isfinite(fit) else 1e9]


def _spec_summary(spec: ProtectionSpec, layers) -> dict:
    return {info.name: {"critical": int(min(spec.critical.get(info.name, 0), info.n_out)),
                        "critical_fraction": round(min(spec.critical.get(info.name, 0), info.n_out) / info.n_out, 4),
                        "msbs": int(min(spec.msbs.get(info.name, 0), info.accum_type.width))}
            for info in layers}


def _project_report(project_dir):
    """``read_project_report`` of a design that has real HLS / Vivado reports, else None."""
    directory = Path(project_dir)
    # a cached fpga-ft design without vendor runs has no *_prj / report directories: skip the walk
    if not any(p.is_dir() and (p.name.endswith("_prj") or p.name.startswith("vivado")) for p in directory.iterdir()) \
            and not any(directory.glob("*.rpt")):
        return None
    try:
        return read_project_report(directory)
    except FpgaFtError:
        return None


def _neuron_ranking(ev: Evaluator) -> tuple[dict[str, list[int]], dict]:
    """Vulnerability ranking of the original model's neurons, cached on disk."""
    x, y = (ev.x_train, ev.y_train) if ev.has_training_data else (ev.x, ev.y)
    data_fp = ev.train_fp if ev.has_training_data else ev.data_fp
    key_data = {"model": ev.model_fp, "board": ev.board.key, "data": data_fp, "method": ev.ranking_method,
                "repeats": ev.ranking_repeats, "seed": ev.seed, "v": 1}
    if ev.hls_config is not None:
        key_data["hls_config"] = ev.hls_config.key()
    key_src = json.dumps(key_data, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    path = cache_root() / "rankings" / f"{key}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return {k: [int(i) for i in v] for k, v in data["order"].items()}, data["info"]
    if ev.ranking_method not in V.METHODS:
        raise FpgaFtError(f"unknown vulnerability method '{ev.ranking_method}' (known: {', '.join(V.METHODS)})")
    start = _now()
    inputs = V.AnalysisInputs(design=ev.design0, x=x, y=y, model=ev.model, x_train=ev.x_train, y_train=ev.y_train,
                              repeats=ev.ranking_repeats, seed=ev.seed, progress=False)
    result = V.compute_scores(ev.ranking_method, inputs)
    secondary = result.details.get("output_error") if ev.ranking_method == "injection" else None
    ranked = V.rank_neurons(result.scores, secondary, ev.layers0)
    order = {info.name: [e["index"] for e in ranked if e["layer"] == info.name] for info in ev.layers0}
    info = {"method": ev.ranking_method, "repeats": ev.ranking_repeats, "seconds": round(_now() - start, 2),
            "data": "train" if ev.has_training_data else "test",
            "scores": {name: [float(s) for s in np.asarray(v)] for name, v in result.scores.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"order": order, "info": info}))
    os.replace(tmp, path)
    return order, info


# ------------------------------------------------------------------------------------------
# Search space
# ------------------------------------------------------------------------------------------
def _max_critical(info) -> int:
    """Critical neurons a layer can have: none in a time-shared layer (no FullTMR form there)."""
    return 0 if getattr(info, "time_shared", False) else int(info.n_out)


@dataclass
class SearchSpace:
    """Optuna parameters of one model (names ``critical:L``, ``msbs:L``, and with algorithm
    knobs ``wbits:L``, ``abits:L``, ``clip:L``, ``sparsity:L``)."""

    layers: list
    knob_infos: Mapping
    algorithm: bool
    sparsity_max: float = 0.8
    sparsity_step: float = 0.1

    def bounds(self) -> dict:
        out = {}
        for info in self.layers:
            out[f"critical:{info.name}"] = (0, _max_critical(info))
            out[f"msbs:{info.name}"] = (0, info.accum_type.width)
            if self.algorithm:
                k = self.knob_infos[info.name]
                wb = k.weight_bits
                out[f"wbits:{info.name}"] = (max(2, wb - 3), wb) if wb else (4, 8)
                out[f"sparsity:{info.name}"] = (0.0, self.sparsity_max)
                if k.activation is not None:
                    ab, ai = k.activation_bits, k.activation_integer
                    out[f"abits:{info.name}"] = (max(2, ab - 3), ab)
                    out[f"clip:{info.name}"] = (max(0, ai - 1), ai + 1)
        return out

    def to_dict(self) -> dict:
        return {name: list(b) for name, b in self.bounds().items()}

    def suggest(self, trial):
        """(AlgorithmKnobs, ProtectionSpec) from an Optuna trial."""
        critical, msbs, knobs = {}, {}, {}
        for info in self.layers:
            name = info.name
            critical[name] = trial.suggest_int(f"critical:{name}", 0, _max_critical(info))
            msbs[name] = trial.suggest_int(f"msbs:{name}", 0, info.accum_type.width)
            if self.algorithm:
                k = self.knob_infos[name]
                lo, hi = self.bounds()[f"wbits:{name}"]
                wbits = trial.suggest_int(f"wbits:{name}", lo, hi)
                sparsity = trial.suggest_float(f"sparsity:{name}", 0.0, self.sparsity_max, step=self.sparsity_step)
                abits = clip = None
                if k.activation is not None:
                    alo, ahi = self.bounds()[f"abits:{name}"]
                    abits = trial.suggest_int(f"abits:{name}", alo, ahi)
                    clo, chi = self.bounds()[f"clip:{name}"]
                    clip = trial.suggest_int(f"clip:{name}", clo, chi)
                knobs[name] = _layer_knobs(k, wbits, abits, clip, sparsity)
        return AlgorithmKnobs({n: v for n, v in knobs.items() if not v.is_identity()}), ProtectionSpec(critical, msbs)

    def params(self, knobs=None, spec: ProtectionSpec | None = None) -> dict:
        """Optuna parameters of a candidate (for ``enqueue_trial``); unset knobs = original."""
        knobs = knobs or AlgorithmKnobs()
        spec = spec or ProtectionSpec()
        out = {}
        for info in self.layers:
            name = info.name
            out[f"critical:{name}"] = int(min(spec.critical.get(name, 0), _max_critical(info)))
            out[f"msbs:{name}"] = int(min(spec.msbs.get(name, 0), info.accum_type.width))
            if self.algorithm:
                k = self.knob_infos[name]
                lk = knobs.for_layer(name)
                lo, hi = self.bounds()[f"wbits:{name}"]
                wb = lk.weight_bits if lk.weight_bits is not None else (k.weight_bits or hi)
                out[f"wbits:{name}"] = int(min(max(wb, lo), hi))
                sp = round(round(float(lk.sparsity) / self.sparsity_step) * self.sparsity_step, 6)
                out[f"sparsity:{name}"] = float(min(max(sp, 0.0), self.sparsity_max))
                if k.activation is not None:
                    alo, ahi = self.bounds()[f"abits:{name}"]
                    ab = lk.activation_bits if lk.activation_bits is not None else k.activation_bits
                    out[f"abits:{name}"] = int(min(max(ab, alo), ahi))
                    clo, chi = self.bounds()[f"clip:{name}"]
                    ci = lk.clip_integer if lk.clip_integer is not None else k.activation_integer
                    out[f"clip:{name}"] = int(min(max(ci, clo), chi))
        return out

    def from_params(self, params: Mapping):
        """(AlgorithmKnobs, ProtectionSpec) from stored trial parameters."""
        critical = {i.name: int(params.get(f"critical:{i.name}", 0)) for i in self.layers}
        msbs = {i.name: int(params.get(f"msbs:{i.name}", 0)) for i in self.layers}
        knobs = {}
        if self.algorithm:
            for info in self.layers:
                k = self.knob_infos[info.name]
                knobs[info.name] = _layer_knobs(k, params.get(f"wbits:{info.name}"), params.get(f"abits:{info.name}"),
                                                params.get(f"clip:{info.name}"),
                                                float(params.get(f"sparsity:{info.name}", 0.0)))
        return AlgorithmKnobs({n: v for n, v in knobs.items() if not v.is_identity()}), ProtectionSpec(critical, msbs)


def _layer_knobs(info, wbits, abits, clip, sparsity):
    wbits = None if wbits is None or wbits == info.weight_bits else int(wbits)
    abits = None if abits is None or abits == info.activation_bits else int(abits)
    clip = None if clip is None or clip == info.activation_integer else int(clip)
    return LayerKnobs(weight_bits=wbits, bias_bits=wbits, activation_bits=abits, clip_integer=clip,
                      sparsity=round(float(sparsity or 0.0), 6))


def default_seeds(ev: Evaluator, space: SearchSpace) -> list[tuple[str, object, ProtectionSpec]]:
    """Sensible first candidates: uniform TMR-CRT1..3, the most vulnerable neurons (by the
    ranking's scores: those above 50 / 20 / 5 % of the model's largest score), each layer
    alone fully critical (latency-friendly), a uniform 25 % of critical neurons and, with
    algorithm knobs, a coarser-and-pruned model with its most vulnerable neurons critical."""
    layers = ev.layers0
    seeds: list[tuple[str, object, ProtectionSpec]] = []
    empty = AlgorithmKnobs()
    scores = ev.ranking_info().get("scores", {})
    peak = max((max(v) for v in scores.values() if len(v)), default=0.0)

    def above(share):
        counts = {}
        for info in layers:
            s = np.asarray(scores.get(info.name, []), dtype=float)
            counts[info.name] = int(np.sum(s >= share * peak)) if peak > 0 and s.size else 0
        return ProtectionSpec(counts, {i.name: 0 for i in layers})

    seeds.append(("vulnerable>20%", empty, above(0.2)))
    seeds.append(("TMR-CRT2", empty, ProtectionSpec.uniform(layers, msbs=2)))
    seeds.append(("vulnerable>50%", empty, above(0.5)))
    seeds.append(("vulnerable>5%", empty, above(0.05)))
    totals = {i.name: float(np.clip(np.asarray(scores.get(i.name, [0.0]), dtype=float), 0, None).sum()) for i in layers}
    for info in sorted(layers, key=lambda i: -totals[i.name]):
        seeds.append((f"only-{info.name}-critical", empty,
                      ProtectionSpec({info.name: info.n_out}, {i.name: 0 for i in layers})))
    seeds.append(("TMR-CRT1", empty, ProtectionSpec.uniform(layers, msbs=1)))
    seeds.append(("TMR-CRT3", empty, ProtectionSpec.uniform(layers, msbs=3)))
    seeds.append(("critical-25%", empty, ProtectionSpec.uniform(layers, fraction=0.25)))
    if space.algorithm:
        knobs = {}
        for info in layers:
            k = ev.knob_infos[info.name]
            wb = max(2, (k.weight_bits or 8) - 2)
            knobs[info.name] = LayerKnobs(weight_bits=wb, bias_bits=wb, sparsity=0.5)
        seeds.insert(1, ("coarse+pruned, vulnerable>20%", AlgorithmKnobs(knobs), above(0.2)))
    return seeds


# ------------------------------------------------------------------------------------------
# Storage, locking, liveness
# ------------------------------------------------------------------------------------------
def default_storage_url() -> str:

    directory = cache_root() / "optuna"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / STORAGE_FILE}"


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database)
    return None


def display_url(url: str) -> str:
    """``url`` with any password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


POSTGRES_DRIVERS = (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2"))


def normalize_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: a bare ``postgresql://`` means
    psycopg 3 to SQLAlchemy 2.1 and psycopg2 to 2.0; use whichever of the two is importable."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.drivername == "postgresql":
        for module, driver in POSTGRES_DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return u.set(drivername=driver).render_as_string(hide_password=False)
    return url


def make_storage(url: str):
    """An Optuna RDB storage with heartbeats for ``url`` (one-line error when unusable)."""
    import optuna
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        raise FpgaFtError(f"--storage must be an SQLAlchemy URL (sqlite:///FILE, postgresql://USER@HOST/DB), "
                          f"got {url!r}") from None
    url = normalize_url(url)
    backend = u.get_backend_name()
    engine_kwargs: dict = {}
    if backend == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 120}}
    else:
        engine_kwargs = {"pool_pre_ping": True}

    # Optuna >= 4.9 calls it heartbeat_stale_trial_callback, earlier versions failed_trial_callback
    parameters = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters \
        else "failed_trial_callback"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS, **{callback: _requeue_stale})
        except ImportError as exc:
            hint = " (pip install psycopg2-binary)" if backend == "postgresql" else ""
            name = getattr(exc, "name", None) or getattr(exc.__cause__, "name", None) or "module"
            raise FpgaFtError(f"storage {display_url(url)}: missing database driver {name}{hint}") from None
        except Exception as exc:  # sqlalchemy OperationalError etc.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FpgaFtError(f"cannot open storage {display_url(url)}: {first}") from None


_LOCK_ENGINES: dict = {}


@contextlib.contextmanager
def study_lock(url: str, study_name: str):
    """Serialise asking for trials (and seeding) between workers of one study."""
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    path = _sqlite_path(url)
    if backend == "sqlite":
        if path is None:
            yield
            return
        with file_lock(path.with_name(path.name + ".lock")):
            yield
        return
    if backend in ("postgresql", "mysql"):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = _LOCK_ENGINES.get(url)
        if engine is None:
            engine = _LOCK_ENGINES[url] = sqlalchemy.create_engine(normalize_url(url), poolclass=NullPool)
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            else:
                conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, 600)"), {"k": f"fpgaft-{key}"})
            try:
                yield
            finally:
                if backend == "postgresql":
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                else:
                    conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"fpgaft-{key}"})
        return
    yield


def _proc_start(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def worker_token() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _proc_start(pid)}


def _is_dead_here(token) -> bool:
    """True when ``token`` names a process of this host that no longer exists."""
    if not isinstance(token, Mapping) or token.get("host") != socket.gethostname():
        return False
    pid = int(token.get("pid", -1))
    if pid <= 0:
        return False
    if pid == os.getpid() and token.get("start") == _proc_start(pid):
        return False
    if Path("/proc").is_dir():
        start = _proc_start(pid)
        return start is None or (token.get("start") is not None and start != token.get("start"))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _requeue(study, trial) -> None:
    """Queue a failed (killed / stale) trial's parameters again, at most MAX_RETRIES times."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= MAX_RETRIES or not trial.params:
        return
    attrs = {"retry_of": trial.number, "retries": retries + 1}
    if "label" in trial.user_attrs:
        attrs["label"] = trial.user_attrs["label"]
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


def _requeue_stale(study, trial) -> None:  # heartbeat_stale_trial_callback
    _requeue(study, trial)


def reap_dead_trials(study) -> list[int]:
    """Fail RUNNING trials whose worker process is gone (same host) or whose heartbeat is
    stale (any host); re-queue their parameters. Returns the numbers of the failed trials."""
    import optuna
    from optuna.trial import TrialState

    failed = []
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        token = trial.user_attrs.get("worker")
        # a worker killed between asking and signing its trial: no token, no heartbeat
        orphan = token is None and trial.datetime_start is not None and \
            (now - trial.datetime_start).total_seconds() > GRACE_SECONDS
        if orphan or _is_dead_here(token):
            try:
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            except Exception:  # finished meanwhile by someone else
                continue
            _requeue(study, trial)
            failed.append(trial.number)
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return failed + sorted(after - before - set(failed))


class _Heartbeat:
    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a lost connection must not kill the evaluation
                pass
            if self.stop.wait(HEARTBEAT_SECONDS):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


# ------------------------------------------------------------------------------------------
# Study naming and sampling
# ------------------------------------------------------------------------------------------
def _settings_hash(settings: Mapping) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def study_settings(ev: Evaluator, target: Target, multi_objective: bool, algorithm: bool) -> dict:
    settings = ev.settings()
    settings.update({"target": target.to_dict(), "multi_objective": bool(multi_objective),
                     "algorithm": bool(algorithm)})
    return settings


def default_study_name(ev: Evaluator, target: Target, multi_objective: bool, algorithm: bool) -> str:
    """``<model>-<fingerprint>-ber<B>-<board>-drop<D>-lat<L>-<so|mo>[-alg]-<settings hash>``."""
    stem = Path(str(ev.model_path or ev.model.name)).stem.replace(" ", "_")[:40]
    settings = study_settings(ev, target, multi_objective, algorithm)
    return (f"{stem}-{ev.model_fp[:8]}-ber{target.ber:g}-{ev.board.key}-drop{target.max_accuracy_drop:g}"
            f"-lat{target.max_latency_overhead:g}-{'mo' if multi_objective else 'so'}{'-alg' if algorithm else ''}"
            f"-{_settings_hash(settings)}")


def _constraints_func(trial) -> Sequence[float]:
    values = trial.user_attrs.get("constraints")
    if not values or len(values) != len(CONSTRAINT_NAMES):
        return [1.0] * len(CONSTRAINT_NAMES)
    return [float(v) for v in values]


def make_sampler(multi_objective: bool, seed: int | None, n_existing: int, trials: int):
    """TPE (single objective) or NSGA-II (LUT vs accuracy), both with the constraints. The
    seed is offset by the number of trials already in the study so that a resumed run does
    not draw the first run's random candidates again."""
    import optuna

    derived = None if seed is None else (int(seed) * 1_000_003 + int(n_existing)) % (2**32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if multi_objective:
            population = max(4, min(50, trials // 3 or 4))
            return optuna.samplers.NSGAIISampler(population_size=population, constraints_func=_constraints_func,
                                                 seed=derived)
        return optuna.samplers.TPESampler(constraints_func=_constraints_func, seed=derived, multivariate=True,
                                          n_startup_trials=min(10, max(3, trials // 3)), constant_liar=True)


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------
ENTRY_KEYS = ("plan", "knobs", "spec", "LUT", "FF", "DSP", "BRAM_18K", "latency_cycles", "accuracy",
              "clean_accuracy", "accuracy_loss", "lut_overhead", "latency_overhead", "utilization", "constraints",
              "feasible", "source", "design", "model_file", "label")


def entry_of(trial) -> dict:
    """The JSON form of a completed trial (from its user attributes)."""
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


def pareto_front(entries: Sequence[dict]) -> list[dict]:
    """Feasible entries not dominated in (LUT lower, accuracy mean higher), by LUT."""
    feasible = [e for e in entries if e.get("feasible")]
    front = []
    for e in feasible:
        lut, acc = e["LUT"], e["accuracy"]["mean"]
        dominated = any((o["LUT"] <= lut and o["accuracy"]["mean"] >= acc)
                        and (o["LUT"] < lut or o["accuracy"]["mean"] > acc) for o in feasible)
        if not dominated:
            front.append(e)
    unique = {}
    for e in sorted(front, key=lambda e: (e["LUT"], -e["accuracy"]["mean"], e["number"])):
        unique.setdefault((e["LUT"], round(e["accuracy"]["mean"], 9)), e)
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
        return min(feasible, key=lambda e: (e["LUT"], -e["accuracy"]["ci_low"], e["number"]))

    @property
    def closest(self) -> dict | None:
        """With no feasible trial: the one that violates the constraints least."""
        if not self.entries:
            return None
        return min(self.entries, key=lambda e: (_violation(e), e["LUT"], e["number"]))

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
            "objective": ["LUT (minimise)", "accuracy under BER (maximise)"] if self.multi_objective
            else ["LUT (minimise)"],
            "constraints": list(CONSTRAINT_NAMES),
            "target": self.settings.get("target"),
            "best": _public(self.best),
            "closest": _public(self.closest) if self.best is None else None,
            "pareto": [_public(e) for e in self.pareto],
            "trials": {"requested": self.requested, "count": len(self.trials), "complete": len(complete),
                       "feasible": sum(1 for e in self.entries if e.get("feasible")),
                       "run_here": self.run_trials, "items": self.trials},
            "baseline": self.baseline,
            "seconds_per_trial": self.seconds_per_trial,
            "seconds_this_run": round(self.run_seconds, 2),
            "settings": self.settings,
        }


def _public(entry: dict | None) -> dict | None:
    if entry is None:
        return None
    keys = ("number", "label", "plan", "knobs", "spec", "LUT", "FF", "DSP", "BRAM_18K", "latency_cycles", "accuracy",
            "clean_accuracy", "accuracy_loss", "lut_overhead", "latency_overhead", "feasible", "constraints",
            "utilization", "source", "model_file", "design", "seconds")
    return {k: entry.get(k) for k in keys if k in entry}


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


# ------------------------------------------------------------------------------------------
# The optimizer
# ------------------------------------------------------------------------------------------
def optimize(ev: Evaluator, target: Target, *, trials: int, storage: str | None = None, study_name: str | None = None,
             multi_objective: bool = False, seed: int | None = 0, algorithm: bool | None = None,
             extra_seeds: Iterable[tuple[str, object, ProtectionSpec]] = (), use_default_seeds: bool = True,
             progress: bool = True, log: Callable[[str], None] | None = None,
             poll_seconds: float = POLL_SECONDS, refine: bool = True) -> OptimizeResult:
    """Run (or continue) the study until it holds ``trials`` COMPLETE trials.

    Args:
        ev: the model/data/board evaluator.
        target: BER and constraints.
        trials: COMPLETE trials wanted in the study (trials already there count).
        storage: SQLAlchemy URL (default: SQLite file in the design cache, ``default_storage_url()``).
        study_name: default :func:`default_study_name` (model fingerprint, BER, board, constraints
            and a hash of every other setting).
        multi_objective: NSGA-II on (LUT, accuracy under BER) instead of TPE on LUT.
        seed: sampler seed (campaigns use the evaluator's seed).
        algorithm: search algorithm knobs (default: when the evaluator has training data).
        extra_seeds: (label, AlgorithmKnobs, ProtectionSpec) candidates to enqueue first.
        refine: single objective: once a feasible trial exists, two of every three new trials
            are the cheapest untried neighbour of the best feasible trial (see
            :func:`_next_neighbor`), the third comes from the TPE sampler.
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 0:
        raise FpgaFtError(f"--trials must be an integer >= 0, got {trials!r}")
    algorithm = ev.has_training_data if algorithm is None else bool(algorithm)
    if algorithm and not ev.has_training_data:
        raise FpgaFtError("algorithm knobs need training data (--train T.npz)")
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    url = storage or default_storage_url()
    settings = study_settings(ev, target, multi_objective, algorithm)
    name = study_name or default_study_name(ev, target, multi_objective, algorithm)
    directions = ["minimize", "maximize"] if multi_objective else ["minimize"]
    space = SearchSpace(ev.layers0, ev.knob_infos, algorithm)
    store = make_storage(url)
    start = _now()

    baseline = ev.baseline(target)
    with study_lock(url, name):
        try:
            study = optuna.create_study(storage=store, study_name=name, directions=directions, load_if_exists=True)
        except ValueError as exc:
            raise FpgaFtError(f"study '{name}' in {display_url(url)}: {exc}") from None
        if [d.name.lower() for d in study.directions] != directions:
            raise FpgaFtError(f"study '{name}' exists with directions "
                              f"{[d.name.lower() for d in study.directions]}; this run needs {directions} "
                              "(use another --study name)")
        stored = study.user_attrs.get("settings")
        if stored is None:
            study.set_user_attr("settings", settings)
            study.set_user_attr("baseline", _jsonable(baseline))
            study.set_user_attr("search_space", space.to_dict())
            study.set_user_attr("constraint_names", list(CONSTRAINT_NAMES))
        elif _comparable(stored) != _comparable(settings):
            diff = sorted(k for k in set(stored) | set(settings)
                          if _comparable(stored).get(k) != _comparable(settings).get(k))
            raise FpgaFtError(f"study '{name}' in {display_url(url)} was created with other settings "
                              f"({', '.join(diff)}); use another --study name or the same options")
        seeds = list(extra_seeds) + (list(default_seeds(ev, space)) if use_default_seeds else [])
        if seeds:
            if "ranking" not in study.user_attrs:
                study.set_user_attr("ranking", {"order": ev.ranking(), **{k: v for k, v in ev.ranking_info().items()
                                                                           if k != "scores"}})
            done = set(study.user_attrs.get("seeds", []))
            queued = {_params_key(t.params) for t in study.get_trials(deepcopy=False) if t.params}
            queued |= {_params_key(t.system_attrs.get("fixed_params", {}))
                       for t in study.get_trials(deepcopy=False) if t.system_attrs.get("fixed_params")}
            added = []
            # queue no more than the trials still to run: the study never holds unrun seeds
            # (a later run asking for more trials queues the rest)
            busy = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING,
                                                            TrialState.WAITING))
            budget = trials - len(busy)
            for label, knobs, spec in seeds:
                if label in done:
                    continue
                if budget <= 0:
                    break
                params = space.params(knobs, spec)
                added.append(label)
                if _params_key(params) in queued:  # the same candidate as an earlier seed / trial
                    continue
                queued.add(_params_key(params))
                study.enqueue_trial(params, user_attrs={"label": label})
                budget -= 1
            if added:
                study.set_user_attr("seeds", sorted(done | set(added)))

    n_existing = len(study.get_trials(deepcopy=False))
    study = optuna.load_study(study_name=name, storage=store,
                              sampler=make_sampler(multi_objective, seed, n_existing, trials))

    bar = None
    if progress:
        from tqdm import tqdm

        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        bar = tqdm(total=trials, initial=min(complete, trials), desc=f"optimize BER {fmt_ber(target.ber)}",
                   unit="trial", file=sys.stderr, dynamic_ncols=True, leave=True)
    token = worker_token()
    run_trials, failures_in_row, reaped, failed_here = 0, 0, [], []
    try:
        while True:
            trial = None
            with study_lock(url, name):
                reaped += reap_dead_trials(study)
                # counted from the database itself, not optuna's per-process trial cache (which
                # may miss a trial another worker started: a surplus trial was seen in CI)
                complete, running = _count_trials(store, study, TrialState.COMPLETE, TrialState.RUNNING)
                if complete >= trials:
                    break
                if complete + running < trials:
                    if refine and not multi_objective and _refine_turn(study):
                        neighbor = _next_neighbor(ev, space, study, target)
                        if neighbor is not None:
                            study.enqueue_trial(neighbor[0], user_attrs={"label": neighbor[1]})
                    trial = study.ask()
                    trial.set_user_attr("worker", token)
                    if "label" not in trial.user_attrs:
                        trial.set_user_attr("label", "sampler: NSGA-II" if multi_objective else "sampler: TPE")
            if bar is not None:
                bar.n = min(complete, trials)
                bar.refresh()
            if trial is None:  # other workers are running the last trials: wait for them
                time.sleep(poll_seconds)
                continue
            with _Heartbeat(store, trial._trial_id):
                try:
                    knobs, spec = space.suggest(trial)
                    entry = ev.evaluate(knobs, spec, target)
                except KeyboardInterrupt:
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    _requeue(study, _frozen(study, trial.number))
                    raise
                except Exception as exc:  # noqa: BLE001 - record and go on
                    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    trial.set_user_attr("error", f"{type(exc).__name__}: {message}")
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    failed_here.append(trial.number)
                    failures_in_row += 1
                    log(f"trial {trial.number} failed: {type(exc).__name__}: {message}")
                    if failures_in_row >= MAX_CONSECUTIVE_FAILURES:
                        raise FpgaFtError(f"{failures_in_row} trials in a row failed; last: {message}") from None
                    continue
                failures_in_row = 0
                delay = float(os.environ.get(TRIAL_DELAY_ENV) or 0)
                if delay > 0:  # tests: keep trials running long enough to kill a worker mid-trial
                    time.sleep(delay)
                for key in ENTRY_KEYS:
                    if key in entry and key != "label":
                        trial.set_user_attr(key, _jsonable(entry[key]))
                trial.set_user_attr("plan_yaml", entry["plan_yaml"])
                trial.set_user_attr("retrain", _jsonable(entry.get("retrain", {})))
                trial.set_user_attr("evaluation_seconds", round(entry["seconds"], 3))
                trial.set_user_attr("memoized", bool(entry.get("memoized")))
                values = [float(entry["LUT"]), float(entry["accuracy"]["mean"])] if multi_objective \
                    else float(entry["LUT"])
                study.tell(trial, values, skip_if_finished=True)
                run_trials += 1
            if bar is not None:
                best = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                        if t.user_attrs.get("feasible")]
                bar.set_postfix_str(f"feasible {len(best)}, best LUT "
                                    f"{min(t.user_attrs['LUT'] for t in best):,}" if best else "no feasible yet")
    finally:
        if bar is not None:
            bar.n = min(len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))), trials)
            bar.close()
    return _collect(study, trials, multi_objective, storage=display_url(url), run_trials=run_trials,
                    run_seconds=_now() - start, failed_here=failed_here, reaped=reaped)


REFINE_EVERY = 3  # of every REFINE_EVERY trials after the first feasible one, all but one refine


def _count_trials(store, study, *states) -> list[int]:
    """Trials of ``study`` in each of ``states``, read from ``store`` (the uncached storage)."""
    trials = store.get_all_trials(study._study_id, deepcopy=False, states=tuple(states))
    return [sum(1 for t in trials if t.state == state) for state in states]


def _refine_turn(study) -> bool:
    """True when the next trial should refine the best feasible trial: no queued trial waits,
    a feasible trial exists, and the trial count is not a multiple of REFINE_EVERY."""
    from optuna.trial import TrialState

    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return False
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not any(t.user_attrs.get("feasible") for t in complete):
        return False
    return len(study.get_trials(deepcopy=False)) % REFINE_EVERY != 0


def _params_key(params: Mapping) -> tuple:
    return tuple(sorted((k, round(float(v), 6)) for k, v in params.items()))


def _next_neighbor(ev: "Evaluator", space: SearchSpace, study, target: Target):
    """The untried one-step-cheaper neighbour of the best feasible trial with the largest
    expected LUT saving, as (params, label), or None.

    Moves: one protected MSB less on a layer; a quarter fewer critical neurons on a layer;
    and with algorithm knobs 0.1 more sparsity, one weight bit less or one activation bit
    less on a layer. Protection moves are ranked by their estimated LUTs (exact estimate on
    the best trial's model, no compile), knob moves by the layer's LUT share times the
    relative change. Neighbours already in the study (any state) are skipped."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    feasible = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    if not feasible:
        return None
    best = min(feasible, key=lambda t: (t.user_attrs["LUT"], -t.user_attrs["accuracy"]["ci_low"], t.number))
    seen = {_params_key(t.params) for t in trials if t.params}
    seen |= {_params_key(t.params) for t in trials if t.state == TrialState.WAITING}
    base = dict(best.params)
    if set(base) != set(space.bounds()):
        return None
    knobs, spec = space.from_params(base)
    try:
        model, _, _ = ev.model_for(knobs)
        layers = ev.layers0 if knobs.is_identity() else layers_with_weights(
            build_design(model, board=ev.board, compile=False, hls_config=ev.hls_config).layers, model)
        est0 = estimate_resources(layers, ev.plan_for(spec, layers), ev.board.clock_mhz)
    except Exception:  # noqa: BLE001 - no refinement then; the sampler goes on
        return None
    share = {row["name"]: row["LUT"] for row in est0.per_layer}
    bounds = space.bounds()
    moves = []

    def add(params, label, saving):
        if _params_key(params) not in seen:
            moves.append((-saving, label, params))

    for info in layers:
        name = info.name
        k = base[f"msbs:{name}"]
        if k > 0:
            params = dict(base, **{f"msbs:{name}": k - 1})
            _, sp = space.from_params(params)
            lut = estimate_resources(layers, ev.plan_for(sp, layers), ev.board.clock_mhz).LUT
            add(params, f"refine #{best.number}: {name} msbs {k}->{k - 1}", est0.LUT - lut)
        c = base[f"critical:{name}"]
        if c > 0:
            new_c = max(0, c - max(1, int(math.ceil(0.25 * c))))
            params = dict(base, **{f"critical:{name}": new_c})
            _, sp = space.from_params(params)
            lut = estimate_resources(layers, ev.plan_for(sp, layers), ev.board.clock_mhz).LUT
            add(params, f"refine #{best.number}: {name} critical {c}->{new_c}", est0.LUT - lut)
        if space.algorithm:
            sp_key, wb_key, ab_key = f"sparsity:{name}", f"wbits:{name}", f"abits:{name}"
            s0 = float(base[sp_key])
            if s0 + space.sparsity_step <= space.sparsity_max + 1e-9:
                s1 = round(s0 + space.sparsity_step, 6)
                add(dict(base, **{sp_key: s1}), f"refine #{best.number}: {name} sparsity {s0:g}->{s1:g}",
                    share.get(name, 0) * space.sparsity_step / max(1e-6, 1.0 - s0))
            if base[wb_key] > bounds[wb_key][0]:
                w = base[wb_key]
                add(dict(base, **{wb_key: w - 1}), f"refine #{best.number}: {name} weight bits {w}->{w - 1}",
                    share.get(name, 0) / max(1, w))
            if ab_key in base and base[ab_key] > bounds[ab_key][0]:
                a = base[ab_key]
                add(dict(base, **{ab_key: a - 1}), f"refine #{best.number}: {name} activation bits {a}->{a - 1}",
                    0.5 * share.get(name, 0) / max(1, a))
    if not moves:
        return None
    moves.sort(key=lambda m: (m[0], m[1]))
    _, label, params = moves[0]
    return params, label


def _frozen(study, number: int):
    for t in study.get_trials(deepcopy=False):
        if t.number == number:
            return t
    raise KeyError(number)


def _comparable(settings: Mapping) -> dict:
    """Settings without the fields that do not change results (version strings)."""
    return {k: v for k, v in json.loads(json.dumps(settings, default=str)).items() if k not in ("fpga_ft", "model")}


def _jsonable(value):

    return json.loads(json.dumps(value, default=json_default))




# ------------------------------------------------------------------------------------------
# Plot
# ------------------------------------------------------------------------------------------
def plot_pareto(path, result: OptimizeResult, title: str | None = None) -> None:
    """PNG: LUT vs accuracy under the BER for every completed trial (feasible filled, infeasible
    hollow, CI as error bars), the Pareto front of the feasible ones, the unprotected baseline
    and the accuracy target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = result.entries
    base = result.baseline
    target = result.settings.get("target", {})
    fig, ax = plt.subplots(figsize=(8.5, 5.6), layout="constrained")

    def plot_set(items, **kw):
        if not items:
            return
        lut = np.array([e["LUT"] for e in items], dtype=float)
        mean = np.array([e["accuracy"]["mean"] for e in items]) * 100
        lo = mean - np.array([e["accuracy"]["ci_low"] for e in items]) * 100
        hi = np.array([e["accuracy"]["ci_high"] for e in items]) * 100 - mean
        marker = kw.pop("marker", "o")
        ax.errorbar(lut, mean, yerr=[lo, hi], fmt=marker, capsize=2, elinewidth=0.8, **kw)

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
        ax.step([e["LUT"] for e in front], [e["accuracy"]["mean"] * 100 for e in front], where="post",
                color="tab:green", linewidth=1.5, label="Pareto front (feasible)")
    best = result.best
    if best:
        ax.plot(best["LUT"], best["accuracy"]["mean"] * 100, marker="*", markersize=16, color="tab:green",
                markeredgecolor="black", linestyle="none", label=f"best: {best['LUT']:,} LUT (trial {best['number']})")
    if base:
        ax.plot(base["LUT"], base["accuracy"]["mean"] * 100, marker="X", markersize=11, color="tab:red",
                linestyle="none", label=f"unprotected baseline: {base['LUT']:,} LUT")
        clean = base["clean_accuracy"] * 100
        ax.axhline(clean, color="black", linestyle=":", linewidth=1, label=f"clean accuracy {clean:.2f} %")
        if target:
            floor = clean - float(target.get("max_accuracy_drop", 0)) * 100
            ax.axhline(floor, color="tab:orange", linestyle="--", linewidth=1,
                       label=f"target: CI low >= {floor:.2f} %")
    ber = target.get("ber") if target else None
    ax.set_xlabel("LUT (6-input LUTs; " + ("vendor report" if entries and entries[0].get("source") == "report"
                                          else "fpga-ft estimate, Vivado post-synthesis scale") + ")")
    ax.set_ylabel(f"accuracy under BER {fmt_ber(ber)} (%), 95 % CI" if ber is not None else "accuracy under faults (%)")
    if base:
        low, high = ax.get_ylim()
        ax.set_ylim(low, max(high, base["clean_accuracy"] * 100 + 0.4))
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or f"{result.study_name}\nLUT vs accuracy under faults ({len(entries)} completed trials)",
                 fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)
