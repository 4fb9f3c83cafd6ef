"""`fpga-ft demo`: the whole story on the bundled digits MLP, end to end.

convert + csim (bit-exact) -> fault-injection sweep -> vulnerability analysis -> a short
cross-layer optimisation -> the reference comparison -> the protected HLS project, with
``report.md`` and PNG plots. Each step runs the same code as its CLI command (small
settings so the whole demo stays within a few minutes on 2 cores); the optimisation and the
comparison call the library (:func:`fpga_ft.search.optimize.optimize`,
:func:`fpga_ft.search.compare.run_compare`) on one evaluator (the model and data loaded once)
and use their results as they are; every step's JSON is written beside the report.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

from fpga_ft.commands._common import positive_int
from fpga_ft.core.paths import MODELS_DIR

DEMO_MODEL = MODELS_DIR / "digits_mlp.h5"
DEMO_DATA = MODELS_DIR / "digits_test.npz"
DEMO_TRAIN = MODELS_DIR / "digits_train.npz"
DEMO_BOARD = "zcu102"
SWEEP_BERS = ["1e-5", "1e-4", "3e-4", "1e-3", "1e-2"]


def register(sub):
    parser = sub.add_parser("demo", help="run the whole flow on the bundled digits MLP", description=__doc__)
    parser.add_argument("-o", "--output-dir", default="fpga-ft-demo", metavar="DIR",
                        help="where to write the project, plans, plots and report (default ./fpga-ft-demo)")
    parser.add_argument("--trials", type=positive_int, default=8, help="optimizer trials, >= 1 (default 8)")
    parser.set_defaults(func=run)
    return parser


@contextmanager
def _step(title: str, argv: list[str], name: str):
    """Announce one step (the command line it amounts to); its error becomes the demo's one
    error line, naming the step."""
    from fpga_ft.core.errors import FpgaFtError

    print(f"\n== {title}\n   $ fpga-ft {' '.join(argv)}", flush=True)
    try:
        yield
    except FpgaFtError as exc:
        raise FpgaFtError(f"demo step '{name}' (fpga-ft {argv[0]}) failed: {exc}") from None


def _run_step(title: str, argv: list[str], out: Path, name: str) -> dict:
    """Run one CLI command in-process with --json; return its result. Its error becomes
    the demo's one error line (naming the step); an interruption stops the demo."""
    from fpga_ft.cli import run
    from fpga_ft.core.errors import FpgaFtError

    path = out / f"{name}.json"
    with _step(title, argv, name):
        status = run([*argv, "--json", str(path)])
    if status != 0:
        raise FpgaFtError(f"demo step '{name}' failed (fpga-ft {argv[0]} exited {status})")
    return json.loads(path.read_text())


def _search_args(argv: list[str]):
    """The options of a search command line as the command parses them (its defaults), its
    output locations checked."""
    from fpga_ft.cli import build_parser
    from fpga_ft.core.outputs import check_args

    args = build_parser().parse_args(argv)
    check_args(args)
    return args


def _optimize_step(out: Path, trials: int):
    """Step 4 through the library: (evaluator, OptimizeResult, the command's JSON)."""
    from fpga_ft.cli import note_resumable, write_json
    from fpga_ft.commands import optimize as command
    from fpga_ft.commands._common import make_evaluator
    from fpga_ft.search.optimize import Target, display_url, optimize

    argv = ["optimize", str(DEMO_MODEL), "--data", str(DEMO_DATA), "--train", str(DEMO_TRAIN), "--ber", "1e-4", "--board", DEMO_BOARD,
            "--trials", str(trials), "--max-accuracy-drop", "0.03", "--repeats", "2", "--storage",
            f"sqlite:///{out / 'optuna.db'}", "--plan-out", str(out / "best_plan.yml"), "--plot",
            str(out / "pareto.png"), "--quiet"]
    with _step("4. cross-layer optimisation (short)", argv, "optimize"):
        args = _search_args(argv)
        ber, sites, objective = command.check_args(args)
        ev = make_evaluator(args)
        target = Target(ber=ber, max_accuracy_drop=args.max_accuracy_drop,
                        max_latency_overhead=args.max_latency_overhead, sites=sites)
        note_resumable(f"completed trials in the Optuna study in {display_url(args.storage)}")
        result = optimize(ev, target, trials=args.trials, storage=args.storage, seed=args.seed, progress=False,
                          objective=objective)
        # no feasible plan: the report says so and the project uses the analysis plan (no warning)
        confirmation = command.confirm_choice(result, ev, target, args.confirm_repeats, objective)
        step = command.write_outputs(result, args.storage, plan_out=args.plan_out if result.best else None,
                                     plot=args.plot, confirmation=confirmation)
        step["inexact"] = bool(args.inexact_layers)
        print(command.summary(step))
        write_json(step, str(out / "optimize.json"))
    return ev, result, step


