"""Registries of the search: optimizer objectives (fpga_ft.search.optimize.objectives) and the
compare schemes (fpga_ft.search.compare), each extended here through its registry alone.

The bundled digits MLP on the ZCU102, two candidates whose LUT and DSP orders disagree:
every protected MSB of every product (TMR-CRT1) costs fewer LUTs but more DSP slices than
40 % of every layer's neurons fully triplicated. Studies use 2 campaign passes and a loose
accuracy target (every candidate feasible), so the objective alone decides.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import mlp_evaluator

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import MODELS_DIR, ROOT

MLP = MODELS_DIR / "digits_mlp.h5"
MLP_TEST = MODELS_DIR / "digits_test.npz"
BOARD = "zcu102"
BER = 1e-4


@pytest.fixture(scope="module")
def evaluator():
    return mlp_evaluator(BOARD)


@pytest.fixture
def loose():
    """Any accuracy is enough: feasibility is latency and fit only."""
    from fpga_ft.search.optimize import Target

    return Target(ber=BER, max_accuracy_drop=1.0, max_latency_overhead=0.35)


@pytest.fixture
def registries(monkeypatch):
    """The objective and compare-scheme registries, restored after the test."""
    from fpga_ft.search import compare
    from fpga_ft.search.optimize import objectives

    monkeypatch.setattr(objectives, "OBJECTIVES", dict(objectives.OBJECTIVES))
    monkeypatch.setattr(compare, "COMPARE_SCHEMES", dict(compare.COMPARE_SCHEMES))
    return objectives, compare


def _two_candidates(evaluator):
    from fpga_ft.search.optimize import ProtectionSpec

    layers = evaluator.layers0
    return [
        ("CRT1", {}, ProtectionSpec.uniform(layers, msbs=1)),
        ("critical-40%", {}, ProtectionSpec.uniform(layers, fraction=0.4)),
    ]


def _study(evaluator, target, tmp_path, name: str, objective=None):
    from fpga_ft.search.optimize import optimize

    return optimize(
        evaluator,
        target,
        trials=2,
        storage=f"sqlite:///{tmp_path / name}.db",
        extra_seeds=_two_candidates(evaluator),
        use_default_seeds=False,
        refine=False,
        progress=False,
        objective=objective,
    )


# ----------------------------------------------------------------------------- objectives
def test_objective_names_weights_and_errors():
    from fpga_ft.search.optimize import get_objective
    from fpga_ft.search.optimize.objectives import figures_of

    figures = {"LUT": 1000, "FF": 400, "DSP": 3, "BRAM_18K": 0, "latency_cycles": 10, "source": "estimate"}
    assert get_objective(None).name == "LUT" and get_objective().of(figures) == 1000
    assert get_objective("dsp").of(figures) == 3 and get_objective("FF").unit == "FF"
    weighted = get_objective("weighted:lut=1, DSP=100,FF=0.5")
    assert weighted.name == "weighted:LUT=1,DSP=100,FF=0.5" and weighted.of(figures) == 1000 + 300 + 200

    class Estimate:  # a resource estimate: figures as attributes
        LUT, FF, DSP, BRAM_18K, latency_cycles = 7, 8, 9, 1, 2

    assert figures_of(Estimate()) == {"LUT": 7.0, "FF": 8.0, "DSP": 9.0, "BRAM_18K": 1.0, "latency_cycles": 2.0}
    for spec, message in [
        ("nope", "unknown --objective 'nope'"),
        ("weighted:LUT", "expected weighted:KEY=W"),
        ("weighted:URAM=2", "unknown figure 'URAM'"),
        ("weighted:LUT=x", "not a number"),
        ("no_such_module_xyz:cost", "cannot import module 'no_such_module_xyz'"),
        ("json:no_such_function", "has no function 'no_such_function'"),
    ]:
        with pytest.raises(FpgaFtError) as info:
            get_objective(spec)
        assert message in str(info.value) and "\n" not in str(info.value), spec
    with pytest.raises(FpgaFtError, match="finite number"):
        get_objective("weighted:LUT=1").of({"LUT": float("inf")})


def test_user_function_module_colon_function(tmp_path, monkeypatch):
    """``--objective module:function``: imported with importlib, its ``unit`` attribute kept."""
    from fpga_ft.search.optimize import get_objective

    (tmp_path / "my_costs.py").write_text(
        "def area(figures):\n    return figures['LUT'] + 50 * figures['DSP']\narea.unit = 'LUT equivalents'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    objective = get_objective("my_costs:area")
    assert objective.name == "my_costs:area" and objective.unit == "LUT equivalents"
    assert objective.of({"LUT": 100, "DSP": 2}) == 200


def test_dsp_objective_picks_the_lower_dsp_candidate(evaluator, loose, tmp_path):
    by_dsp = _study(evaluator, loose, tmp_path, "dsp", objective="DSP")
    by_lut = _study(evaluator, loose, tmp_path, "lut")
    entries = {e["label"]: e for e in by_dsp.entries}
    assert set(entries) == {"CRT1", "critical-40%"} and all(e["feasible"] for e in entries.values())
    crt, critical = entries["CRT1"], entries["critical-40%"]
    assert critical["DSP"] < crt["DSP"] and critical["LUT"] > crt["LUT"]  # the two objectives disagree
    assert by_dsp.best["label"] == "critical-40%" and by_lut.best["label"] == "CRT1"
    assert [e["values"][0] for e in by_dsp.entries] == [e["DSP"] for e in by_dsp.entries]
    # the objective is part of the study's name and settings: results of the two never mix
    assert "-objDSP-" in by_dsp.study_name and "-obj" not in by_lut.study_name
    out = by_dsp.to_dict()
    assert out["objective"] == ["DSP (minimise)"] and out["settings"]["objective"] == "DSP"
    assert by_lut.to_dict()["objective"] == ["LUT (minimise)"] and "objective" not in by_lut.settings
    from fpga_ft.search.optimize import optimize

    with pytest.raises(FpgaFtError, match="other settings"):  # a named study keeps its objective
        optimize(
            evaluator,
            loose,
            trials=2,
            storage=f"sqlite:///{tmp_path / 'dsp'}.db",
            study_name=by_dsp.study_name,
            use_default_seeds=False,
            progress=False,
        )
    png = tmp_path / "pareto.png"
    from fpga_ft.search.optimize import plot_pareto

    plot_pareto(png, by_dsp)
    assert png.stat().st_size > 10_000


def test_user_objective_through_the_registry_alone(evaluator, loose, tmp_path, registries):
    objectives, _ = registries

    @objectives.register_objective("LUT+300DSP", unit="LUT equivalents")
    def lut_and_dsp(figures):
        return figures["LUT"] + 300 * figures["DSP"]

    result = _study(evaluator, loose, tmp_path, "user", objective="LUT+300DSP")
    cost = {e["label"]: e["LUT"] + 300 * e["DSP"] for e in result.entries}
    assert [e["values"][0] for e in result.entries] == [cost[e["label"]] for e in result.entries]
    assert result.best["label"] == min(cost, key=cost.get)
    assert result.to_dict()["objective"] == ["LUT+300DSP (minimise)"] and "-objLUT+300DSP-" in result.study_name
    assert result.pareto[0]["number"] == result.best["number"]  # the front starts at the least objective

    objectives.register_objective("URAM", lambda figures: figures["URAM"])  # not a figure of a candidate
    with pytest.raises(FpgaFtError, match="objective 'URAM' needs figure 'URAM'"):  # before any trial
        _study(evaluator, loose, tmp_path, "broken", objective="URAM")


@pytest.mark.parametrize(
    "command, args, message",
    [
        ("optimize", ["--ber", "1e-4", "--trials", "1", "--objective", "nope"], "unknown --objective 'nope'"),
        ("compare", ["--ber", "1e-4", "--objective", "no_such_module_xyz:f"], "cannot import module"),
    ],
)
def test_cli_objective_errors_are_one_line(command, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "fpga_ft.cli", command, str(MLP), "--data", str(MLP_TEST), "--board", BOARD, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


# ----------------------------------------------------------------------------- compare schemes
def test_extra_compare_scheme_through_the_registry_alone(evaluator, tmp_path, registries):
    from fpga_ft.search.optimize import ProtectionSpec

    _, compare = registries
    builtin = tuple(compare.COMPARE_SCHEMES)
    assert (
        builtin
        == compare.SCHEMES
        == ("Base", "TMR-CRT1", "TMR-CRT2", "TMR-CRT3", "TMR-FULL", "TMR-ARCH", "TMR-ALG", "TMR-CL")
    )
    seen = {}

    def critical_40(context, target):  # 40 % of every layer's neurons critical; sees the choices before it
        seen["before"] = sorted(context.chosen)
        spec = ProtectionSpec.uniform(context.ev.layers0, fraction=0.4)
        return compare.SchemeOutcome(context.ev.evaluate({}, spec, target), note="40 % critical", choice=({}, spec))

    compare.register_compare_scheme(compare.CompareScheme("TMR-ARCH40", critical_40), before="TMR-CL")
    assert tuple(compare.COMPARE_SCHEMES) == builtin[:-1] + ("TMR-ARCH40", "TMR-CL")
    result = compare.run_compare(
        evaluator,
        [BER],
        [0.06],
        max_latency_overhead=0.35,
        trials=1,
        storage=f"sqlite:///{tmp_path / 'compare.db'}",
        progress=False,
        log=lambda m: None,
        validation_repeats=0,
        schemes=["TMR-ARCH40", "Base", "TMR-CRT1"],
    )
    rows = {r["scheme"]: r for r in result["rows"]}
    assert [r["scheme"] for r in result["rows"]] == ["Base", "TMR-CRT1", "TMR-ARCH40"]  # the registry's order
    assert seen["before"] == ["Base", "TMR-CRT1"]
    extra = rows["TMR-ARCH40"]
    assert extra["note"] == "40 % critical" and not extra["skipped"] and extra["lut_overhead"] > 0
    assert [len(p["critical_neurons"]) for p in extra["plan"]["layers"].values()] == [13, 13, 4]  # ceil(0.4 n)
    assert set(result["seconds_by_scheme"]) == {"Base", "TMR-CRT1", "TMR-ARCH40"}
    assert "TMR-ARCH40" in compare.format_table(result)
    assert result["verdict"][0]["tmr_cl_meets_target"] is False  # no TMR-CL row here
    with pytest.raises(FpgaFtError, match="unknown compare scheme"):
        compare.run_compare(evaluator, [BER], schemes=["TMR-NOPE"], progress=False, log=lambda m: None)


# ----------------------------------------------------------------------------- shared options
def test_optimize_and_compare_declare_the_search_options_once():
    """Both commands take the search options from one group (commands/_common.py): the same
    options, with the same defaults where their meaning is the same."""
    import argparse

    from fpga_ft.cli import build_parser

    actions = {}
    for action in build_parser()._subparsers._group_actions:  # the sub-command parsers
        if isinstance(action, argparse._SubParsersAction):
            for name in ("optimize", "compare"):
                actions[name] = {a.dest: a for a in action.choices[name]._actions}
    shared = {
        "model",
        "weights",
        "input_precision",
        "allow_inexact",
        "data",
        "train",
        "ber",
        "board",
        "max_accuracy_drop",
        "max_latency_overhead",
        "trials",
        "storage",
        "objective",
        "seed",
        "repeats",
        "workers",
        "sites",
        "epochs",
        "ranking",
        "ranking_repeats",
        "plot",
        "quiet",
    }
    assert shared <= set(actions["optimize"]) and shared <= set(actions["compare"])
    same = shared - {"ber", "max_accuracy_drop", "trials"}  # one BER vs several; TMR-CL's trials
    assert {d: actions["optimize"][d].default for d in same} == {d: actions["compare"][d].default for d in same}
    assert actions["optimize"]["objective"].default == "LUT"
