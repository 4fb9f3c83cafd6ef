"""`fpga-ft bringup`: generate everything to bring a protected design up on a board."""

from __future__ import annotations

from fpga_ft.commands._common import add_model_argument, load_common, positive_int


def register(sub):
    parser = sub.add_parser("bringup", help="HLS project, bitstream/IP scripts, test vectors, testbench, checklist",
                            description=__doc__)
    add_model_argument(parser)
    parser.add_argument("--board", required=True, metavar="NAME",
                        help="target board (see `fpga-ft boards`); its part, clock and backend win over a config "
                             "YAML's Part/ClockPeriod/Backend")
    parser.add_argument("--plan", metavar="PLAN.yml", help="protection plan (default: unprotected)")
    parser.add_argument("--data", required=True, metavar="D.npz", help="test data: vectors and reliability campaign")
    parser.add_argument("-o", "--output-dir", required=True, metavar="DIR")
    parser.add_argument("--ber", type=float, nargs="+", default=[1e-4, 1e-3], metavar="B",
                        help="BERs (faults per bit per inference) for the reliability table (default 1e-4 1e-3)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="passes over the data per BER (default 3)")
    parser.add_argument("--vectors", type=positive_int, default=None, metavar="N",
                        help="test vectors to write, >= 1 (default: all)")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.core.faults import parse_ber
    from fpga_ft.deploy.bringup import generate_bringup

    for ber in args.ber:
        parse_ber(ber)
    from fpga_ft.core.outputs import staged_directory

    loaded = load_common(args)
    # the kit is written in a hidden sibling and moved into place at the end: never a partial kit
    with staged_directory(args.output_dir) as staging:
        summary = generate_bringup(loaded["model"], loaded["board"], loaded["plan"], loaded["x"], loaded["y"],
                                   staging.path, bers=args.ber, repeats=args.repeats,
                                   n_vectors=args.vectors, progress=True, hls_config=loaded["prepared"].hls_config)
    summary = staging.retarget(summary)
    summary["intake"] = loaded["prepared"].describe()
    print(f"bring-up kit for {summary['board']} ({summary['part']}) in {summary['output_dir']}: see BRINGUP.md")
    if not summary["vendor"]["found"]:
        print(f"{summary['vendor']['tool']} not on PATH: generated only; vendor csim/synthesis not run")
    return summary