def _compare_step(out: Path, trials: int, ev, inexact: bool) -> dict:
    """Step 5 through the library, on the optimisation's evaluator (``inexact``: whether its
    model is not bit-exact): the comparison's result."""
    from fpga_ft.cli import note_resumable, write_json
    from fpga_ft.commands import compare as command
    from fpga_ft.search.compare import run_compare
    from fpga_ft.search.optimize import display_url

    argv = ["compare", str(DEMO_MODEL), "--data", str(DEMO_DATA), "--train", str(DEMO_TRAIN), "--ber", "1e-4", "2e-4", "--board", DEMO_BOARD,
            "--trials", str(trials), "--repeats", "2", "--storage", f"sqlite:///{out / 'optuna_compare.db'}",
            "--plot", str(out / "compare.png"), "--quiet"]
    with _step("5. reference comparison: Base, TMR-CRT1..3, TMR-FULL, TMR-ARCH, TMR-ALG, TMR-CL", argv, "compare"):
        args = _search_args(argv)
        bers, drops, sites, objective = command.check_args(args)
        note_resumable(f"completed TMR-CL trials in the Optuna studies in {display_url(args.storage)}")
        result = run_compare(ev, bers, drops, max_latency_overhead=args.max_latency_overhead, trials=args.trials,
                             storage=args.storage, seed=args.seed, sites=sites, progress=False,
                             log=lambda message: None, validation_repeats=args.validation_repeats,
                             objective=objective)
        command.write_outputs(result, args.model, args.data, args.train, plot=args.plot, board_name=ev.board.name)
        result["inexact"] = inexact
        print(command.report_text(result))
        write_json(result, str(out / "compare.json"))
    return result


