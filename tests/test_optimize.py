"""Tests for the cross-layer optimizer (fpga_ft.search.optimize), the algorithm knobs
(fpga_ft.search.algorithm), the scheme comparison (fpga_ft.search.compare) and their commands.

The bundled digits MLP on the ZCU102 (200 MHz: the unprotected MLP takes 10 cycles; every
protected layer adds a voter cycle). Studies use few trials and 2 campaign passes; every
candidate is a cached design, so reruns of the suite are fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from conftest import mlp_evaluator

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import MODELS_DIR, ROOT

MLP = MODELS_DIR / "digits_mlp.h5"
MLP_TEST = MODELS_DIR / "digits_test.npz"
MLP_TRAIN = MODELS_DIR / "digits_train.npz"
CNN = MODELS_DIR / "digits_cnn.h5"
CNN_TEST = MODELS_DIR / "digits_img_test.npz"
CNN_TRAIN = MODELS_DIR / "digits_img_train.npz"
BOARD = "zcu102"
#: A target the small studies can meet: BER 1e-4, 6 points of accuracy, 35 % latency.
BER = 1e-4
DROP = 0.06
LATENCY = 0.35


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args, check=True, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "fpga_ft.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"fpga-ft {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def evaluator():
    return mlp_evaluator(BOARD)


@pytest.fixture
def target():
    from fpga_ft.search.optimize import Target

    return Target(ber=BER, max_accuracy_drop=DROP, max_latency_overhead=LATENCY)


def _storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def _complete(study_result):
    return [t for t in study_result.trials if t["state"] == "COMPLETE"]


# ----------------------------------------------------------------------------- the optimizer
def test_tiny_study_feasible_best_meets_constraints(evaluator, target, tmp_path):
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.search.optimize import optimize

    result = optimize(evaluator, target, trials=3, storage=_storage(tmp_path), progress=False)
    out = result.to_dict()
    assert out["trials"]["complete"] == 3 and out["trials"]["requested"] == 3
    best = out["best"]
    assert best is not None, "no feasible trial in the tiny study"
    base = out["baseline"]
    # constraints respected by the reported best
    assert best["accuracy"]["ci_low"] >= base["clean_accuracy"] - DROP
    assert best["latency_cycles"] / base["latency_cycles"] - 1 <= LATENCY + 1e-9
    assert all(v <= 1.0 for v in best["utilization"].values())
    assert all(c <= 0 for c in best["constraints"])
    # it is the cheapest feasible trial and its plan is a valid plan of the model
    feasible = [e for e in result.entries if e["feasible"]]
    assert best["LUT"] == min(e["LUT"] for e in feasible)
    plan = ProtectionPlan.from_dict(best["plan"]).validate(evaluator.layers0)
    assert plan.protected_layers
    for key in ("plan", "LUT", "FF", "DSP", "BRAM_18K", "accuracy", "latency_cycles"):
        assert key in best
    assert set(best["accuracy"]) >= {"mean", "ci_low", "ci_high"}
    assert out["pareto"] and all(e["feasible"] for e in out["pareto"])
    # infeasible trials are reported as such, with the violated constraint positive
    for entry in result.entries:
        assert entry["feasible"] == all(c <= 0 for c in entry["constraints"])
    # everything is recoverable from the storage alone
    from fpga_ft.search.optimize import load_result

    again = load_result(_storage(tmp_path), out["study"]).to_dict()
    assert again["best"]["number"] == best["number"] and again["best"]["plan"] == best["plan"]
    assert again["baseline"]["LUT"] == base["LUT"]


def test_constraint_values(evaluator, target):
    """Accuracy, latency and fit constraints of one candidate, by hand."""
    from fpga_ft.search.optimize import ProtectionSpec

    from fpga_ft.search.optimize.evaluation import DETAIL_KEYS, RESULT_KEYS

    spec = ProtectionSpec.uniform(evaluator.layers0, msbs=2)
    evaluation = evaluator.evaluate({}, spec, target)
    base = evaluator.baseline(target)
    acc, lat, fit = evaluation.constraints
    assert acc == pytest.approx(base["clean_accuracy"] - DROP - evaluation.accuracy.ci_low)
    assert lat == pytest.approx(evaluation.figures.latency_cycles / base["latency_cycles"] - 1 - LATENCY, abs=1e-8)
    assert fit == pytest.approx(max(evaluation.utilization[k] for k in ("LUT", "FF", "DSP", "BRAM_18K")) - 1)
    assert evaluation.feasible == (max(acc, lat, fit) <= 0) and evaluation.accuracy_ok == (acc <= 0)
    assert evaluation.figures.latency_cycles == base["latency_cycles"] + 3  # one voter cycle per protected layer
    assert evaluation.figures.LUT > base["LUT"] and evaluation.lut_overhead > 0
    assert evaluation.plan.layers["fc1"].protected_msbs == 2
    # the JSON form: the result keys, then the details; what the study stores
    entry = evaluation.to_dict()
    assert tuple(entry) == RESULT_KEYS + DETAIL_KEYS
    assert entry["constraints"] == [acc, lat, fit] and entry["plan"]["layers"]["fc1"]["protected_msbs"] == 2
    assert entry["LUT"] == evaluation.figures.LUT and entry["source"] == "estimate"
    assert set(evaluation.trial_attrs()) == set(RESULT_KEYS + DETAIL_KEYS) - {"seconds"} | {"evaluation_seconds"}
    again = evaluator.evaluate({}, spec, target)
    assert again.memoized and again.to_dict()["constraints"] == entry["constraints"]


def test_resume_continues_study(evaluator, target, tmp_path):
    from fpga_ft.search.optimize import optimize

    storage = _storage(tmp_path)
    first = optimize(evaluator, target, trials=2, storage=storage, progress=False)
    assert [t["number"] for t in _complete(first)] == [0, 1] and first.run_trials == 2
    before = {e["number"]: (e["LUT"], e["accuracy"]["mean"], e["plan"]) for e in first.entries}
    second = optimize(evaluator, target, trials=4, storage=storage, progress=False)
    assert second.study_name == first.study_name
    assert second.run_trials == 2  # only the missing ones ran
    numbers = [t["number"] for t in _complete(second)]
    assert numbers == [0, 1, 2, 3]
    for e in second.entries:  # the first run's trials are untouched
        if e["number"] in before:
            assert (e["LUT"], e["accuracy"]["mean"], e["plan"]) == before[e["number"]]
    params = [json.dumps(e["plan"], sort_keys=True) + json.dumps(e["knobs"], sort_keys=True)
              for e in second.entries]
    assert len(set(params)) == len(params), "a candidate was evaluated twice"
    # asking for what is there already runs nothing
    third = optimize(evaluator, target, trials=4, storage=storage, progress=False)
    assert third.run_trials == 0 and len(_complete(third)) == 4


def test_multi_objective_pareto_front(evaluator, target, tmp_path):
    from fpga_ft.search.optimize import optimize, plot_pareto

    result = optimize(evaluator, target, trials=3, storage=_storage(tmp_path), multi_objective=True,
                      progress=False)
    out = result.to_dict()
    assert out["multi_objective"] and "-mo-" in out["study"]
    assert all(len(t["values"]) == 2 for t in out["trials"]["items"] if t["state"] == "COMPLETE")
    front = out["pareto"]
    assert front
    for a in front:  # no feasible entry dominates a front member
        for b in result.entries:
            if b["feasible"]:
                assert not (b["LUT"] <= a["LUT"] and b["accuracy"]["mean"] >= a["accuracy"]["mean"]
                            and (b["LUT"] < a["LUT"] or b["accuracy"]["mean"] > a["accuracy"]["mean"]))
    png = tmp_path / "pareto.png"
    plot_pareto(png, result)
    assert png.stat().st_size > 10_000


def test_study_settings_mismatch_is_an_error(evaluator, target, tmp_path):
    from fpga_ft.search.optimize import Target, optimize

    storage = _storage(tmp_path)
    optimize(evaluator, target, trials=1, storage=storage, study_name="fixed", progress=False)
    other = Target(ber=2e-4, max_accuracy_drop=DROP, max_latency_overhead=LATENCY)
    with pytest.raises(FpgaFtError, match="other settings"):
        optimize(evaluator, other, trials=1, storage=storage, study_name="fixed", progress=False)


def test_killed_worker_then_rerun_continues(tmp_path):
    """SIGKILL a worker in the middle of a trial; the rerun fails that trial, re-queues its
    parameters and completes the study without repeating a completed trial."""
    import optuna
    from optuna.trial import TrialState

    storage = _storage(tmp_path)
    args = ["optimize", MLP, "--data", MLP_TEST, "--ber", BER, "--board", BOARD, "--max-accuracy-drop", DROP,
            "--max-latency-overhead", LATENCY, "--trials", 4, "--repeats", 2, "--storage", storage,
            "--study", "killed", "--quiet"]
    env = dict(_env(), FPGA_FT_TRIAL_DELAY="4")  # every trial lasts >= 4 s: time to kill it
    proc = subprocess.Popen([sys.executable, "-m", "fpga_ft.cli", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name="killed", storage=storage)
            except Exception:  # not created yet
                continue
            trials = study.get_trials(deepcopy=False)
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t for t in trials if t.state == TrialState.RUNNING and "worker" in t.user_attrs
                       and time.time() - t.datetime_start.timestamp() > 0.5]
            if len(done) >= 1 and running:
                victim = running[0].number
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        if proc.poll() is None and victim is None:
            proc.kill()
        proc.wait(timeout=60)
    assert victim is not None, f"the worker never reached its second trial: {proc.stderr.read()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    study = optuna.load_study(study_name="killed", storage=storage)
    completed_before = {t.number: t.datetime_complete for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert study.get_trials(deepcopy=False)[victim].state == TrialState.RUNNING  # left behind by the kill

    out_json = tmp_path / "rerun.json"
    _cli(*args, "--json", out_json)
    result = json.loads(out_json.read_text())
    study = optuna.load_study(study_name="killed", storage=storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 == result["trials"]["complete"]
    assert len({t.number for t in complete}) == 4
    assert trials[victim].state == TrialState.FAIL  # the killed trial was failed ...
    retried = [t for t in trials if t.user_attrs.get("retry_of") == victim]
    assert len(retried) == 1  # ... and its candidate queued again (behind the seeds queued before it)
    assert (retried[0].params or retried[0].system_attrs["fixed_params"]) == trials[victim].params
    for number, when in completed_before.items():  # completed trials were not repeated
        assert trials[number].state == TrialState.COMPLETE and trials[number].datetime_complete == when
    assert result["trials"]["run_here"] == 4 - len(completed_before)


# ----------------------------------------------------------------------------- algorithm knobs
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_algorithm_knobs_retrain_bit_exact(name):
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_data, load_model
    from fpga_ft.search import algorithm as A

    model_path, train, test = {"mlp": (MLP, MLP_TRAIN, MLP_TEST), "cnn": (CNN, CNN_TRAIN, CNN_TEST)}[name]
    model = load_model(model_path)
    xt, yt = load_data(train)
    x, y = load_data(test)
    infos = A.describe_knobs(model)
    first, second, last = list(infos)
    assert infos[first].weight_bits == 6 and infos[first].activation_bits == 6 and infos[last].activation is None
    knobs = A.AlgorithmKnobs({
        first: A.LayerKnobs(weight_bits=4, bias_bits=4, activation_bits=4, clip_integer=1, sparsity=0.5),
        second: A.LayerKnobs(weight_bits=5, bias_bits=5, sparsity=0.3),
        last: A.LayerKnobs(weight_bits=4, bias_bits=4)})
    result = A.apply_knobs(model, knobs, xt, yt, epochs=1, seed=3)
    retrained = result.model
    assert retrained.layers[1].name == model.layers[1].name == "q_input"
    assert [layer.name for layer in retrained.layers] == [layer.name for layer in model.layers]
    kernel = retrained.get_layer(first).get_weights()[0]
    assert np.mean(kernel == 0) >= 0.5 - 1e-6
    new = A.describe_knobs(retrained)
    assert (new[first].weight_bits, new[first].activation_bits, new[first].activation_integer) == (4, 4, 1)
    assert new[second].weight_bits == 5 and new[last].weight_bits == 4
    # bit-exact conversion: C simulation == QKeras on the test set
    design = build_design(retrained)
    csim = design.predict(x).reshape(len(x), -1)
    ref = retrained.predict(x, verbose=0).reshape(len(x), -1)
    np.testing.assert_array_equal(csim, ref)
    assert design.layers[0].weight_type.width == 4
    assert float(np.mean(csim.argmax(1) == y)) > 0.85
    # cached: the same request loads the same file, with the same weights
    again = A.apply_knobs(model, knobs, xt, yt, epochs=1, seed=3)
    assert again.cached and again.path == result.path
    for a, b in zip(again.model.get_weights(), retrained.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_algorithm_knob_errors():
    from fpga_ft.generate.modelio import load_model
    from fpga_ft.search import algorithm as A

    model = load_model(MLP)
    with pytest.raises(FpgaFtError, match="unknown layer"):
        A.apply_knobs(model, A.AlgorithmKnobs({"nope": A.LayerKnobs(weight_bits=4)}), None, None)
    with pytest.raises(FpgaFtError, match="no activation knobs"):
        A.apply_knobs(model, A.AlgorithmKnobs({"fc3": A.LayerKnobs(activation_bits=4)}), None, None)
    with pytest.raises(FpgaFtError, match="clip_integer"):
        A.apply_knobs(model, A.AlgorithmKnobs({"fc1": A.LayerKnobs(clip_integer=-1)}), None, None)
    with pytest.raises(FpgaFtError, match="training data"):
        A.apply_knobs(model, A.AlgorithmKnobs({"fc1": A.LayerKnobs(weight_bits=4)}), None, None)
    same = A.apply_knobs(model, A.AlgorithmKnobs(), None, None)
    assert same.model is model


def test_layers_with_weights_match_hls4ml(evaluator, tmp_path):
    """The quantized weights attached for the estimate are hls4ml's constants."""
    from fpga_ft.generate.convert import convert_model

    converted = convert_model(evaluator.model, output_dir=tmp_path / "prj")
    for ours, theirs in zip(evaluator.layers0, converted.layers):
        np.testing.assert_array_equal(ours.weights, theirs.weights)
        np.testing.assert_array_equal(ours.biases, theirs.biases)


