"""Evaluation of one candidate: build the design (cached), cost it (LUT, FF, DSP, BRAM_18K,
latency in cycles: real HLS/Vivado reports when the project has them, else the estimate),
run a fault-injection campaign at the target BER (faults per bit per inference); the result
is an :class:`~fpga_ft.search.optimize.evaluation.Evaluation` (with the constraint values,
<= 0 satisfied); the vulnerability ranking of the original model's neurons (cached on disk).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from fpga_ft import __version__
from fpga_ft.core.boards import get_board
from fpga_ft.core.cache import cache_root, data_hash, model_fingerprint
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import FaultModel
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.resources import FIT_KEYS, ResourceFigures
from fpga_ft.core.stats import accuracy_interval
from fpga_ft.generate.design import build_design
from fpga_ft.generate.modelio import check_input_shape, load_model
from fpga_ft.measure import vulnerability as V
from fpga_ft.measure.reports import read_project_report
from fpga_ft.measure.resources import estimate_resources
from fpga_ft.search.algorithm import DEFAULT_EPOCHS, AlgorithmKnobs, apply_knobs, describe_knobs, layers_with_weights
from fpga_ft.search.optimize.evaluation import AccuracyFigures, Baseline, Evaluation
from fpga_ft.search.optimize.space import _max_critical
from fpga_ft.search.optimize.targets import ProtectionSpec, Target
from fpga_ft.simulate.campaign import run_campaign
from fpga_ft.simulate.campaign.result import CI_METHOD

#: Default campaign passes over the test set per candidate.
DEFAULT_REPEATS = 10
#: Sequential evaluation: by default a candidate whose accuracy interval straddles the target
#: may get up to this many times ``repeats`` passes in all.
DEFAULT_MAX_REPEATS_FACTOR = 4
#: Vulnerability ranking defaults (injection oracle on one neuron at a time).
DEFAULT_RANKING = "injection"
DEFAULT_RANKING_REPEATS = 5
SETTINGS_VERSION = 1


def _now() -> float:
    return time.perf_counter()


class Evaluator:
    """Builds, costs and fault-injects candidates of one model on one board.

    Args:
        model: QKeras model (object) or path.
        x, y: test data for the campaigns (and the ranking, unless training data is given).
        board: :class:`fpga_ft.core.boards.Board` (or name).
        x_train, y_train: training data: enables algorithm knobs (fine-tuning) and feeds the
            vulnerability ranking.
        repeats: campaign passes over the test set per candidate.
        max_repeats: sequential evaluation's budget of passes per candidate (default
            ``DEFAULT_MAX_REPEATS_FACTOR * repeats``; ``repeats``: off). A candidate that meets
            the latency and fit constraints but whose accuracy interval straddles the target's
            floor gets ``repeats`` more passes at a time (independent campaign seeds) until the
            pooled interval is wholly above or below the floor, or the budget is spent.
        seed: campaign seed (the same for every candidate) and fine-tuning seed.
        workers: campaign worker processes.
        epochs: fine-tuning epochs of algorithm-knob candidates.
        ranking, ranking_repeats: vulnerability method and its passes (injection oracle).
    """

    def __init__(self, model, x, y, *, board, x_train=None, y_train=None, repeats: int = DEFAULT_REPEATS,
                 max_repeats: int | None = None, seed: int = 0, workers: int = 1, epochs: int | None = None, ranking: str = DEFAULT_RANKING,
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
        self.max_repeats = DEFAULT_MAX_REPEATS_FACTOR * self.repeats if max_repeats is None else max_repeats
        if isinstance(self.max_repeats, bool) or not isinstance(self.max_repeats, (int, np.integer)) \
                or self.max_repeats < self.repeats:
            raise FpgaFtError(f"max repeats must be an integer >= repeats ({self.repeats}), got {max_repeats!r}")
        self.max_repeats = int(self.max_repeats)
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
        self.clean_accuracy = float(np.mean(self.design0.output_head.classify(predicted) == self.y))
        self._ranking: dict[str, list[int]] | None = None
        self._ranking_info: dict = {}
        self._memo: dict = {}
        self._baselines: dict[tuple, Baseline] = {}
        self._retrained: dict = {}

    # ---- properties ---------------------------------------------------------------------
    @property
    def has_training_data(self) -> bool:
        return self.x_train is not None

    def settings(self) -> dict:
        """Everything that defines the numbers a study's trials produce."""
        settings = {"model_fingerprint": self.model_fp, "model": str(self.model_path or self.model.name),
                    "data": self.data_fp, "train": self.train_fp, "board": self.board.key,
                    "clock_mhz": self.board.clock_mhz, "repeats": self.repeats, "max_repeats": self.max_repeats, "seed": self.seed,
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

    def design_of(self, entry: dict):
        """The design of a study entry or compare row (its ``knobs`` and ``plan``) as this
        fpga-ft builds it, from the design cache when it is there. The entry's own ``design``
        path is not trusted: it may be on another worker's machine or written by an older
        fpga-ft (a resumed study)."""
        from fpga_ft.core.plan import ProtectionPlan

        model, _, _ = self.model_for(entry.get("knobs") or {"layers": {}})
        return build_design(model, ProtectionPlan.from_dict(entry.get("plan") or {"layers": {}}), board=self.board,
                            hls_config=self.hls_config)

    # ---- figures -------------------------------------------------------------------------------
    def figures(self, design, layers, plan) -> ResourceFigures:
        """LUT/FF/DSP/BRAM_18K/URAM and latency (cycles): real reports when the project has them
        (latency from the HLS report, else the estimate's; ``source`` ``"report"``), else the
        estimate (``source`` ``"estimate"``)."""
        est = estimate_resources(layers, plan, self.board.clock_mhz)
        report = _project_report(design.project_dir)
        if report is None:
            return est.figures
        measured = report.figures
        latency = measured.latency_cycles if measured.latency_cycles is not None else est.latency_cycles
        return ResourceFigures.from_counts(measured.counts(), latency_cycles=latency, source="report")

    def _baseline(self, target: Target) -> Baseline:
        key = (target.ber, target.sites)
        if key not in self._baselines:
            fig = self.figures(self.design0, self.layers0, None)
            acc = self.campaign(self.design0, target)
            self._baselines[key] = Baseline(figures=fig, utilization=fig.utilization(self.board, FIT_KEYS),
                                            clean_accuracy=self.clean_accuracy, accuracy=AccuracyFigures.of(acc),
                                            ber=target.ber, design=str(self.design0.project_dir))
        return self._baselines[key]

    def baseline(self, target: Target) -> dict:
        """The unprotected original design: figures, clean accuracy, accuracy under the BER
        (JSON form of :class:`~fpga_ft.search.optimize.evaluation.Baseline`)."""
        return self._baseline(target).to_dict()

    def accuracy_floor(self, target: Target) -> float:
        """The least accuracy (fraction) that meets ``target``: clean accuracy of the unprotected
        design minus the allowed loss."""
        return self.clean_accuracy - float(target.max_accuracy_drop)

    def campaign(self, design, target: Target, repeats: int | None = None, seed: int | None = None):
        """A fault-injection campaign of ``design`` on this evaluator's data at ``target``'s BER
        and sites (default: the search's passes and seed)."""
        return run_campaign(design, self.x, self.y, FaultModel(ber=target.ber, sites=target.sites),
                            repeats=repeats or self.repeats, seed=self.seed if seed is None else seed,
                            workers=self.workers)

    def _decide(self, design, evaluation: Evaluation, first) -> Evaluation:
        """Sequential evaluation: while ``evaluation``'s accuracy interval straddles the
        target's floor (:attr:`Evaluation.accuracy_undecided`) and passes remain in
        ``max_repeats``, run ``repeats`` more passes (batch ``b`` with campaign seed
        :func:`sequential_seed`) and pool their counts with the first campaign's
        (``first``) into one interval (same confidence and method)."""
        correct, total, used, batch = first.correct, first.inferences, first.repeats, 0
        while evaluation.accuracy_undecided and used < self.max_repeats:
            batch += 1
            more = min(self.repeats, self.max_repeats - used)
            extra = self.campaign(design, evaluation.target, repeats=more, seed=sequential_seed(self.seed, batch))
            correct, total, used = correct + extra.correct, total + extra.inferences, used + extra.repeats
            mean, low, high = accuracy_interval(correct, total, first.confidence, CI_METHOD)
            evaluation = dataclasses.replace(evaluation, accuracy=AccuracyFigures(mean, low, high, used))
        return evaluation

    def evaluate(self, knobs, spec: ProtectionSpec, target: Target) -> Evaluation:
        """Build, cost and fault-inject one candidate (``to_dict()``: its JSON form)."""
        start = _now()
        knobs = knobs if isinstance(knobs, AlgorithmKnobs) else AlgorithmKnobs.from_dict(knobs)
        model, model_file, retrain = self.model_for(knobs)
        if knobs.is_identity():
            design_layers = self.layers0
        else:  # the retrained model's own widths (no C++ compile needed for that)
            base_design = build_design(model, board=self.board, compile=False, hls_config=self.hls_config)
            design_layers = layers_with_weights(base_design.layers, model)
        plan = self.plan_for(spec, design_layers)
        memo_key = (knobs.key(), plan.key(), target, self.max_repeats)
        if memo_key in self._memo:
            return self._memo[memo_key].again(_now() - start)
        design = build_design(model, plan, board=self.board, hls_config=self.hls_config)
        fig = self.figures(design, design_layers, plan)
        acc = self.campaign(design, target)
        evaluation = self._decide(design, Evaluation(
            plan=plan, knobs=knobs, spec=_spec_summary(spec, design_layers), figures=fig,
            utilization=fig.utilization(self.board, FIT_KEYS), accuracy=AccuracyFigures.of(acc),
            clean_accuracy=acc.clean_accuracy, baseline=self._baseline(target), target=target,
            design=str(design.project_dir), model_file=model_file, retrain=retrain), acc)
        self._memo[memo_key] = evaluation
        return dataclasses.replace(evaluation, seconds=_now() - start)


def sequential_seed(seed: int, batch: int) -> int:
    """The campaign seed of sequential evaluation's extra batch ``batch`` (1, 2, ...) of a
    candidate evaluated with campaign seed ``seed``: a 63-bit hash of the two, so the batches'
    faults are independent of the first campaign's, of each other and of the seeds
    ``seed + k`` that validations use."""
    digest = hashlib.sha256(f"fpga-ft sequential {int(seed)} {int(batch)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


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
