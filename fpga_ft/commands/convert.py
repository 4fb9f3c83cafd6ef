"""`fpga-ft convert`: write a complete HLS project with the protection inserted."""

from __future__ import annotations

from fpga_ft.commands._common import add_design_options, add_model_argument, design_kwargs, load_common


def register(sub):
    parser = sub.add_parser("convert", help="QKeras model -> protected HLS project (Vitis/Vivado)",
                            description=__doc__)
    add_model_argument(parser)
    add_design_options(parser, board_required=True)
    parser.add_argument("--data", metavar="D.npz", help="write test vectors (inputs, golden csim outputs) for the testbench")
    parser.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="project directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    import numpy as np

    from fpga_ft.generate.design import build_design

    loaded = load_common(args, need_data=False)
    prepared = loaded["prepared"]
    x = loaded["x"]
    golden = None
    bit_exact = None
    if x is not None:
        # golden vectors = bit-exact QKeras outputs; the csim below must reproduce them
        golden = loaded["model"].predict(x, verbose=0)
    from fpga_ft.core.outputs import staged_directory

    # built in a hidden sibling and moved into place at the end: never a partial project
    with staged_directory(args.output_dir) as staging:
        design = build_design(loaded["model"], loaded["plan"], output_dir=staging.path, x=x, golden=golden,
                              compile=x is not None, **design_kwargs(args, loaded))
        if x is not None:
            csim = design.predict(x)
            bit_exact = float(np.mean(np.all(csim.reshape(golden.shape) == golden,
                                             axis=tuple(range(1, golden.ndim)))))
    meta = design.meta
    result = {
        "output_dir": str(staging.target),
        "board": loaded["board"].key,
        "part": meta["part"],
        "backend": meta["backend"],
        "io_type": meta["io_type"],
        "clock_period_ns": meta["clock_period_ns"],
        "protected_layers": meta["protected_layers"],
        "layers": [{"name": info.name, "kind": info.kind, "n_in": info.n_in, "n_out": info.n_out,
                    "accum_bits": info.accum_type.width,
                    **loaded["plan"].for_layer(info.name).to_dict()} for info in design.layers],
        "keep_replicas": ["fpgaft_keep_replicas.xdc", "fpgaft_check_replicas.tcl"],
        "test_vectors": None if x is None else {"samples": int(len(x)), "bit_exact_fraction": bit_exact,
                                                "compared_tensor": prepared.compared_tensor},
        "intake": prepared.describe(),
        "note": "HLS/Vivado are not run here: `fpga-ft build DIR --synth` runs them where they are on PATH",
    }
    print(f"wrote {result['output_dir']} ({result['backend']}, {result['part']}, "
          f"{1000.0 / meta['clock_period_ns']:.0f} MHz); protected layers: "
          f"{', '.join(result['protected_layers']) or 'none'}")
    if prepared.head is not None:
        print(f"the project ends before the final {prepared.head['activation']} ('{prepared.head['layer']}'): its "
              f"outputs are layer '{prepared.head['compared_layer']}' (take the class by argmax)")
    if prepared.input_type is not None:
        print(f"inputs are {prepared.input_type.c_type()} words (tb_data/ holds them quantized)")
    if x is not None:
        print(f"test vectors: {len(x)} samples in tb_data/; csim equals QKeras on {bit_exact:.1%} "
              f"({prepared.compared_tensor})")
    return result
