"""`fpga-ft csim`: compile and run the bit-exact C simulation; compare with QKeras."""

from __future__ import annotations

import time

from fpga_ft.commands._common import add_design_options, add_model_argument, design_kwargs, load_common


def register(sub):
    parser = sub.add_parser("csim", help="run the fault-free C simulation and check bit-exactness",
                            description=__doc__)
    add_model_argument(parser)
    parser.add_argument("--data", metavar="D.npz", required=True, help="npz with arrays x, y")
    add_design_options(parser)
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.bitexact import compare_outputs
    from fpga_ft.design import build_design

    loaded = load_common(args)
    model, x, y = loaded["model"], loaded["x"], loaded["y"]
    design = build_design(model, loaded["plan"], compile=False, **design_kwargs(args, loaded))
    lib = design.library  # compiles (or reuses the cached library)
    start = time.perf_counter()
    csim = design.predict(x)
    seconds = time.perf_counter() - start
    reference = model.predict(x, verbose=0)
    comparison = compare_outputs(csim, reference, y)
    result = {
        "samples": int(len(x)),
        "accuracy": comparison["csim_accuracy"],
        "qkeras_accuracy": comparison["reference_accuracy"],
        "bit_exact_fraction": comparison["bit_exact_fraction"],
        "max_abs_difference": comparison["max_abs_difference"],
        "compile_seconds": round(design.compile_seconds, 3),
        "inferences_per_second": round(len(x) / seconds, 1) if seconds > 0 else None,
        "project_dir": str(design.project_dir),
        "library": lib.path.name,
        "protected_layers": design.plan.protected_layers,
    }
    print(f"csim: {result['samples']} samples, accuracy {result['accuracy']:.4f} "
          f"(QKeras {result['qkeras_accuracy']:.4f}), bit-exact on {result['bit_exact_fraction']:.1%}, "
          f"{result['inferences_per_second']} inferences/s")
    return result