# ----------------------------------------------------------------------------- compare
ROW_KEYS = {"scheme", "ber", "accuracy", "accuracy_loss", "LUT", "FF", "DSP", "lut_overhead", "latency_overhead",
            "meets_target", "plan"}


def test_compare_all_schemes(evaluator, tmp_path):
    from fpga_ft.search.compare import SCHEMES, format_table, plot_compare, run_compare

    result = run_compare(evaluator, [BER], [DROP], max_latency_overhead=LATENCY, trials=2,
                         storage=_storage(tmp_path), progress=False, log=lambda m: None)
    rows = result["rows"]
    assert [r["scheme"] for r in rows] == list(SCHEMES)
    for row in rows:
        assert ROW_KEYS <= set(row), row["scheme"]
        if row["scheme"] == "TMR-ALG":  # no training data
            assert row["skipped"] and "--train" in row["note"]
            continue
        assert set(row["accuracy"]) >= {"mean", "ci_low", "ci_high"}
        assert row["meets_target"] == (row["accuracy_ok"] and row["latency_ok"] and row["fits"])
    by = {r["scheme"]: r for r in rows}
    assert by["Base"]["lut_overhead"] == 0 and by["Base"]["plan"] == {"layers": {}}
    # a skipped row has a measured row's keys (None), but those set only by a measurement
    assert set(by["TMR-ALG"]) <= set(by["Base"])
    assert set(by["Base"]) - set(by["TMR-ALG"]) <= {"design", "model_file", "search_accuracy",
                                                     "search_meets_target", "validation_repeats"}
    assert by["TMR-CRT1"]["LUT"] < by["TMR-CRT2"]["LUT"] < by["TMR-CRT3"]["LUT"]
    full = by["TMR-FULL"]["plan"]["layers"]
    assert all(len(p["critical_neurons"]) == n for p, n in zip(full.values(), (32, 32, 10)))
    assert by["TMR-ARCH"]["LUT"] <= by["TMR-FULL"]["LUT"]
    # TMR-CL starts from every earlier scheme's choice, the cheapest that met the target first,
    # then confirms its feasible trials cheapest first with an independent campaign: when the
    # cheapest is confirmed, it is never dearer than the single-level schemes that met the
    # target in the search
    met = [r["LUT"] for r in rows if r["scheme"] != "TMR-CL" and not r["skipped"] and r["search_meets_target"]]
    if met:
        cl = by["TMR-CL"]
        tried = cl["confirmation"]["tried"]
        assert cl["search_meets_target"] and tried
        assert [t["objective"] for t in tried] == sorted(t["objective"] for t in tried)
        assert not any(t["confirmed"] for t in tried[:-1])
        if tried[-1]["confirmed"]:
            assert cl["number"] == tried[-1]["number"] and cl["LUT"] == tried[-1]["objective"]
        if tried[0]["confirmed"]:
            assert cl["LUT"] <= min(met)
    assert result["verdict"][0]["ber"] == BER
    text = format_table(result)
    assert "TMR-CL" in text and "TMR-ARCH" in text
    png = tmp_path / "compare.png"
    plot_compare(png, result)
    assert png.stat().st_size > 10_000


