"""Power-of-two weights: is the estimate of a quantized_po2 layer what Yosys builds?

Issue 11 asks that ``estimate`` of a po2 layer be within 1.5x of "the same layer written with
quantized_bits of equal values minus its multipliers' cost". Measured on hls4ml's published
``qkeras_mnist_dense`` (layer ``q_dense_2``, quantized_po2 weights, 2-bit unsigned inputs),
converted with ReuseFactor 1 (constant weights, so a po2 product is a shift), per sampled
neuron (all at Yosys scale: ``resources.neuron_lut_yosys`` against Yosys ``synth_xilinx`` of
the structural twin ``fpga_ft.measure.twin``, flattened):

1. the po2 neuron: estimate and Yosys of its twin. The same values written as
   ``quantized_bits`` are the same weight codes, hence the same structure, twin and estimate
   (the estimator sees codes, not quantizers);
2. its multipliers' cost: Yosys of the po2 twin minus Yosys of the same tree with every
   product ``x * (+-2^s)`` replaced by ``+-x`` (sign kept, shift dropped); the criterion's
   reference "equal values minus multipliers" is that second figure, and the ratio printed
   is estimate / it;
3. for contrast, the neuron with generic ``quantized_bits`` weights of the same width and
   sparsity (random values on the same grid): estimate and Yosys.

Prints measured numbers only. Needs yosys. Usage:
    python scripts/check_po2_estimate.py [--neurons 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DENSE_YAML = ROOT / "tests" / "fixtures" / "hls4ml_examples" / "qkeras_mnist_dense_config.yml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fpga_ft.core.plan import LayerProtection
    from fpga_ft.core.structure import NeuronStructure, Term, Unprotected, layer_structure
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import open_model
    from fpga_ft.measure.resources import neuron_lut_yosys
    from fpga_ft.measure.twin import Arithmetic, Twin, synthesize

    prepared = open_model(DENSE_YAML, announce=False)
    design = build_design(prepared, None, reuse_factor=1)
    info = next(i for i in design.layers if i.name == "q_dense_2")
    w = np.asarray(info.weights).reshape(info.n_in, info.n_out)
    print(f"layer {info.name}: {info.n_in} -> {info.n_out}, weight {info.weight_type}, input {info.input_type}, "
          f"accum {info.accum_type}; non-zero weights {np.count_nonzero(w)} of {w.size}")
    rng = np.random.default_rng(0)
    grid = 2.0 ** -info.weight_type.fractional
    lo, hi = -(2 ** (info.weight_type.width - 1)), 2 ** (info.weight_type.width - 1) - 1
    generic = np.where(w != 0, rng.integers(lo, hi + 1, w.shape) * grid, 0.0)
    generic[(w != 0) & (generic == 0)] = grid  # keep the same sparsity
    qbits = dataclasses.replace(info, weights=generic)
    arith = Arithmetic.of_layer(info)
    rows = []
    for j in rng.choice(info.n_out, size=min(args.neurons, info.n_out), replace=False):
        j = int(j)
        row = {"neuron": j}
        for label, layer in (("po2", info), ("generic_quantized_bits", qbits)):
            ns = layer_structure(layer, LayerProtection()).neurons[j]
            twin = Twin(ns, arith, info.n_in)
            syn = synthesize(twin.verilog(), twin.top, keep=False)
            row[label] = {"products": ns.n_products, "estimate_yosys_lut": round(neuron_lut_yosys(layer, None, j), 1),
                          "yosys_lut": syn["lut"]}
        # adders only: the same tree with each product x * (+-2^s) replaced by +-x (no shift)
        ns = layer_structure(info, LayerProtection()).neurons[j]
        ones = NeuronStructure(ns.layer, ns.neuron, Unprotected(arith.width),
                               tuple(Term(t.input, 1 if t.code > 0 else -1) if not t.is_bias else t for t in ns.terms))
        twin = Twin(ones, dataclasses.replace(arith, shift=0), info.n_in)
        row["adders_only_yosys_lut"] = synthesize(twin.verilog(), twin.top,
                                                  keep=False)["lut"]
        p, q = row["po2"], row["generic_quantized_bits"]
        row["po2_estimate_over_yosys"] = round(p["estimate_yosys_lut"] / max(1, p["yosys_lut"]), 3)
        row["multipliers_yosys_lut"] = p["yosys_lut"] - row["adders_only_yosys_lut"]
        row["po2_estimate_over_equal_values_minus_multipliers"] = round(
            p["estimate_yosys_lut"] / max(1, row["adders_only_yosys_lut"]), 3)
        rows.append(row)
        print(f"neuron {j:3d}: {p['products']} products | po2: estimate {p['estimate_yosys_lut']:8.1f} "
              f"Yosys {p['yosys_lut']:6d} (x{row['po2_estimate_over_yosys']}) | multipliers (shifts) "
              f"{row['multipliers_yosys_lut']:5d} | equal values minus multipliers (Yosys) "
              f"{row['adders_only_yosys_lut']:6d}: estimate / it "
              f"{row['po2_estimate_over_equal_values_minus_multipliers']} | generic quantized_bits: estimate "
              f"{q['estimate_yosys_lut']:8.1f} Yosys {q['yosys_lut']:6d}")
    if args.json:
        Path(args.json).write_text(json.dumps({"layer": info.name, "neurons": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
