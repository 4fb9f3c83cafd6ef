"""The optimizer loop: study naming and samplers (TPE, NSGA-II with the constraints), seeding,
asking for trials under the study lock, evaluating, reporting, and the refinement of the best
feasible trial (neighbours ranked by the estimated saving of the objective,
:mod:`.objectives`). Times in seconds.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.jsonio import json_default
from fpga_ft.generate.design import build_design
from fpga_ft.measure.resources import estimate_resources
from fpga_ft.search.algorithm import layers_with_weights
from fpga_ft.search.optimize.evaluator import Evaluator, _now
from fpga_ft.search.optimize.objectives import Objective, fmt_value, get_objective
from fpga_ft.search.optimize.results import OptimizeResult, _collect
from fpga_ft.search.optimize.space import SearchSpace, default_seeds
from fpga_ft.search.optimize.storage import (_Heartbeat, _requeue, default_storage_url, display_url, make_storage,
                                             reap_dead_trials, study_lock, worker_token)
from fpga_ft.search.optimize.targets import CONSTRAINT_NAMES, ProtectionSpec, Target, fmt_ber

#: How often a worker that waits for other workers' running trials looks again (seconds).
POLL_SECONDS = 2.0
#: Stop after this many trials in a row failed with an error.
MAX_CONSECUTIVE_FAILURES = 5
#: Testing hook: seconds each trial waits before it is reported (to kill a worker mid-trial).
TRIAL_DELAY_ENV = "FPGA_FT_TRIAL_DELAY"


def _settings_hash(settings: Mapping) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def study_settings(ev: Evaluator, target: Target, multi_objective: bool, algorithm: bool,
                   objective: str | Objective | None = None) -> dict:
    """The settings a study is created with (and must be continued with); the objective is
    recorded when it is not the default (LUT), so that the default's studies keep their names."""
    settings = ev.settings()
    settings.update({"target": target.to_dict(), "multi_objective": bool(multi_objective),
                     "algorithm": bool(algorithm)})
    chosen = get_objective(objective)
    if not chosen.is_default:
        settings["objective"] = chosen.name
    return settings


def default_study_name(ev: Evaluator, target: Target, multi_objective: bool, algorithm: bool,
                       objective: str | Objective | None = None) -> str:
    """``<model>-<fingerprint>-ber<B>-<board>-drop<D>-lat<L>-<so|mo>[-alg][-obj<objective>]-<settings hash>``
    (``-obj`` only for an objective other than LUT)."""
    stem = Path(str(ev.model_path or ev.model.name)).stem.replace(" ", "_")[:40]
    chosen = get_objective(objective)
    settings = study_settings(ev, target, multi_objective, algorithm, chosen)
    tag = "" if chosen.is_default else "-obj" + re.sub(r"[^A-Za-z0-9_.=,+-]", "_", chosen.name)[:40]
    return (f"{stem}-{ev.model_fp[:8]}-ber{target.ber:g}-{ev.board.key}-drop{target.max_accuracy_drop:g}"
            f"-lat{target.max_latency_overhead:g}-{'mo' if multi_objective else 'so'}{'-alg' if algorithm else ''}"
            f"{tag}-{_settings_hash(settings)}")


def _constraints_func(trial) -> Sequence[float]:
    values = trial.user_attrs.get("constraints")
    if not values or len(values) != len(CONSTRAINT_NAMES):
        return [1.0] * len(CONSTRAINT_NAMES)
    return [float(v) for v in values]