def test_confirmation_takes_the_cheapest_design_that_meets_the_target_again(evaluator, monkeypatch):
    """The confirmation (compare's TMR-CL, optimize's plan): feasible trials cheapest first,
    each re-measured by an independent campaign, the first whose campaign predicts a further
    re-measurement to meet the target with probability >= 0.9 is taken; infeasible trials
    and trials beyond ``candidates`` are never measured."""
    from types import SimpleNamespace

    from fpga_ft.search import compare
    from fpga_ft.search.optimize import confirm

    floor = evaluator.clean_accuracy - DROP
    half = 0.004  # the confirmation campaigns' 95 % half-width (fraction)
    # trial number -> (LUT, feasible in the search, CI low of the confirmation campaign)
    trials = {0: (100, False, floor + 0.05), 1: (200, True, floor - 0.01), 2: (300, True, floor + 0.001),
              3: (400, True, floor + 0.01), 4: (500, True, floor + 0.03)}
    entries = [{"number": n, "LUT": lut, "FF": 0, "DSP": 0, "BRAM": 0, "latency_cycles": 1, "feasible": ok,
                "plan": {"layers": {}}, "knobs": {"layers": {}}, "design": "/elsewhere/on/another/worker",
                "accuracy": {"mean": 0.9, "ci_low": 0.8, "ci_high": 0.95}} for n, (lut, ok, _) in trials.items()]
    measured, seeds = [], set()

    def fake_campaign(design, target, repeats, seed):
        measured.append(design)
        seeds.add((seed, repeats, target.ber))
        ci_low = trials[design][2]
        return SimpleNamespace(accuracy_mean=ci_low + half, ci_low=ci_low, ci_high=ci_low + 2 * half)

    monkeypatch.setattr(evaluator, "design_of", lambda entry: entry["number"])
    monkeypatch.setattr(evaluator, "campaign", fake_campaign)
    target = compare.Target(ber=BER, max_accuracy_drop=DROP)
    result = confirm.confirm_cheapest(entries, evaluator, target, 7)
    # trial 2 meets the floor by 0.1 point: an independent re-measurement would miss it too often
    assert result.chosen["number"] == 3 and measured == [1, 2, 3]
    tried = result.to_dict()["tried"]
    assert [(t["number"], t["objective"], t["confirmed"]) for t in tried] == [(1, 200, False), (2, 300, False),
                                                                            (3, 400, True)]
    assert tried[0]["pass_probability"] < 0.01 and 0.5 < tried[1]["pass_probability"] < 0.9
    assert tried[2]["pass_probability"] > 0.99
    assert result.to_dict()["chosen"] == 3 and result.seed == evaluator.seed + confirm.CONFIRM_SEED_OFFSET
    assert seeds == {(evaluator.seed + confirm.CONFIRM_SEED_OFFSET, 7, BER)}
    assert confirm.CONFIRM_SEED_OFFSET != compare.VALIDATION_SEED_OFFSET
    measured.clear()
    capped = confirm.confirm_cheapest(entries, evaluator, target, 7, candidates=2)
    assert capped.chosen is None and capped.tried == result.tried[:2] and measured == [1, 2]
    assert len(confirm.describe(result)) == 3 and "not confirmed" in confirm.describe(result)[0]


