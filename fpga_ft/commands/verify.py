"""``fpga-ft verify MODEL --plan PLAN --layer NAME --neuron J``: prove one neuron's protection.

Generates the structural Verilog twin of neuron / output channel ``J`` of layer ``NAME``
from :mod:`fpga_ft.structure` (see :mod:`fpga_ft.twin`), then with Yosys and Icarus
Verilog (Debian ``yosys`` and ``iverilog``; no Xilinx tool needed):

* checks the twin bit for bit against the reference fixed-point arithmetic;
* proves with Yosys's SAT solver that every node bit the structure calls masked is masked
  for all inputs, and finds an input for every other node bit on which a flip there
  changes the output: the set of unmasked node bits must equal the structure's (= the
  bits the C simulation exposes unprotected), else the command fails with exit status 1;
* synthesises the twin (``synth_xilinx -family xc7 -nodsp -noiopad``) with the kept
  replica modules (``yosys_lut``), flattened without keep (``yosys_lut_no_keep``) and the
  unprotected twin of the same products (``yosys_lut_unprotected``), in LUT cells.
"""

from __future__ import annotations

import sys

from fpga_ft.commands._common import add_model_argument
from fpga_ft.errors import FpgaFtError


def register(subparsers):
    parser = subparsers.add_parser(
        "verify", help="Yosys proof and cost of one neuron's protected dot product (structural twin)",
        description=__doc__.split("\n\n")[0] + " Needs yosys and iverilog on PATH.")
    add_model_argument(parser)
    parser.add_argument("--plan", metavar="PLAN.yml", help="protection plan (YAML); default: unprotected")
    parser.add_argument("--layer", required=True, metavar="NAME", help="Dense/Conv layer name")
    parser.add_argument("--neuron", required=True, type=int, metavar="J",
                        help="neuron (Dense) or output channel (Conv) index, 0-based")
    parser.add_argument("--sat-timeout", type=float, default=300.0, metavar="S",
                        help="seconds per SAT run before falling back to simulation (default 300)")
    parser.add_argument("--vectors", type=int, default=64, metavar="N",
                        help="random input vectors for the simulation checks (default 64)")
    parser.add_argument("--no-synth", action="store_true", help="skip the three LUT syntheses")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.commands._common import open_prepared
    from fpga_ft.plan import ProtectionPlan
    from fpga_ft.twin import find_tool, verify_neuron

    find_tool("yosys")
    find_tool("iverilog")
    if args.vectors < 4:
        raise FpgaFtError(f"--vectors must be >= 4, got {args.vectors}")
    if not args.sat_timeout > 0:
        raise FpgaFtError(f"--sat-timeout must be positive, got {args.sat_timeout}")
    plan = ProtectionPlan.load(args.plan) if args.plan else ProtectionPlan()
    prepared = open_prepared(args)
    names = [layer.name for layer in prepared.model.layers]
    if args.layer not in names:
        raise FpgaFtError(f"unknown layer '{args.layer}' (layers: {', '.join(names)})")
    info = _layer_info(prepared, plan, args.layer)
    if not 0 <= args.neuron < info.n_out:
        unit = "channel" if info.kind.startswith("Conv") else "neuron"
        raise FpgaFtError(f"{unit} {args.neuron} out of range 0..{info.n_out - 1} of layer '{args.layer}'")

    def progress(msg: str) -> None:
        print(f"verify: {msg}", file=sys.stderr, flush=True)

    result = verify_neuron(info, plan.for_layer(args.layer), args.neuron, sat_timeout=args.sat_timeout,
                           vectors=args.vectors, synth=not args.no_synth, progress=progress)
    result["model"] = str(args.model)
    result["plan"] = args.plan
    print(_summary(result))
    if not result["ok"]:
        if args.json:
            from fpga_ft.cli import write_json

            write_json(result, args.json)
        for failure in result["failures"]:
            print(f"verify failed: {failure}", file=sys.stderr)
        raise SystemExit(1)
    return result


def _layer_info(prepared, plan, name):
    """The LayerInfo of ``name`` of a :class:`~fpga_ft.intake.PreparedModel` (hls4ml
    conversion with the model's own config, no C compilation)."""
    import tempfile

    from fpga_ft.convert import convert_model

    with tempfile.TemporaryDirectory(prefix="fpgaft_verify_") as tmp:
        layers = convert_model(prepared, plan, output_dir=tmp).layers
    plan.validate(layers)
    for info in layers:
        if info.name == name:
            return info
    raise FpgaFtError(f"layer '{name}' has no dot product to verify "
                      f"(protectable layers: {', '.join(i.name for i in layers)})")


def _summary(r: dict) -> str:
    lines = [f"{r['layer']}[{r['neuron']}]: {r['scheme']}, W={r['width']}"
             + (f", k={r['protected_msbs']}" if r.get("protected_msbs") else "")
             + f", {r['n_products']} products, {r['n_sums']} adds"]
    if r.get("yosys_lut") is not None:
        est = f", estimate {r['estimate_lut']:,.0f}" if isinstance(r.get("estimate_lut"), (int, float)) else ""
        lines.append(f"  Yosys LUT: {r['yosys_lut']:,} kept, {r['yosys_lut_no_keep']:,} without keep, "
                     f"{r['yosys_lut_unprotected']:,} unprotected{est}")
    lines.append(f"  node bits: {r['nodes']:,}, masked {r['faults_masked']:,}, unmasked {len(r['unmasked_nodes']):,} "
                 f"(structure: {len(r['csim_unprotected_bits']):,}); SAT {r['sat']['status']} "
                 f"in {r['sat']['seconds']:.1f} s ({r['sat']['method']})")
    for cls, method in sorted(r["methods"].items()):
        lines.append(f"    {cls:<16} {method}")
    inst = ", ".join(f"{k} x{v}" for k, v in sorted(r["module_instances"].items())) or "none"
    lines.append(f"  kept instances: {inst}")
    same = not any("unmasked" in f for f in r["failures"])
    mismatches = r["simulation"]["bit_exact_mismatches"]
    exact = "bit-exact" if not mismatches else f"NOT bit-exact ({mismatches} mismatches)"
    lines.append(f"  {'OK' if r['ok'] else 'FAILED'}: unmasked node bits {'equal' if same else 'differ from'} "
                 f"the structure's; twin {exact} on {r['simulation']['vectors']} vectors; {r['seconds']:.0f} s")
    return "\n".join(lines)