def make_sampler(multi_objective: bool, seed: int | None, n_existing: int, trials: int):
    """TPE (single objective) or NSGA-II (objective vs accuracy), both with the constraints. The
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


def optimize(ev: Evaluator, target: Target, *, trials: int, storage: str | None = None, study_name: str | None = None,
             multi_objective: bool = False, seed: int | None = 0, algorithm: bool | None = None,
             extra_seeds: Iterable[tuple[str, object, ProtectionSpec]] = (), use_default_seeds: bool = True,
             progress: bool = True, log: Callable[[str], None] | None = None,
             poll_seconds: float = POLL_SECONDS, refine: bool = True,
             objective: str | Objective | None = None, max_seeds: int | None = None) -> OptimizeResult:
    """Run (or continue) the study until it holds ``trials`` COMPLETE trials.

    Args:
        ev: the model/data/board evaluator.
        target: BER and constraints.
        trials: COMPLETE trials wanted in the study (trials already there count).
        storage: SQLAlchemy URL (default: SQLite file in the design cache, ``default_storage_url()``).
        study_name: default :func:`default_study_name` (model fingerprint, BER, board, constraints
            and a hash of every other setting).
        multi_objective: NSGA-II on (objective, accuracy under BER) instead of TPE on the objective.
        seed: sampler seed (campaigns use the evaluator's seed).
        algorithm: search algorithm knobs (default: when the evaluator has training data).
        extra_seeds: (label, AlgorithmKnobs, ProtectionSpec) candidates to enqueue first.
        max_seeds: at most this many seed candidates queued by this call (default: up to
            ``trials``), so that trials remain for the sampler and the refinement.
        refine: single objective: once a feasible trial exists, two of every three new trials
            are the cheapest untried neighbour of the best feasible trial (see
            :func:`_next_neighbor`), the third comes from the TPE sampler.
        objective: what to minimise (:func:`~fpga_ft.search.optimize.objectives.get_objective`:
            a registered name, ``weighted:LUT=1,DSP=100``, ``module:function``; default LUT).
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
    objective = get_objective(objective)
    settings = study_settings(ev, target, multi_objective, algorithm, objective)
    name = study_name or default_study_name(ev, target, multi_objective, algorithm, objective)
    directions = ["minimize", "maximize"] if multi_objective else ["minimize"]
    space = SearchSpace(ev.layers0, ev.knob_infos, algorithm)
    store = make_storage(url)
    start = _now()

    baseline = ev.baseline(target)
    objective.of(baseline)  # an objective that cannot value a design fails here, before any trial
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
            if max_seeds is not None:
                budget = min(budget, int(max_seeds))
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
                        neighbor = _next_neighbor(ev, space, study, target, objective)
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
                    evaluation = ev.evaluate(knobs, spec, target)
                    entry = evaluation.to_dict()
                    value = objective.of(entry)
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
                for key, attr in evaluation.trial_attrs().items():
                    trial.set_user_attr(key, _jsonable(attr))
                values = [value, float(entry["accuracy"]["mean"])] if multi_objective else value
                study.tell(trial, values, skip_if_finished=True)
                run_trials += 1
            if bar is not None:
                best = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                        if t.user_attrs.get("feasible")]
                bar.set_postfix_str(f"feasible {len(best)}, best {objective.name} "
                                    f"{fmt_value(min(t.values[0] for t in best))}" if best else "no feasible yet")
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


def _next_neighbor(ev: "Evaluator", space: SearchSpace, study, target: Target,
                   objective: str | Objective | None = None):
    """The untried one-step-cheaper neighbour of the best feasible trial with the largest
    expected saving of the objective (default LUT), as (params, label), or None.

    Moves: one protected MSB less on a layer; a quarter fewer critical neurons on a layer;
    and with algorithm knobs 0.1 more sparsity, one weight bit less or one activation bit
    less on a layer. Protection moves are ranked by their estimated objective (exact estimate
    on the best trial's model, no compile), knob moves by the layer's share of it times the
    relative change. Neighbours already in the study (any state) are skipped."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    feasible = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    if not feasible:
        return None
    objective = get_objective(objective)
    best = min(feasible, key=lambda t: (t.values[0], -t.user_attrs["accuracy"]["ci_low"], t.number))
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
        value0 = objective.of(est0)
        share = {row["name"]: objective.of(row) for row in est0.per_layer}
    except Exception:  # noqa: BLE001 - no refinement then; the sampler goes on
        return None
    bounds = space.bounds()
    moves = []

    def add(params, label, saving):
        if _params_key(params) not in seen:
            moves.append((-saving, label, params))

    def add_protection(params, label):
        _, sp = space.from_params(params)
        add(params, label, value0 - objective.of(estimate_resources(layers, ev.plan_for(sp, layers),
                                                                    ev.board.clock_mhz)))

    for info in layers:
        name = info.name
        k = base[f"msbs:{name}"]
        if k > 0:
            add_protection(dict(base, **{f"msbs:{name}": k - 1}), f"refine #{best.number}: {name} msbs {k}->{k - 1}")
        c = base[f"critical:{name}"]
        if c > 0:
            new_c = max(0, c - max(1, int(math.ceil(0.25 * c))))
            add_protection(dict(base, **{f"critical:{name}": new_c}),
                           f"refine #{best.number}: {name} critical {c}->{new_c}")
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