def test_design_of_an_entry_is_rebuilt_from_its_plan_not_its_path(evaluator, target):
    """A study entry's design path may be on another worker's machine or from an older
    fpga-ft: the confirmation and compare's validation rebuild it from knobs and plan (the
    design cache gives the same project back)."""
    from fpga_ft.search.optimize import ProtectionSpec

    entry = evaluator.evaluate({"layers": {}}, ProtectionSpec(msbs={evaluator.layers0[0].name: 2}), target).to_dict()
    original = entry["design"]
    entry["design"] = "/nonexistent/fpgaft-design"
    design = evaluator.design_of(entry)
    assert str(design.project_dir) == original and design.plan.to_dict() == entry["plan"]


def test_csim_library_of_another_version_is_a_one_line_error(tmp_path):
    """A library built before the ABI check (no fpgaft_abi_version symbol) is refused with a
    one-line error, not an AttributeError (a resumed study's old design directories)."""
    from fpga_ft.simulate.csim import CsimLibrary

    src = tmp_path / "old.c"
    src.write_text("int fpgaft_n_sites(void) { return 4; }\n")
    lib = tmp_path / "fpgaft_csim-old.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    with pytest.raises(FpgaFtError, match="another fpga-ft version; convert the design again"):
        CsimLibrary(lib, 64, 10)


