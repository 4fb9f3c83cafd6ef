"""How many bits each fault site exposes per inference, and where a given word sits in
the injector's bit stream (mirrors the exposure order of hls_templates/fpgaft_tmr.h).

Per protectable layer, in dataflow order, per inference:

* weights: every weight and bias word once (``weight_type``/``bias_type`` bits), plus
  replicas 1 and 2 of each critical neuron's weight column and bias;
* activations: every word of the layer's input tensor (``input_type`` bits) once;
* products / accumulators: for each output position (1 for Dense, each output pixel for
  Conv), for each neuron j, for each input i: one word of ``accum_type`` width W, exposing
  W + 2k bits with ``protected_msbs`` k; a critical neuron instead exposes three full
  replicas (replica-major: all n_in words of replica 0, then 1, then 2), W bits each.

All counts are in bits per inference.
"""

from __future__ import annotations

from fpga_ft.layers import LayerInfo
from fpga_ft.plan import ProtectionPlan


def _dot_words_bits(info: LayerInfo, plan: ProtectionPlan) -> int:
    """Bits exposed at the products site (same for accumulators) by one layer per inference."""
    protection = plan.for_layer(info.name)
    width, k = info.accum_type.width, protection.protected_msbs
    n_crit = len(protection.critical_neurons)
    per_position = (info.n_out - n_crit) * info.n_in * (width + 2 * k) + n_crit * 3 * info.n_in * width
    return per_position * info.n_positions


def exposed_bits(layers: list[LayerInfo], plan: ProtectionPlan | None = None) -> dict[str, int]:
    """Bits exposed per inference at each site (all protectable layers together)."""
    plan = plan or ProtectionPlan()
    totals = {"weights": 0, "activations": 0, "products": 0, "accumulators": 0}
    for info in layers:
        n_crit = len(plan.for_layer(info.name).critical_neurons)
        weight_bits = info.n_in * info.weight_type.width + info.bias_type.width
        totals["weights"] += info.n_out * weight_bits + 2 * n_crit * weight_bits
        if info.io_type == "io_parallel" or info.kind == "Dense":
            totals["activations"] += info.n_input_words * info.input_type.width
        dot = _dot_words_bits(info, plan)
        totals["products"] += dot
        totals["accumulators"] += dot
    return totals


def dot_word_offset(layers: list[LayerInfo], plan: ProtectionPlan | None, layer: int, neuron: int,
                    input_index: int, position: int = 0, replica: int = 0) -> int:
    """Bit offset (from the start of an inference) of the first exposed bit of one product
    or partial-sum word: layer number ``layer`` in ``layers``, output ``position``, neuron,
    input index and, for critical neurons, replica. Same offset at both dot-product sites."""
    plan = plan or ProtectionPlan()
    offset = sum(_dot_words_bits(info, plan) for info in layers[:layer])
    info = layers[layer]
    protection = plan.for_layer(info.name)
    width, k = info.accum_type.width, protection.protected_msbs
    critical = set(protection.critical_neurons)
    offset += position * (_dot_words_bits(info, plan) // info.n_positions)
    for j in range(neuron):
        offset += info.n_in * (3 * width if j in critical else width + 2 * k)
    if neuron in critical:
        return offset + replica * info.n_in * width + input_index * width
    return offset + input_index * (width + 2 * k)
