"""`fpga-ft demo`: the main job on the bundled digits MLP, end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fpga_ft.paths import MODELS_DIR

DEMO_MODEL = MODELS_DIR / "digits_mlp.h5"
DEMO_DATA = MODELS_DIR / "digits_test.npz"
DEMO_BOARD = "pynq-z2"


def register(sub):
    parser = sub.add_parser("demo", help="run the whole flow on the bundled digits MLP", description=__doc__)
    parser.add_argument("-o", "--output-dir", default="fpga-ft-demo", metavar="DIR",
                        help="where to write the project, plan, plots and report (default ./fpga-ft-demo)")
    parser.set_defaults(func=run)
    return parser


def _step(title: str):
    print(f"\n== {title}", flush=True)


def run(args) -> dict:
    from fpga_ft.bitexact import compare_outputs
    from fpga_ft.boards import get_board
    from fpga_ft.design import build_design
    from fpga_ft.modelio import load_data, load_model
    from fpga_ft.plan import ProtectionPlan

    start = time.perf_counter()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    board = get_board(DEMO_BOARD)
    model = load_model(DEMO_MODEL)
    x, y = load_data(DEMO_DATA)
    reference = model.predict(x, verbose=0)
    summary = {"model": str(DEMO_MODEL), "data": str(DEMO_DATA), "board": board.key, "steps": {}}

    _step("1. convert: unprotected baseline and a protected design (top 2 MSBs TMR'd on every layer)")
    base = build_design(model, None, board=board)
    plan = ProtectionPlan.uniform(base.layers, protected_msbs=2)
    plan_path = out / "plan.yml"
    plan.save(plan_path)
    project = build_design(model, plan, board=board, output_dir=out / "project", x=x, golden=reference)
    print(f"project: {project.project_dir} (part {project.meta['part']}, backend {project.meta['backend']})")
    print(f"plan: {plan_path}")
    summary["steps"]["convert"] = {"project_dir": str(project.project_dir), "plan": str(plan_path),
                                   "layers": [info.name for info in project.layers]}

    _step("2. csim: fault-free C simulation must equal QKeras bit for bit")
    csim = {}
    for label, design in (("unprotected", base), ("protected", project)):
        comparison = compare_outputs(design.predict(x), reference, y)
        csim[label] = comparison
        print(f"{label:>12}: accuracy {comparison['csim_accuracy']:.4f} (QKeras {comparison['reference_accuracy']:.4f}), "
              f"bit-exact on {comparison['bit_exact_fraction']:.1%} of {len(x)} samples")
    summary["steps"]["csim"] = csim

    summary["seconds"] = round(time.perf_counter() - start, 1)
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\ndemo finished in {summary['seconds']} s; summary: {out / 'demo.json'}")
    return summary