def test_pass_probability_of_an_independent_re_measurement():
    """Phi((ci_low - floor) / (sqrt(2) sigma)), checked against a simulation of two
    independent normal campaigns."""
    from fpga_ft.search.optimize.confirm import pass_probability

    rng = np.random.default_rng(0)
    sigma, z = 0.002, 1.959964
    for mean in (0.950, 0.953, 0.956):
        first = rng.normal(mean, sigma, 200_000)
        second = rng.normal(mean, sigma, 200_000)
        floor = 0.948
        # the flat-prior view: the other campaign's mean ~ N(this campaign's mean, 2 sigma^2)
        predicted = pass_probability(mean, mean - z * sigma, mean + z * sigma, floor)
        simulated = np.mean(second - first + mean - z * sigma >= floor)
        assert predicted == pytest.approx(simulated, abs=0.01)
    assert pass_probability(0.9, 0.9, 0.9, 0.9) == 1.0 and pass_probability(0.9, 0.9, 0.9, 0.91) == 0.0


@pytest.mark.slow
def test_compare_with_algorithm_knobs(tmp_path):
    from fpga_ft.generate.modelio import load_data, load_model
    from fpga_ft.search.compare import run_compare
    from fpga_ft.search.optimize import Evaluator

    x, y = load_data(MLP_TEST)
    xt, yt = load_data(MLP_TRAIN)
    ev = Evaluator(load_model(MLP), x, y, board=BOARD, x_train=xt, y_train=yt, repeats=2, epochs=1,
                   model_path=str(MLP))
    result = run_compare(ev, [BER], [DROP], max_latency_overhead=LATENCY, trials=3, storage=_storage(tmp_path),
                         progress=False, log=lambda m: None)
    alg = next(r for r in result["rows"] if r["scheme"] == "TMR-ALG")
    assert not alg["skipped"] and alg["knobs"]["layers"]
    cl = next(r for r in result["rows"] if r["scheme"] == "TMR-CL")
    assert ROW_KEYS <= set(cl)


