"""``fpga-ft verify MODEL --plan PLAN --layer NAME --neuron J``: prove one neuron's protection.

Generates the structural Verilog twin of neuron / output channel ``J`` of layer ``NAME``
from :mod:`fpga_ft.core.structure` (see :mod:`fpga_ft.measure.twin`), then with Yosys and Icarus
Verilog (Debian ``yosys`` and ``iverilog``; no Xilinx tool needed):

* checks the twin bit for bit against the reference fixed-point arithmetic;
* proves with Yosys's SAT solver that every node bit the structure calls masked is masked
  for all inputs, and finds an input for every other node bit on which a flip there
  changes the output: the set of unmasked node bits must equal the structure's (= the
  bits the C simulation exposes unprotected), else the command fails with exit status 1;
* synthesises the twin (``synth_xilinx -family xc7 -nodsp -noiopad``) with the kept
  replica modules (``yosys_lut``), flattened without keep (``yosys_lut_no_keep``) and the
  unprotected twin of the same products (``yosys_lut_unprotected``), in LUT cells.

A *time-shared* layer (``LayerInfo.time_shared``: ``ReuseFactor > 1``, from the model's
config or ``--reuse-factor``) has no per-neuron dot product: its ``n_units`` shared MAC
units serve every neuron (``--neuron`` only picks which units are listed). The command
then verifies the MAC unit (:func:`fpga_ft.measure.twin.verify_time_shared`): the SAT proof on a
chain of two MAC steps and the output voter, the witnesses of the unmasked node bits,
and the cost of the whole layer twin (``n_units`` x the unit + the units' weight ROMs
and input selects + the accumulators' start muxes and output voters), protected and
unprotected, with the estimate's figure for the layer (Yosys scale) and their ratio.
"""

from __future__ import annotations

import sys

from fpga_ft.commands._common import add_model_argument
from fpga_ft.core.errors import FpgaFtError


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
    parser.add_argument("--reuse-factor", type=int, default=None, metavar="R",
                        help="hls4ml reuse factor of every layer (default: the config YAML's, else 1); R > 1 "
                             "makes a layer time-shared: its MAC unit is verified")
    parser.add_argument("--no-synth", action="store_true", help="skip the LUT syntheses")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.commands._common import open_prepared
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.measure.twin import find_tool, verify_neuron

    find_tool("yosys")
    find_tool("iverilog")
    if args.vectors < 4:
        raise FpgaFtError(f"--vectors must be >= 4, got {args.vectors}")
    if not args.sat_timeout > 0:
        raise FpgaFtError(f"--sat-timeout must be positive, got {args.sat_timeout}")
    if args.reuse_factor is not None and args.reuse_factor < 1:
        raise FpgaFtError(f"--reuse-factor must be >= 1, got {args.reuse_factor}")
    plan = ProtectionPlan.load(args.plan) if args.plan else ProtectionPlan()
    prepared = open_prepared(args)
    names = [layer.name for layer in prepared.model.layers]
    if args.layer not in names:
        raise FpgaFtError(f"unknown layer '{args.layer}' (layers: {', '.join(names)})")
    info = _layer_info(prepared, plan, args.layer, args.reuse_factor)
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


def _layer_info(prepared, plan, name, reuse_factor=None):
    """The LayerInfo of ``name`` of a :class:`~fpga_ft.generate.intake.PreparedModel` (hls4ml
    conversion with the model's own config, ``reuse_factor`` over it, no C compilation)."""
    import tempfile

    from fpga_ft.generate.convert import convert_model

    with tempfile.TemporaryDirectory(prefix="fpgaft_verify_") as tmp:
        layers = convert_model(prepared, plan, output_dir=tmp, reuse_factor=reuse_factor).layers
    plan.validate(layers)
    for info in layers:
        if info.name == name:
            return info
    raise FpgaFtError(f"layer '{name}' has no dot product to verify "
                      f"(protectable layers: {', '.join(i.name for i in layers)})")


def _summary(r: dict) -> str:
    if r.get("time_shared"):
        return _summary_time_shared(r)
    lines = [f"{r['layer']}[{r['neuron']}]: {r['scheme']}, W={r['width']}"
             + (f", k={r['protected_msbs']}" if r.get("protected_msbs") else "")
             + f", {r['n_products']} products, {r['n_sums']} adds"]
    if r.get("yosys_lut") is not None:
        est = f", estimate {r['estimate_lut']:,.0f}" if isinstance(r.get("estimate_lut"), (int, float)) else ""
        lines.append(f"  Yosys LUT: {r['yosys_lut']:,} kept, {r['yosys_lut_no_keep']:,} without keep, "
                     f"{r['yosys_lut_unprotected']:,} unprotected{est}")
    lines.append(f"  node bits: {_node_bits_and_sat(r)} ({r['sat']['method']})")
    lines += _methods_and_instances(r)
    same = _unmasked_as_structure(r)
    mismatches = r["simulation"]["bit_exact_mismatches"]
    exact = "bit-exact" if not mismatches else f"NOT bit-exact ({mismatches} mismatches)"
    lines.append(f"  {'OK' if r['ok'] else 'FAILED'}: unmasked node bits {'equal' if same else 'differ from'} "
                 f"the structure's; twin {exact} on {r['simulation']['vectors']} vectors; {r['seconds']:.0f} s")
    return "\n".join(lines)


