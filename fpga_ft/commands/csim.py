"""`fpga-ft csim`: compile and run the bit-exact C simulation; compare with QKeras.

The comparison is on the tensor fpga-ft converts: when the model ends with a lookup-table
softmax (or sigmoid / tanh), on the tensor before it (``compared_tensor``), with classes by
argmax (one output: > 0, the sigmoid's > 0.5); how often hls4ml's table head changes the class is measured separately with
hls4ml's own compile()/predict() of the full model (``head``)."""

from __future__ import annotations

import time

from fpga_ft.commands._common import (add_design_options, add_exactness_option, add_model_argument, design_kwargs,
                                      load_common)


def register(sub):
    parser = sub.add_parser("csim", help="run the fault-free C simulation and check bit-exactness",
                            description=__doc__)
    add_model_argument(parser)
    parser.add_argument("--data", metavar="D.npz", required=True, help="npz with arrays x, y")
    add_design_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--no-head-check", action="store_true",
                        help="skip the hls4ml compile()/predict() run that counts class changes by the model's "
                             "final table softmax/sigmoid/tanh")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.generate.bitexact import compare_outputs, head_class_changes
    from fpga_ft.generate.design import build_design

    loaded = load_common(args)
    model, x, y, prepared = loaded["model"], loaded["x"], loaded["y"], loaded["prepared"]
    kwargs = design_kwargs(args, loaded)
    design = build_design(model, loaded["plan"], compile=False, **kwargs)
    lib = design.library  # compiles (or reuses the cached library)
    start = time.perf_counter()
    csim = design.predict(x)
    seconds = time.perf_counter() - start
    reference = model.predict(x, verbose=0)
    comparison = compare_outputs(csim, reference, y, compared_tensor=prepared.compared_tensor, head=design.output_head)
    head = None
    if prepared.head is not None and not args.no_head_check:
        head = head_class_changes(prepared, x, csim, y, board=kwargs["board"], backend=kwargs["backend"],
                                  io_type=kwargs["io_type"], reuse_factor=kwargs["reuse_factor"])
    result = {
        "samples": int(len(x)),
        "accuracy": comparison["csim_accuracy"],
        "qkeras_accuracy": comparison["reference_accuracy"],
        "bit_exact_fraction": comparison["bit_exact_fraction"],
        "compared_tensor": prepared.compared_tensor,
        "max_abs_difference": comparison["max_abs_difference"],
        "compile_seconds": round(design.compile_seconds, 3),
        "inferences_per_second": round(len(x) / seconds, 1) if seconds > 0 else None,
        "project_dir": str(design.project_dir),
        "library": lib.path.name,
        "protected_layers": design.plan.protected_layers,
        "bit_exact_conversion": design.meta.get("bit_exact_conversion"),
        "intake": prepared.describe(),
        "head": head,
    }
    print(f"csim: {result['samples']} samples, accuracy {result['accuracy']:.4f} "
          f"(QKeras {result['qkeras_accuracy']:.4f}), bit-exact on {result['bit_exact_fraction']:.1%} "
          f"({result['compared_tensor']}), {result['inferences_per_second']} inferences/s")
    if head is not None:
        acc = head["accuracy_with_table_head"]
        print(f"hls4ml's table {head['activation']} ('{head['layer']}') changes the class of {head['class_changes']} "
              f"of {head['samples']} samples ({head['class_change_fraction']:.2%})"
              + (f"; accuracy with it {acc:.4f}" if acc is not None else "")
              + " (hls4ml compile()/predict() of the full model)")
    return result