# ----------------------------------------------------------------------------- CLI
def test_cli_optimize_json_plan_and_plot(tmp_path):
    out = tmp_path / "opt.json"
    plan = tmp_path / "best.yml"
    png = tmp_path / "pareto.png"
    _cli("optimize", MLP, "--data", MLP_TEST, "--ber", BER, "--board", BOARD, "--max-accuracy-drop", DROP,
         "--max-latency-overhead", LATENCY, "--trials", 2, "--repeats", 2, "--storage", _storage(tmp_path),
         "--plan-out", plan, "--plot", png, "--json", out, "--quiet")
    result = json.loads(out.read_text())
    for key in ("best", "pareto", "trials", "baseline", "study", "storage", "seconds_per_trial"):
        assert key in result
    assert result["trials"]["count"] >= 2 and result["trials"]["complete"] == 2
    for item in result["trials"]["items"]:
        assert {"number", "state", "values", "feasible"} <= set(item)
    assert result["best"]
    assert {"plan", "LUT", "FF", "DSP", "BRAM_18K", "accuracy", "latency_cycles"} <= set(result["best"])
    assert result["baseline"]["clean_accuracy"] > 0.9
    from fpga_ft.core.plan import ProtectionPlan

    # the plan written is the confirmed trial's (or, when none was confirmed, the search's best)
    confirmation = result["confirmation"]
    assert confirmation["repeats"] == 30 and confirmation["tried"]
    assert result["chosen"]["number"] == (confirmation["chosen"] if confirmation["chosen"] is not None
                                          else result["best"]["number"])
    assert ProtectionPlan.load(plan).to_dict() == result["chosen"]["plan"]
    assert png.stat().st_size > 10_000
    assert result["dashboard"].startswith("optuna-dashboard sqlite:///")


