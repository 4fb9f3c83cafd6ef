"""Check the fault modes of issue 15 on the digits MLP and print the measured numbers.

1. latched (csim, each device one fault pattern held for a pass over the test set) against
   an independent QKeras-side model of the same thing (FKeras's model): per device, flip
   every bit of the quantized weights and biases (in the hardware's types) with
   probability p in NumPy, evaluate the QKeras model; compare device mean, spread and
   percentiles. Transient mode's mean is printed too (the same marginal per inference).
2. accumulate: fraction of weight bits flipped after i inferences against (1-(1-2p)^i)/2.
3. MBU of size 1..3 on protected_msbs products: masked fraction against the geometry.

    python scripts/fault_modes_check.py [--devices 100] [--bers 1e-3,5e-3] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fpga_ft.core.faults import FaultModel, accumulated_flip_probability  # noqa: E402
from fpga_ft.core.paths import MODELS_DIR  # noqa: E402


def summary(acc) -> str:
    acc = np.asarray(acc) * 100
    return (f"mean {acc.mean():6.2f}%  std {acc.std(ddof=1):5.2f}  p05 {np.quantile(acc, 0.05):6.2f}%  "
            f"p50 {np.quantile(acc, 0.5):6.2f}%  min {acc.min():6.2f}%")


def qkeras_devices(model, layers, x, y, p: float, devices: int, seed: int) -> list[float]:
    """Accuracy of ``devices`` QKeras models whose weight and bias bits (hardware types of
    ``layers``) are each flipped with probability p."""
    rng = np.random.default_rng(seed)
    pristine = {info.name: model.get_layer(info.name).get_weights() for info in layers}
    quantized = {}  # the words the hardware stores: the quantizers' outputs
    for info in layers:
        layer = model.get_layer(info.name)
        kernel, bias = pristine[info.name]
        quantized[info.name] = [np.asarray(layer.kernel_quantizer_internal(kernel)),
                                np.asarray(layer.bias_quantizer_internal(bias))]
    accuracies = []
    for _ in range(devices):
        for info in layers:
            layer = model.get_layer(info.name)
            kernel, bias = quantized[info.name]
            new = []
            for values, ftype in ((kernel, info.weight_type), (bias, info.bias_type)):
                frac = ftype.width - ftype.integer
                raw = np.round(np.asarray(values, dtype=np.float64) * 2.0 ** frac).astype(np.int64)
                assert np.all(raw / 2.0 ** frac == values), "quantized weight off the hardware type's grid"
                raw &= (1 << ftype.width) - 1
                flips = rng.random((raw.size, ftype.width)) < p
                mask = (flips * (1 << np.arange(ftype.width))).sum(axis=1).reshape(raw.shape)
                raw ^= mask
                if ftype.signed:
                    raw = np.where(raw >= 1 << (ftype.width - 1), raw - (1 << ftype.width), raw)
                new.append((raw / 2.0 ** frac).astype(np.float32))
            layer.set_weights(new)
        predicted = model.predict(x, verbose=0, batch_size=len(x)).argmax(axis=1)
        accuracies.append(float(np.mean(predicted == y)))
    for info in layers:
        model.get_layer(info.name).set_weights(pristine[info.name])
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--bers", default="1e-3,5e-3")
    parser.add_argument("--seed", type=int, default=1, help="csim campaign seed (the QKeras side uses seed + 1)")
    args = parser.parse_args()

    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_data, load_model
    from fpga_ft.simulate.campaign import run_campaign

    model = load_model(MODELS_DIR / "digits_mlp.h5")
    x, y = load_data(MODELS_DIR / "digits_test.npz")
    design = build_design(model)
    print(f"digits MLP, {len(x)} test samples, {args.devices} devices per BER (one device = one pass)")
    print("\n1. latched weights: csim vs QKeras-side flips of the same bits (FKeras's model)")
    for p in (float(b) for b in args.bers.split(",")):
        start = time.perf_counter()
        latched = run_campaign(design, x, y, FaultModel(p, sites="weights", mode="latched", scrub_interval=0),
                               repeats=args.devices, seed=args.seed, target_accuracy=0.9)
        csim_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = qkeras_devices(model, design.layers, x, y, p, args.devices, seed=args.seed + 1)
        keras_s = time.perf_counter() - start
        transient = run_campaign(design, x, y, FaultModel(p, sites="weights"), repeats=args.devices, seed=args.seed)
        acc_l, acc_r = np.asarray(latched.devices.accuracies), np.asarray(reference)
        from scipy.stats import ks_2samp

        ks = ks_2samp(acc_l, acc_r).pvalue  # the whole device distribution (robust to the heavy low tail)
        z = (acc_l.mean() - acc_r.mean()) / math.sqrt(acc_l.var(ddof=1) / len(acc_l) + acc_r.var(ddof=1) / len(acc_r))
        print(f"  BER {p:g}  csim latched   {summary(acc_l)}  ({csim_s:.1f} s)")
        print(f"  BER {p:g}  QKeras flips   {summary(acc_r)}  ({keras_s:.1f} s)")
        print(f"  BER {p:g}  csim transient mean {100 * transient.accuracy_mean:6.2f}%, pass-to-pass std "
              f"{100 * np.std(transient.repeat_accuracies, ddof=1):5.2f}; z(latched - QKeras mean) = {z:+.2f}; "
              f"std ratio {acc_l.std(ddof=1) / acc_r.std(ddof=1):.2f}; two-sample KS p = {ks:.2f}")
        d = latched.devices.to_dict()
        print(f"  BER {p:g}  P(device < 90%) = {d['prob_below_target']:.3f} "
              f"(CI {d['prob_below_target_ci'][0]:.3f}..{d['prob_below_target_ci'][1]:.3f})")

    print("\n2. accumulate: fraction of weight bits flipped after i inferences")
    library = design.library
    p = 1e-2
    library.configure((p, 0, 0, 0), seed=5, scrub_interval=0, weight_mode="accumulate")
    done = 0
    for i in (1, 10, 50, 200):
        library.run(x[: i - done])
        done = i
        flipped, total = library.weight_flipped_bits()
        sd = math.sqrt(accumulated_flip_probability(p, i) * (1 - accumulated_flip_probability(p, i)) / total)
        print(f"  p {p:g} i {i:4d}: measured {flipped / total:.4f}, (1-(1-2p)^i)/2 = "
              f"{accumulated_flip_probability(p, i):.4f} (+-{sd:.4f}), i*p = {i * p:.3f}")

    print("\n3. MBU on protected_msbs: 4 products of the first layer: masked fraction of flipped bits")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_fault_modes import _masked_fraction

    k = 4
    protected = build_design(model, ProtectionPlan.uniform(design.layers, protected_msbs=k))
    width = design.layers[0].accum_type.width
    for burst in (1, 2, 3):
        protected.library.configure((0, 0, 1e-4, 0), seed=21, mbu=((burst, 1.0),) if burst > 1 else ())
        protected.library.set_scope(0, -1, -1)
        _, injected, masked = protected.library.run(np.concatenate([x] * 4))
        protected.library.set_scope(-1, -1, -1)
        n = injected["products"]
        print(f"  burst {burst}: {n} bits flipped, masked {masked['products'] / n:.4f}, geometry "
              f"{_masked_fraction(width, k, burst):.4f} (W {width}, k {k})")


if __name__ == "__main__":
    main()