def _node_bits_and_sat(r: dict) -> str:
    """Node bits, masked and unmasked (and the structure's count), and the SAT verdict."""
    return (f"{r['nodes']:,}, masked {r['faults_masked']:,}, unmasked {len(r['unmasked_nodes']):,} "
            f"(structure: {len(r['csim_unprotected_bits']):,}); SAT {r['sat']['status']} "
            f"in {r['sat']['seconds']:.1f} s")


def _unmasked_as_structure(r: dict) -> bool:
    """The twin's unmasked node bits are the structure's (no 'unmasked' failure)."""
    return not any("unmasked" in f for f in r["failures"])


def _methods_and_instances(r: dict) -> list[str]:
    """How each node class was settled, and the kept replica instances."""
    inst = ", ".join(f"{k} x{v}" for k, v in sorted(r["module_instances"].items())) or "none"
    return [f"    {cls:<16} {method}" for cls, method in sorted(r["methods"].items())] + [f"  kept instances: {inst}"]


def _summary_time_shared(r: dict) -> str:
    def num(v, fmt=",.0f"):
        return format(v, fmt) if isinstance(v, (int, float)) else "n/a"

    unit = r["unit"]
    lines = [f"{r['layer']}: time-shared, {r['n_in']}x{r['n_out']} products on {r['n_units']} MAC units "
             f"(R={r['reuse_factor']}), {r['scheme']}, W={r['width']}"
             + (f", k={r['protected_msbs']}" if r.get("protected_msbs") else "")
             + (f"; neuron {r['neuron']} on units {_ranges(r['units_of_neuron'])}" if r.get("units_of_neuron") else "")]
    if r.get("yosys_lut") is not None:
        lines.append(f"  MAC unit, Yosys LUT: {num(unit['yosys_lut'])} ({num(unit['yosys_lut_unprotected'])} "
                     f"unprotected, x{num(unit['protected_over_unprotected'], '.2f')}); "
                     "estimate "
                     f"{num(unit['estimate_lut'])} (x{num(unit['estimate_over_yosys'], '.2f')})")
        b = r["yosys_breakdown"]
        lines.append(f"  layer, Yosys LUT: {num(r['yosys_lut'])} = {b['n_units']} x {num(b['unit_lut'])} + feeds "
                     f"{num(b['feed_lut'])} + glue {num(b['glue_lut'])}; unprotected "
                     f"{num(r['yosys_lut_unprotected'])}; FF {num(r['yosys_ff'])} "
                     f"({num(r['yosys_ff_unprotected'])} unprotected)")
        lines.append(f"  estimate (Yosys scale, all fabric): {num(r['estimate_lut'])} LUT "
                     f"(x{num(r['estimate_over_yosys'], '.2f')} of Yosys), unprotected "
                     f"{num(r['estimate_lut_unprotected'])}; protection {num(r['protection_lut'])} LUT by Yosys, "
                     f"{num(r['estimate_protection_lut'])} estimated")
    lines.append(f"  MAC chain ({unit['steps_proved']} steps + output voter): node bits {_node_bits_and_sat(r)}")
    lines += _methods_and_instances(r)
    same = _unmasked_as_structure(r)
    sim = r["simulation"]
    exact = sim["bit_exact_mismatches"] == 0 and not any(sim["layer_mismatches"].values())
    lines.append(f"  {'OK' if r['ok'] else 'FAILED'}: unmasked node bits {'equal' if same else 'differ from'} the "
                 f"structure's; MAC chain {'bit-exact' if sim['bit_exact_mismatches'] == 0 else 'NOT bit-exact'} on "
                 f"{sim['vectors']} vectors, layer twin{'s' if len(sim['layer_mismatches']) > 1 else ''} "
                 f"{'bit-exact' if exact else 'NOT bit-exact'} on {sim['layer_vectors']}; {r['seconds']:.0f} s")
    return "\n".join(lines)


def _ranges(units) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    out, start, prev = [], None, None
    for u in list(units) + [None]:
        if start is not None and (u is None or u != prev + 1):
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = None
        if u is not None and start is None:
            start = u
        prev = u
    return ", ".join(out)