@pytest.mark.parametrize("args, message", [
    (["--ber", "2", "--trials", "1"], "BER must be in [0, 1]"),
    (["--ber", "x", "--trials", "1"], "BER must be a number"),
    (["--ber", "1e-4", "--trials", "-1"], "--trials must be >= 0"),
    (["--ber", "1e-4", "--trials", "1", "--max-accuracy-drop", "3"], "--max-accuracy-drop"),
    (["--ber", "1e-4", "--trials", "1", "--repeats", "0"], "--repeats must be >= 1"),
    (["--ber", "1e-4", "--trials", "1", "--repeats", "3", "--max-repeats", "2"], "--max-repeats must be >= --repeats"),
    (["--ber", "1e-4", "--trials", "1", "--plot", "out.txt"], "--plot needs an image"),
    (["--ber", "1e-4"], "required: --trials"),
    (["--ber", "1e-4", "--trials", "1", "--confirm-repeats", "-1"], "--confirm-repeats must be >= 0"),
])
def test_cli_optimize_errors_are_one_line(args, message):
    proc = _cli("optimize", MLP, "--data", MLP_TEST, "--board", BOARD, *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--board", "nope", "--trials", "1"], "unknown board 'nope'"),
    (["--board", BOARD, "--trials", "1", "--storage", "notaurl"], "--storage must be an SQLAlchemy URL"),
])
def test_cli_optimize_late_errors_are_one_line(args, message):
    proc = _cli("optimize", MLP, "--data", MLP_TEST, "--ber", "1e-4", *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--ber", "1e-4", "2e-4", "--max-accuracy-drop", "0.01", "0.02", "0.03"], "one value or one per BER"),
    (["--ber", "0"], "--ber values must be > 0"),
    (["--ber", "1e-4", "--trials", "0"], "--trials must be >= 1"),
])
def test_cli_compare_errors_are_one_line(args, message):
    proc = _cli("compare", MLP, "--data", MLP_TEST, "--board", BOARD, *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


# ----------------------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
def test_postgres_two_workers_share_one_study(tmp_path):
    """Two `fpga-ft optimize` processes on one PostgreSQL study: every trial number once,
    exactly the requested number of complete trials (start a server with
    ``eval "$(bash scripts/ci_postgres.sh)"``)."""
    url = os.environ.get("FPGA_FT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("FPGA_FT_TEST_POSTGRES_URL not set (start a server: eval \"$(bash scripts/ci_postgres.sh)\")")
    pytest.importorskip("psycopg2", reason="PostgreSQL storage needs psycopg2-binary")
    import optuna
    from optuna.trial import TrialState

    from fpga_ft.search.optimize import normalize_url

    name = f"pytest-{uuid.uuid4().hex[:12]}"
    total = 6
    args = ["optimize", MLP, "--data", MLP_TEST, "--ber", BER, "--board", BOARD, "--max-accuracy-drop", DROP,
            "--max-latency-overhead", LATENCY, "--trials", total, "--repeats", 2, "--storage", url,
            "--study", name, "--quiet"]
    outs = [tmp_path / f"worker{i}.json" for i in range(2)]
    env = dict(_env(), FPGA_FT_TRIAL_DELAY="2")  # trials long enough for both workers to take part
    procs = [subprocess.Popen([sys.executable, "-m", "fpga_ft.cli", *map(str, args), "--json", str(out)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for out in outs]
    try:
        for proc in procs:
            proc.wait(timeout=900)
            assert proc.returncode == 0, proc.stderr.read()[-3000:]
        results = [json.loads(out.read_text()) for out in outs]
        study = optuna.load_study(study_name=name, storage=normalize_url(url))
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        numbers = [t.number for t in trials]
        assert len(numbers) == len(set(numbers))
        story = [(t.number, t.state.name, t.user_attrs.get("label"), (t.user_attrs.get("worker") or {}).get("pid"),
                  t.user_attrs.get("retry_of"), str(t.datetime_start), str(t.datetime_complete)) for t in trials]
        assert sorted(t.number for t in complete) == list(range(total)), story
        assert len(complete) == total and len(trials) == total  # none surplus, none lost
        assert sum(r["trials"]["run_here"] for r in results) == total
        pids = {t.user_attrs["worker"]["pid"] for t in complete}
        assert len(pids) == 2, "both workers should have run trials"
        for r in results:
            assert r["trials"]["complete"] == total
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        try:
            optuna.delete_study(study_name=name, storage=normalize_url(url))
        except Exception:
            pass
