#!/usr/bin/env python
"""External check of the resource estimator against published hls4ml synthesis results.

Compares ``fpga_ft.measure.resources.estimate_resources`` with LUT / DSP figures that public hls4ml
projects published: Vivado post-synthesis utilisation reports (``vivado_synth.rpt``) and
Vivado/Vitis HLS C-synthesis estimates (``*_csynth.rpt`` / ``.xml``, or the report printed in
a committed notebook). Every point names the repository, commit and file its numbers come
from; ``docs/estimator.md`` holds the same table.

Only the Dense / Conv layers are estimated, so each published figure is the sum of those
layers' instances where the report breaks the design down (HLS reports do); for a Vivado
total, the figure is the total times the Dense/Conv share of the same design's HLS report
(stated per point). DSP figures exclude the softmax's DSPs for the same reason.

Weights: where the project committed its weight files, the per-neuron histogram of the
weights' canonical-signed-digit (CSD) digit counts (all the estimator needs of them) was
computed from those files with the hls4ml quantisation (``floor(w * 2**frac)``, wrapped
to the type) and is stored below; ``--from-sources DIR`` recomputes it from local clones.
The surrogate weights rebuilt from a histogram have the same zeros and the same CSD digit
counts per neuron, hence the same products and DSP binding; the add columns of a layer whose
input is unsigned (a ReLU output) follow the weights' magnitudes, which the surrogate (the
smallest value of each digit count) understates: the ArgyKokk points' fc2..fc4 adds are
estimated on the low side (their other layers and every signed-input layer are exact). Where weights are not public the
assumption is stated per point and the point does not count towards the acceptance
criterion (within a factor 1.5 of published LUT and DSP on at least 4 external points).

Points the brief asked for but not included: the resource tables of Duarte et al. 2018
(JINST 13 P07027) and Coelho et al. 2021 (Nat. Mach. Intell. 3, 675). The search corpus
available here stores only the opening of those papers' pages, not their tables, and no
number is quoted from memory. The hls4ml-tutorial jet-tagging points below are the same
16-64-32-32-5 model at several precisions, pruning levels and reuse factors.

Usage::

    python scripts/check_estimator.py               # print the table, exit 1 if the criterion fails
    python scripts/check_estimator.py --markdown    # the table as Markdown
    python scripts/check_estimator.py --from-sources /path/to/clones   # recompute histograms
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fpga_ft.core.layers import FixedType, LayerInfo  # noqa: E402
from fpga_ft.measure import resources  # noqa: E402
from fpga_ft.measure.resources import csd_digits, estimate_resources  # noqa: E402

FACTOR = 1.5          # acceptance: estimate within [published/1.5, published*1.5]
MIN_POINTS = 4        # ... on at least this many external points (LUT and DSP both)

# ---------------------------------------------------------------------------------------
# Per-neuron CSD-digit histograms of public weight files: one entry per neuron (output
# channel), "c0.c1.c2..." = number of weights with 0 (zero weight), 1, 2, ... CSD digits.
# ---------------------------------------------------------------------------------------
HISTOGRAMS = {
    "argy_w2": (
        "4.3.4.5 4.6.3.3 2.5.6.3 2.3.5.4.2 3.1.5.7 2.3.5.6 4.4.6.2 0.0.10.5.1 0.6.3.7 1.2.5.8 "
        "4.1.7.4 2.2.10.2 1.3.5.6.1 1.2.5.8 4.3.6.3 16 1.1.7.6.1 3.2.7.4 0.1.7.8 1.4.5.6 "
        "1.0.12.3 4.2.6.3.1 2.3.6.4.1 0.3.10.2.1 1.4.4.7 6.4.4.2 3.2.6.4.1 1.1.6.7.1 3.4.3.6 "
        "1.1.8.3.3 1.4.6.5 2.2.7.5 2.4.6.4 2.5.7.1.1 5.5.6 5.0.6.5 4.2.7.3 3.0.8.5 2.3.6.4.1 "
        "1.2.3.8.2 1.2.10.3 2.2.9.3 5.2.4.5 0.2.6.8 2.1.7.6 2.4.6.4 1.2.9.4 3.6.7 1.3.7.5 "
        "1.2.9.2.2 3.4.8.1 2.4.4.6 5.3.8 4.3.5.4 4.3.6.3 0.1.10.3.2 6.1.3.6 2.5.5.4 2.1.7.5.1 "
        "1.4.6.5 8.4.3.1 2.3.6.5 3.2.6.5 1.2.5.8 "
    ),
    "argy_w5": (
        "7.13.26.15.3 35.10.12.7 27.12.16.8.1 12.12.21.14.5 24.8.22.10 47.6.9.2 46.5.5.8 "
        "16.11.22.12.3 43.7.12.2 36.7.15.6 20.18.21.5 64 26.13.15.10 40.12.8.4 13.12.23.16 "
        "28.9.19.8 34.6.12.11.1 11.11.29.12.1 22.9.23.10 28.10.19.7 15.12.22.14.1 49.6.7.2 "
        "24.8.19.12.1 10.15.25.14 58.3.2.1 31.10.7.14.2 42.7.8.7 17.25.14.7.1 30.11.14.7.2 "
        "22.6.22.13.1 9.14.28.12.1 44.12.7.1 "
    ),
    "argy_w8": (
        "16.5.7.4 17.5.7.3 12.4.12.4 13.4.12.3 14.3.9.5.1 6.7.10.8.1 14.3.5.10 12.4.8.7.1 "
        "12.3.11.6 6.6.13.6.1 16.1.8.7 32 11.3.8.7.3 13.2.9.8 32 12.6.10.3.1 14.7.6.5 "
        "21.2.5.3.1 5.4.12.9.2 15.5.5.7 9.7.9.5.2 10.8.5.9 20.4.4.4 13.3.9.6.1 10.6.5.11 "
        "10.4.11.7 7.5.8.10.2 22.2.6.2 5.10.9.7.1 13.2.6.11 17.4.5.6 9.2.11.9.1 "
    ),
    "argy_w11": (
        "5.2.8.14.3 7.1.5.10.9 4.2.6.16.4 7.3.9.11.2 4.5.7.13.3 "
    ),
    "sean_w2": (
        "0.3.5.11.6.2 0.0.1.7.11.8 0.0.3.8.8.7.1 0.0.4.11.9.3 0.0.3.7.12.5 0.1.3.6.15.2 "
        "0.1.6.9.11 0.0.4.8.11.2.2 0.0.2.8.14.3 0.0.3.8.9.7 0.0.1.13.10.3 0.0.2.10.11.4 "
        "0.1.3.12.11 0.1.4.7.9.6 0.0.4.7.10.4.2 0.0.3.11.10.3 "
    ),
    "sean_w6": (
        "0.0.2.4.9.1 0.0.0.5.5.6 0.0.0.9.3.4 0.0.2.2.8.4 0.0.0.4.8.4 0.0.1.3.7.5 "
    ),
}

#: Where each histogram comes from (repository @ commit : path), and the weight type used
#: to quantise it (width, integer bits) and the layer shape (n_in, n_out).
HISTOGRAM_SOURCES = {
    "argy_w2": ("ArgyKokk/hls4ml_MLP_estimator", "72e2e22e6a82d84fbb5d10930df7b82b0920c42b",
                "HLS_MLPs/jet_tagging/hls4ml_prj/DSP_reuse1/firmware/weights/w2.txt", (8, 1), (16, 64)),
    "argy_w5": ("ArgyKokk/hls4ml_MLP_estimator", "72e2e22e6a82d84fbb5d10930df7b82b0920c42b",
                "HLS_MLPs/jet_tagging/hls4ml_prj/DSP_reuse1/firmware/weights/w5.txt", (8, 1), (64, 32)),
    "argy_w8": ("ArgyKokk/hls4ml_MLP_estimator", "72e2e22e6a82d84fbb5d10930df7b82b0920c42b",
                "HLS_MLPs/jet_tagging/hls4ml_prj/DSP_reuse1/firmware/weights/w8.txt", (8, 1), (32, 32)),
    "argy_w11": ("ArgyKokk/hls4ml_MLP_estimator", "72e2e22e6a82d84fbb5d10930df7b82b0920c42b",
                 "HLS_MLPs/jet_tagging/hls4ml_prj/DSP_reuse1/firmware/weights/w11.txt", (8, 1), (32, 5)),
    "sean_w2": ("seanlipps/ECE226_CoDesign", "528aea922b518b7a53b1c78a7780fa6b34d44c5a",
                "model_1/hls4ml_prj/firmware/weights/w2.txt", (16, 6), (27, 16)),
    "sean_w6": ("seanlipps/ECE226_CoDesign", "528aea922b518b7a53b1c78a7780fa6b34d44c5a",
                "model_1/hls4ml_prj/firmware/weights/w6.txt", (16, 6), (16, 6)),
}


def histogram(key: str) -> np.ndarray:
    """(n_out, 7) counts of weights by CSD digit count, from HISTOGRAMS."""
    rows = []
    for tok in "".join(HISTOGRAMS[key]).split():
        vals = [int(x) for x in tok.split(".")]
        rows.append(vals + [0] * (7 - len(vals)))
    return np.array(rows, dtype=int)


def histogram_from_file(path: Path, width: int, integer: int, shape: tuple[int, int]) -> np.ndarray:
    """Recompute a histogram from an hls4ml ``w<N>.txt`` (comma-separated floats)."""
    text = path.read_text().replace("\n", ",")
    w = np.array([float(x) for x in text.split(",") if x.strip()])
    frac = width - integer
    ints = np.floor(w * 2.0 ** frac).astype(np.int64)           # ap_fixed default AP_TRN
    half = 1 << (width - 1)
    ints = ((ints + half) % (2 * half)) - half                   # AP_WRAP
    ints = ints.reshape(shape)
    out = np.zeros((shape[1], 7), dtype=int)
    for j in range(shape[1]):
        for v in ints[:, j]:
            out[j, min(6, csd_digits(v))] += 1
    return out


def surrogate_weights(hist: np.ndarray, wtype: FixedType) -> np.ndarray:
    """Weights (n_in, n_out) with the given per-neuron zero / CSD-digit counts.

    Digit count d is represented by (4**d - 1) / 3 = 0b1010...1 (d non-adjacent ones),
    scaled to the weight type; the estimator sees exactly the same counts.
    """
    n_in = int(hist[0].sum())
    cols = []
    for row in hist:
        col = []
        for d, count in enumerate(row):
            col += [0 if d == 0 else (4 ** d - 1) // 3] * int(count)
        cols.append(col)
    ints = np.array(cols, dtype=float).T
    assert ints.shape[0] == n_in
    limit = 2 ** (wtype.width - 1) - 1
    if ints.max() > limit:
        raise ValueError("surrogate constant does not fit the weight type")
    return ints / 2.0 ** wtype.fractional


def fixed(w: int, i: int, signed: bool = True) -> FixedType:
    return FixedType(w, i, signed)


def dense(name: str, index: int, n_in: int, n_out: int, wa: FixedType, wt: FixedType,
          acc: FixedType, weights: np.ndarray | None, reuse: int = 1, io: str = "io_parallel",
          kind: str = "Dense", positions: int = 1, input_words: int | None = None) -> LayerInfo:
    return LayerInfo(name=name, kind=kind, index=index, n_in=n_in, n_out=n_out,
                     n_positions=positions, n_input_words=input_words or n_in,
                     input_type=wa, weight_type=wt, bias_type=wt, accum_type=acc,
                     result_type=acc, reuse_factor=reuse, strategy="latency", io_type=io,
                     weights=weights, biases=None if weights is None else np.zeros(n_out))


def stratified_uniform(n: int, low: float, high: float, seed: int) -> np.ndarray:
    """n values at the quantiles of U(low, high), in a fixed random order (low variance)."""
    q = (np.arange(n) + 0.5) / n
    vals = low + (high - low) * q
    return np.random.default_rng(seed).permutation(vals)


def quantize_floor(w: np.ndarray, t: FixedType) -> np.ndarray:
    ints = np.floor(w * 2.0 ** t.fractional)
    half = 2.0 ** (t.width - 1)
    ints = np.mod(ints + half, 2 * half) - half
    return ints / 2.0 ** t.fractional


def uniform_levels(n_in: int, n_out: int, t: FixedType, zero_fraction: float | None,
                   seed: int) -> np.ndarray:
    """Every level of a (quantized_bits) weight type equally often; optional pruning zeros."""
    levels = np.arange(-(2 ** (t.width - 1)), 2 ** (t.width - 1))
    if zero_fraction is not None:
        levels = levels[levels != 0]
    n = n_in * n_out
    vals = np.resize(levels, n).astype(float)
    if zero_fraction is not None:
        n_zero = int(round(zero_fraction * n))
        vals[:n_zero] = 0.0
    vals = np.random.default_rng(seed).permutation(vals)
    return (vals / 2.0 ** t.fractional).reshape(n_in, n_out)


# ---------------------------------------------------------------------------------------
# The external points
# ---------------------------------------------------------------------------------------
@dataclass
class Point:
    key: str
    design: str
    source: str            # repository @ commit : file
    tool: str
    target: str            # "synth" (Vivado post-synthesis) or "hls" (C-synthesis estimate)
    lut: float             # published LUT of the Dense/Conv layers (see note)
    dsp: float
    note: str              # how the published figure was taken
    layers: list[LayerInfo] = field(default_factory=list)
    weights: str = ""      # what is known about the weights
    counts: bool = True    # counts towards the acceptance criterion
    why_not: str = "weights unknown"   # why a point does not count
    latency: int | None = None   # published latency (cycles) of the whole design, for reference
    est_lut: int = 0
    est_dsp: int = 0
    est_latency: int = 0

    @property
    def lut_ratio(self) -> float:
        return self.est_lut / self.lut if self.lut else (1.0 if self.est_lut == 0 else math.inf)

    @property
    def dsp_ratio(self) -> float:
        if self.dsp == 0:
            return 1.0 if self.est_dsp == 0 else math.inf
        return self.est_dsp / self.dsp

    @property
    def within(self) -> bool:
        ok = lambda x: 1.0 / FACTOR <= x <= FACTOR  # noqa: E731
        return ok(self.lut_ratio) and ok(self.dsp_ratio)


def jet_argy(reuse: int) -> list[LayerInfo]:
    """ArgyKokk jet_tagging 16-64-32-32-5: ap_fixed<8,2> input, ap_ufixed<8,0> activations,
    ap_fixed<8,1> weights, ap_fixed<16,4> accumulators (firmware/defines.h)."""
    wt, acc = fixed(8, 1), fixed(16, 4)
    ins = [fixed(8, 2), fixed(8, 0, False), fixed(8, 0, False), fixed(8, 0, False)]
    spec = [("fc1", 2, "argy_w2", 16, 64), ("fc2", 5, "argy_w5", 64, 32),
            ("fc3", 8, "argy_w8", 32, 32), ("output", 11, "argy_w11", 32, 5)]
    return [dense(n, i, a, b, ins[j], wt, acc, surrogate_weights(histogram(h), wt), reuse)
            for j, (n, i, h, a, b) in enumerate(spec)]


def sean_layers() -> list[LayerInfo]:
    """seanlipps model_1: Conv1D(16, k=3) on 128x9 (zero-padded to 130) + Dense 16->6,
    io_stream, ap_fixed<16,6> everywhere (firmware/parameters.h, defines.h)."""
    t = fixed(16, 6)
    conv = dense("conv1", 2, 27, 16, t, t, t, surrogate_weights(histogram("sean_w2"), t),
                 io="io_stream", kind="Conv1D", positions=128, input_words=130 * 9)
    fc = dense("dense_4", 6, 16, 6, t, t, t, surrogate_weights(histogram("sean_w6"), t),
               io="io_stream")
    return [conv, fc]


def test_report_layers() -> list[LayerInfo]:
    """hls4ml test_report: Dense(5) on 16 inputs, untrained: Keras glorot_uniform weights
    (limit sqrt(6/(16+5))), zero biases, ap_fixed<16,6> (hls4ml default precision)."""
    t = fixed(16, 6)
    lim = math.sqrt(6.0 / 21.0)
    w = quantize_floor(stratified_uniform(80, -lim, lim, seed=5).reshape(16, 5), t)
    return [dense("fc1", 2, 16, 5, t, t, t, w, io="io_stream")]


def dnd_layers() -> list[LayerInfo]:
    """thaarres/dnd_hls4ml synthesize.py -Q: QDense(20) on 98 inputs with
    quantized_bits(4,0,alpha=1) weights (ap_fixed<4,1>), ap_fixed<16,6> input and accum;
    QDense(1) on the quantized_relu output (ap_ufixed<6,0> in the csynth report)."""
    t16, wt = fixed(16, 6), fixed(4, 1)
    w1 = uniform_levels(98, 20, wt, None, seed=1)
    w2 = uniform_levels(20, 1, wt, None, seed=2)
    return [dense("fc1", 2, 98, 20, t16, wt, t16, w1),
            dense("output", 5, 20, 1, fixed(6, 0, False), wt, t16, w2)]


def tutorial_layers(width: int, integer: int, pruned: float | None, qbits: int | None) -> list[LayerInfo]:
    """hls4ml-tutorial jet tagging 16-64-32-32-5 (weights not published).

    Float models (parts 1-3): ap_fixed<16,6> everywhere; assumed weights: uniform in the
    Keras lecun_uniform initialisation range +-sqrt(3/fan_in) (the tutorial's initialiser),
    quantised to ap_fixed<16,6>, with `pruned` of them zero. QKeras model (part 4):
    quantized_bits(6,0,alpha=1) weights (ap_fixed<6,1>), every level equally likely, 75%
    zeros; ap_fixed<16,6> input, quantized_relu(6) = ap_ufixed<6,0> activations.
    """
    t = fixed(width, integer)
    shapes = [("fc1", 2, 16, 64), ("fc2", 5, 64, 32), ("fc3", 8, 32, 32), ("output", 11, 32, 5)]
    layers = []
    for j, (name, idx, a, b) in enumerate(shapes):
        if qbits:
            wt = fixed(qbits, 1)
            w = uniform_levels(a, b, wt, pruned, seed=10 + j)
            wa = t if j == 0 else fixed(qbits, 0, False)
        else:
            wt = t
            lim = math.sqrt(3.0 / a)
            w = quantize_floor(stratified_uniform(a * b, -lim, lim, seed=10 + j).reshape(a, b), t)
            if pruned:
                flat = w.reshape(-1).copy()
                order = np.argsort(np.abs(flat))
                flat[order[: int(round(pruned * flat.size))]] = 0.0   # magnitude pruning
                w = flat.reshape(a, b)
            wa = t
        layers.append(dense(name, idx, a, b, wa, wt, t, w))
    return layers


ARGY = "ArgyKokk/hls4ml_MLP_estimator @ 72e2e22e6a82d84fbb5d10930df7b82b0920c42b"
SEAN = "seanlipps/ECE226_CoDesign @ 528aea922b518b7a53b1c78a7780fa6b34d44c5a"
TUTO = "fastmachinelearning/hls4ml-tutorial"


def points() -> list[Point]:
    pts = [
        Point("test_report-synth", "Dense 16->5, ap_fixed<16,6>, io_stream, xc7z020",
              "fastmachinelearning/hls4ml @ ef92ebdf2fc6b9573170465ada2200bb782d1164 : "
              "test/pytest/test_report/Vivado/vivado_synth.rpt (+ myproject_csynth.rpt)",
              "Vivado 2020.1 synth", "synth", 1526 * 2134 / 2532, 66,
              "1,526 LUT total x 2,134/2,532 (Dense share of the HLS report); 66 DSP48E1",
              test_report_layers(), "untrained Glorot-uniform (the test's model), stratified draw", latency=10),
        Point("test_report-hls", "same design", "fastmachinelearning/hls4ml @ ef92ebdf2fc6b9573170465ada2200bb782d1164 : "
              "test/pytest/test_report/Vivado/myproject_csynth.rpt", "Vivado HLS 2020.1", "hls",
              2134, 73, "dense instance: 2,134 LUT, 73 DSP48E", test_report_layers(),
              "untrained Glorot-uniform, stratified draw", latency=10),
        Point("dnd-synth", "QDense 98->20->1, 4-bit weights, xczu9eg",
              "thaarres/dnd_hls4ml @ 73b24d73d866d5c559f4d2d37bd642862559e249 : vivado_synth.rpt "
              "(+ myproject_csynth.rpt, synthesize.py)", "Vivado 2020.1 synth", "synth",
              31277 * 59005 / 59561, 0, "31,277 LUT total x 59,005/59,561 (Dense share); 0 DSP",
              dnd_layers(), "trained 4-bit, not published: every 4-bit level equally likely", latency=5),
        Point("dnd-hls", "same design", "thaarres/dnd_hls4ml @ 73b24d73d866d5c559f4d2d37bd642862559e249 : "
              "myproject_csynth.rpt", "Vivado HLS 2020.1", "hls", 58323 + 682, 0,
              "dense instances 58,323 + 682 LUT, 0 DSP", dnd_layers(),
              "trained 4-bit, not published: every 4-bit level equally likely", latency=5),
        Point("seanlipps-synth", "Conv1D 9->16 k3 (128 px) + Dense 16->6, ap_fixed<16,6>, io_stream, xcu250",
              f"{SEAN} : model_1/hls4ml_prj/vivado_synth.rpt (+ myproject_prj/solution1/syn/report/csynth.xml)",
              "Vivado 2024.1 synth", "synth", 8565 * (11875 + 2505) / 17966, 467 - 6,
              "8,565 LUT total x 14,380/17,966 (conv_1d_cl + dense share); 467 - 6 (softmax) DSP",
              sean_layers(), "published trained weights (w2.txt, w6.txt)", latency=395),
        Point("seanlipps-hls", "same design", f"{SEAN} : model_1/hls4ml_prj/myproject_prj/solution1/syn/report/csynth.xml",
              "Vitis HLS 2024.1", "hls", 11875 + 2505, 370 + 91,
              "conv_1d_cl 11,875 + dense 2,505 LUT; 370 + 91 DSP", sean_layers(),
              "published trained weights", latency=395),
    ]
    for reuse, lut, dsp, lat in ((1, 19760 + 27249 + 14705 + 3297, 247 + 275 + 202 + 85, 58),
                                 (2, 17374 + 22399 + 11875 + 3102, 247 + 275 + 202 + 67, 54),
                                 (100, 19147 + 24396 + 13411 + 3577, 10 + 12 + 7 + 2, 161)):
        pts.append(Point(
            f"argy-jet-rf{reuse}", f"jet 16-64-32-32-5, 8-bit weights/activations, RF {reuse}, xc7z007s",
            f"{ARGY} : HLS_MLPs/jet_tagging/hls4ml_prj/DSP_reuse{reuse}/myproject_prj/solution1/syn/report/myproject_csynth.rpt",
            "Vitis HLS 2021.1", "hls", lut, dsp, "sum of the four dense_latency instances",
            jet_argy(reuse), "published trained weights (w2/w5/w8/w11.txt, DSP_reuse1)", latency=lat,
            # RF > 1: the report is hls4ml's own dense_latency kernel (HLS shares its
            # multipliers by ALLOCATION); fpga-ft builds such layers as its own time-shared
            # MAC units (resources module docstring), a different design: shown, not counted
            counts=reuse == 1, why_not="hls4ml's RF kernel, not what fpga-ft builds"))
    tuto = [
        ("tutorial-model1-rf1", "16-bit, RF 1", "c6b63d3715e23270f97975726eabe7ec4a86b9e6 : part1_getting_started.ipynb",
         4182 + 26175 + 44224 + 21554, 106 + 461 + 583 + 347, 16, 6, None, None, 1, 14),
        ("tutorial-model1-rf2", "16-bit, RF 2", "c6b63d3715e23270f97975726eabe7ec4a86b9e6 : part2_advanced_config.ipynb",
         4792 + 26187 + 44236 + 21566, 80 + 461 + 583 + 347, 16, 6, None, None, 2, 13),
        ("tutorial-model1-rerun", "16-bit, RF 1 (another training run)",
         "a5790ad722b0bb0e4c1c6b30d2106d33d1c25479 : part3_compression.ipynb",
         4294 + 27626 + 56158 + 26222, 119 + 690 + 907 + 521, 16, 6, None, None, 1, None),
        ("tutorial-model2", "16-bit, 75% pruned", "c6b63d3715e23270f97975726eabe7ec4a86b9e6 : part4_quantization.ipynb",
         917 + 6644 + 14255 + 7131, 39 + 223 + 378 + 189, 16, 6, 0.75, None, 1, 12),
        ("tutorial-model3", "QKeras 6-bit, 75% pruned", "c6b63d3715e23270f97975726eabe7ec4a86b9e6 : part4_quantization.ipynb",
         8074 + 1449 + 13289 + 7628, 29 + 0 + 0 + 0, 16, 6, 0.75, 6, 1, 12),
    ]
    for key, what, where, lut, dsp, width, integer, pruned, qbits, reuse, lat in tuto:
        layers = tutorial_layers(width, integer, pruned, qbits)
        for layer in layers:
            layer.reuse_factor = reuse
        pts.append(Point(key, f"jet 16-64-32-32-5, {what}, xcu250", f"{TUTO} @ {where} (printed report)",
                         "Vitis HLS 2024.1", "hls", lut, dsp, "sum of the four dense_latency instances",
                         layers, "not published: " + ("uniform quantized_bits(6) levels, 75% zeros"
                                                      if qbits else "uniform in the lecun_uniform range"
                                                      + (", 75% magnitude-pruned" if pruned else "")),
                         counts=False, latency=lat))
    return pts


def evaluate(pts: list[Point]) -> list[Point]:
    for p in pts:
        est = estimate_resources(p.layers, None, 200.0, target=p.target)
        p.est_lut, p.est_dsp, p.est_latency = est.LUT, est.DSP, est.latency_cycles
    return pts


def implied_scales(pts: list[Point]) -> dict[str, float]:
    """Published synth LUT / estimate at SCALE_SYNTH = 1 for every counted synth point."""
    out = {}
    for p in pts:
        if p.target == "synth" and p.counts:
            est = estimate_resources(p.layers, None, 200.0, target="synth")
            voters = 0
            unit = (est.LUT - voters) / resources.SCALE_SYNTH
            out[p.key] = p.lut / unit
    return out


def fmt_ratio(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.2f}"


def table(pts: list[Point], markdown: bool) -> str:
    head = ["point", "tool", "published LUT", "published DSP", "estimated LUT", "estimated DSP",
            "LUT ratio", "DSP ratio", "counts", "within 1.5x", "latency pub/est (cycles)"]
    rows = []
    for p in pts:
        lat = f"{p.latency}/{p.est_latency}" if p.latency is not None else f"-/{p.est_latency}"
        rows.append([p.key, p.tool, f"{p.lut:,.0f}", f"{p.dsp:,.0f}", f"{p.est_lut:,}",
                     f"{p.est_dsp:,}", fmt_ratio(p.lut_ratio), fmt_ratio(p.dsp_ratio),
                     "yes" if p.counts else f"no ({p.why_not})", "yes" if p.within else "no", lat])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--sources", action="store_true", help="also print each point's source")
    ap.add_argument("--from-sources", metavar="DIR", default=None,
                    help="recompute the weight histograms from clones DIR/<owner>+<repo> "
                         "(or DIR/<repo>) and compare with the stored ones")
    args = ap.parse_args(argv)

    if args.from_sources:
        base = Path(args.from_sources)
        bad = 0
        for key, (repo, commit, path, (width, integer), shape) in HISTOGRAM_SOURCES.items():
            cands = [base / repo.replace("/", "+") / path, base / repo.split("/")[1] / path, base / path]
            src = next((c for c in cands if c.is_file()), None)
            if src is None:
                print(f"{key}: {repo}:{path} not found under {base}")
                bad += 1
                continue
            same = np.array_equal(histogram_from_file(src, width, integer, shape), histogram(key))
            print(f"{key}: {'matches' if same else 'DIFFERS from'} {src}")
            bad += 0 if same else 1
        return 1 if bad else 0

    pts = evaluate(points())
    print(table(pts, args.markdown))
    if args.sources:
        print()
        for p in pts:
            print(f"{p.key}: {p.design}\n    source: {p.source}\n    published: {p.note}\n"
                  f"    weights: {p.weights}")
    counted = [p for p in pts if p.counts]
    ok = [p for p in counted if p.within]
    print()
    print(f"within {FACTOR}x of published LUT and DSP: {len(ok)} of {len(counted)} counted points "
          f"(criterion: >= {MIN_POINTS}); all points: {sum(p.within for p in pts)} of {len(pts)}")
    scales = implied_scales(pts)
    if scales:
        gm = math.exp(sum(math.log(v) for v in scales.values()) / len(scales))
        print("implied SCALE_SYNTH per synth point: " + ", ".join(f"{k} {v:.3f}" for k, v in scales.items())
              + f"; geometric mean {gm:.3f} (used: {resources.SCALE_SYNTH})")
        for k in scales:
            rest = [v for kk, v in scales.items() if kk != k]
            loo = math.exp(sum(math.log(v) for v in rest) / len(rest)) if rest else float("nan")
            print(f"  leave-one-out: {k} estimated with scale {loo:.3f} -> LUT ratio "
                  f"{loo / scales[k]:.2f}")
    return 0 if len(ok) >= MIN_POINTS else 1


if __name__ == "__main__":
    sys.exit(main())