def _sweep_plot(path: Path, sweeps: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    clean = None
    for label, result in sweeps.items():
        rows = result["results"]
        bers = [r["ber"] for r in rows]
        mean = [100 * r["accuracy"]["mean"] for r in rows]
        low = [100 * (r["accuracy"]["mean"] - r["accuracy"]["ci_low"]) for r in rows]
        high = [100 * (r["accuracy"]["ci_high"] - r["accuracy"]["mean"]) for r in rows]
        ax.errorbar(bers, mean, yerr=[low, high], marker="o", capsize=3, label=label)
        clean = 100 * rows[0]["clean_accuracy"]
    if clean is not None:
        ax.axhline(clean, color="grey", linestyle="--", label=f"fault-free ({clean:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("bit error rate (faults per bit per inference), all fault sites")
    ax.set_ylabel("accuracy (%), 95% Wilson interval")
    ax.set_title("digits MLP: accuracy under faults per protection scheme")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _row(r: dict) -> str:
    a = r["accuracy"]
    return f"{100 * a['mean']:.2f}% [{100 * a['ci_low']:.2f}, {100 * a['ci_high']:.2f}]"


def _report(out: Path, s: dict, best: dict | None) -> str:
    """report.md from the steps' results ``s`` and the optimiser's best entry."""
    csim = s["csim"]
    lines = [
        "# fpga-ft demo report",
        "",
        f"Model `{DEMO_MODEL.name}` (QKeras 64-32-32-10, 6-bit), test data `{DEMO_DATA.name}` "
        f"({csim['samples']} samples), board {DEMO_BOARD}. Generated by `fpga-ft demo` in {s['seconds']:.0f} s.",
        "",
        "## 1. Bit-exact C simulation",
        f"csim accuracy {csim['accuracy']:.4f} (QKeras {csim['qkeras_accuracy']:.4f}); "
        f"csim output equals QKeras on {100 * csim['bit_exact_fraction']:.1f}% of samples; "
        f"{csim['inferences_per_second']:,.0f} inferences/s.",
        "",
        "## 2. Accuracy under faults (all sites, transient; 95% Wilson intervals)",
        "",
        "![accuracy vs BER](accuracy_vs_ber.png)",
        "",
        "| BER | " + " | ".join(s["sweeps"]) + " |",
        "|---|" + "---|" * len(s["sweeps"]),
    ]
    first = next(iter(s["sweeps"].values()))["results"]
    for i, r in enumerate(first):
        cells = [_row(sweep["results"][i]) for sweep in s["sweeps"].values()]
        lines.append(f"| {r['ber']:g} | " + " | ".join(cells) + " |")
    analysis = s["analyze"]
    lines += ["", "## 3. Vulnerability analysis", "", "![vulnerability](vulnerability.png)", ""]
    validation = analysis.get("validation", {})
    if validation:
        lines += ["| method | Spearman vs injection | top-10% loss share |", "|---|---|---|"]
        for method, v in validation.items():
            rho = v.get("spearman")
            share = v.get("top10_loss_share")
            rho = rho.get("pooled", rho) if isinstance(rho, dict) else rho
            lines.append(f"| {method} | {rho if rho is None else f'{rho:.3f}'} | "
                         f"{share if share is None else f'{share:.3f}'} |")
    knees = analysis.get("knee", {})
    if knees:
        lines += ["", "Knee (protected MSBs suggested by the bit-position analysis): " + ", ".join(
            f"{layer}: {k.get('protected_msbs')}" for layer, k in knees.items())]
    best = best or {}
    lines += ["", "## 4. Cross-layer optimisation (short run)", "", "![pareto](pareto.png)", ""]
    if best:
        acc = best.get("accuracy", {})
        lines.append(f"Best feasible plan: LUT {best.get('LUT'):,}, FF {best.get('FF'):,}, DSP {best.get('DSP'):,}, "
                     f"accuracy at BER 1e-4 (target: loss < 3 points) {100 * acc.get('mean', 0):.2f}% "
                     f"[{100 * acc.get('ci_low', 0):.2f}, {100 * acc.get('ci_high', 0):.2f}] -> `best_plan.yml`"
                     + (" (model: `best_plan.model.h5`, retrained with the plan's algorithm knobs)."
                        if s["optimize"].get("model_out") else "."))
    else:
        lines.append("No feasible plan in this short run (see optimize.json).")
    lines += ["", "## 5. Reference comparison", "", "![comparison](compare.png)", "",
              "| scheme | BER | accuracy | loss | LUT | LUT overhead | latency overhead | meets target |",
              "|---|---|---|---|---|---|---|---|"]
    for row in s["compare"]["rows"]:
        if row.get("accuracy") is None:
            lines.append(f"| {row['scheme']} | {row['ber']:g} | {row.get('note') or 'skipped'} "
                         "| | | | | |")
            continue
        lines.append(f"| {row['scheme']} | {row['ber']:g} | {_row(row)} | {100 * row['accuracy_loss']:.2f}% | "
                     f"{row['LUT']:,} | {100 * row['lut_overhead']:.1f}% | {100 * row['latency_overhead']:.1f}% | "
                     f"{'yes' if row['meets_target'] else 'no'} |")
    from fpga_ft.commands.compare import verdict_lines

    lines += ["", "Verdict (accuracy re-measured by an independent campaign):", ""]
    lines += [f"- {line}" for line in verdict_lines(s["compare"])]
    conv = s["convert"]
    lines += ["", "## 6. HLS project", "",
              f"`{conv['output_dir']}` ({conv['backend']}, {conv['part']}), protected layers: "
              f"{', '.join(conv['protected_layers']) or 'none'}; keep-replicas constraints "
              f"`fpgaft_keep_replicas.xdc`; test vectors in `tb_data/` "
              f"(csim equals QKeras on {100 * conv['test_vectors']['bit_exact_fraction']:.1f}%). "
              "Vitis/Vivado are not run here: `fpga-ft build DIR --synth` where they are installed.", ""]
    return "\n".join(lines)


def run(args) -> dict:
    from fpga_ft.cli import forget_resumable
    from fpga_ft.core.outputs import staged_directory

    out = Path(args.output_dir).resolve()
    if out.is_dir():  # a previous demo's directory is updated in place: its Optuna studies resume
        return _run(args, out, out)
    staging = None
    try:
        # a new demo directory is written in a hidden sibling and moved into place at the end
        with staged_directory(out) as staging:
            result = _run(args, staging.path, staging.target)
    except BaseException:
        if staging is not None:  # its Optuna studies went with it: nothing there to resume
            forget_resumable(str(staging.path))
        raise
    return staging.retarget(result)


def _run(args, out: Path, shown: Path) -> dict:
    """The demo, writing into ``out``; ``shown``: where its results end up (messages)."""
    from fpga_ft.core.outputs import atomic_path, write_text_atomic

    start = time.perf_counter()
    if out != shown:
        print(f"writing to {out}; it becomes {shown} when the demo has finished", flush=True)
    model, data, train = str(DEMO_MODEL), str(DEMO_DATA), str(DEMO_TRAIN)
    s: dict = {"model": model, "data": data, "board": DEMO_BOARD}

    s["csim"] = _run_step("1. bit-exact C simulation (unprotected)", ["csim", model, "--data", data], out, "csim")
    sweeps = {}
    sweeps["Base (unprotected)"] = _run_step(
        "2. fault-injection sweep, unprotected",
        ["inject", model, "--data", data, "--ber", *SWEEP_BERS, "--repeats", "3"], out, "inject_base")
    s["analyze"] = _run_step(
        "3. vulnerability analysis -> plan (top 10% neurons model-wide, knee MSBs)",
        ["analyze", model, "--data", data, "--train", train, "--method", "all", "--plot", str(out / "vulnerability.png"),
         "--plan-out", str(out / "analyzed_plan.yml"), "--critical-fraction", "0.1", "--budget", "model",
         "--msbs", "knee"], out, "analyze")
    sweeps["analysis plan"] = _run_step(
        "   sweep with the analysis plan",
        ["inject", model, "--data", data, "--ber", *SWEEP_BERS, "--repeats", "3",
         "--plan", str(out / "analyzed_plan.yml")], out, "inject_analyzed")
    ev, optimized, s["optimize"] = _optimize_step(out, args.trials)
    best = optimized.best
    plan_for_project = out / "best_plan.yml" if best is not None else out / "analyzed_plan.yml"
    # a plan with algorithm knobs protects the retrained model the optimizer wrote beside it
    model_for_project = (s["optimize"].get("model_out") or model) if best is not None else model
    if best is not None:
        sweeps["optimizer plan"] = _run_step(
            "   sweep with the optimizer's plan",
            ["inject", model_for_project, "--data", data, "--ber", *SWEEP_BERS, "--repeats", "3",
             "--plan", str(out / "best_plan.yml")], out, "inject_best")
    s["sweeps"] = sweeps
    with atomic_path(out / "accuracy_vs_ber.png") as temp:
        _sweep_plot(temp, sweeps)
    s["compare"] = _compare_step(out, args.trials, ev, s["optimize"]["inexact"])
    s["convert"] = _run_step(
        "6. protected HLS project with test vectors",
        ["convert", model_for_project, "--board", DEMO_BOARD, "--plan", str(plan_for_project), "--data", data,
         "-o", str(out / "project")], out, "convert")
    s["seconds"] = time.perf_counter() - start
    report = out / "report.md"
    write_text_atomic(report, _report(out, s, best))
    print(f"\ndemo finished in {s['seconds']:.0f} s: {shown / report.name}")
    return {"output_dir": str(out), "report": str(report), "seconds": round(s["seconds"], 1),
            "steps": {k: v for k, v in s.items() if k not in ("model", "data", "board", "seconds")}}
