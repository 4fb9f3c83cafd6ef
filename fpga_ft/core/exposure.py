"""How many bits each fault site exposes per inference, and where a given node sits in the
injector's bit stream: the csim view of :mod:`fpga_ft.core.structure` (the C++ side is the
exposure order of ``hls_templates/fpgaft_tmr.h``).

Per protectable layer, in dataflow order, per inference:

* weights: every weight and bias word of the layer's memory once (``weight_type``/
  ``bias_type`` bits; a rewritten depthwise convolution stores only its depthwise words,
  ``LayerInfo.stored_weights_per_neuron`` per neuron), plus replicas 1 and 2 of each critical
  neuron's weight column and bias;
* activations: every word of the layer's input tensor (``input_type`` bits) once (Dense,
  and convolutions in io_parallel);
* products / accumulators: for each output position (1 for Dense, each output pixel for
  Conv), for each neuron j, the words of its structure (``NeuronStructure``): its products
  (non-zero pristine weights, input order) at the products site; its partial sums (one per
  term after the first; the bias, when non-zero, is the first term) and then its output
  voter at the accumulators site. A critical neuron's three replicas come replica-major
  (all words of replica 0, then 1, then 2), its output voter after them.

All counts are in bits per inference.
"""

from __future__ import annotations

from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.core.structure import LayerStructure, NeuronStructure, design_structures

SITES_OF_DOT = ("products", "accumulators")


def exposed_bits(layers: list[LayerInfo], plan: ProtectionPlan | None = None,
                 structures: list[LayerStructure] | None = None) -> dict[str, int]:
    """Bits exposed per inference at each site (all protectable layers together)."""
    plan = plan or ProtectionPlan()
    structures = structures if structures is not None else design_structures(layers, plan)
    totals = {"weights": 0, "activations": 0, "products": 0, "accumulators": 0}
    for info, structure in zip(layers, structures):
        n_crit = len(plan.for_layer(info.name).critical_neurons)
        weight_bits = info.stored_weights_per_neuron * info.weight_type.width + info.bias_type.width
        totals["weights"] += info.n_out * weight_bits + 2 * n_crit * weight_bits
        if info.io_type == "io_parallel" or info.kind == "Dense":
            totals["activations"] += info.n_input_words * info.input_type.width
        for site, bits in structure.exposed_bits().items():
            totals[site] += bits
    return totals


def _neuron_bits(neuron: NeuronStructure, site: str) -> int:
    return neuron.exposed_bits()[site]


def node_offset(layers: list[LayerInfo], plan: ProtectionPlan | None, layer: int, neuron: int, site: str,
                word: int | str, position: int = 0, replica: int = 0,
                structures: list[LayerStructure] | None = None) -> int:
    """Bit offset (from the start of an inference, at ``site``) of the first exposed bit of
    one word of one neuron: ``layers[layer]``, output ``position``, ``neuron``.

    ``site="products"``: ``word`` = index among the neuron's products (non-zero weights,
    input order). ``site="accumulators"``: ``word`` = partial sum t (after the (t+1)-th
    term), or ``"output"`` for the output voter. ``replica``: FullTMR replica (0..2).
    The word's bits follow in the order of ``Scheme.product_nodes``/``sum_nodes``."""
    if site not in SITES_OF_DOT:
        raise ValueError(f"site must be one of {SITES_OF_DOT}")
    plan = plan or ProtectionPlan()
    structures = structures if structures is not None else design_structures(layers, plan)
    offset = sum(s.exposed_bits()[site] for s in structures[:layer])
    structure = structures[layer]
    per_position = sum(_neuron_bits(n, site) for n in structure.neurons)
    offset += position * per_position
    offset += sum(_neuron_bits(n, site) for n in structure.neurons[:neuron])
    n = structure.neurons[neuron]
    s = n.scheme
    if site == "products":
        if not 0 <= int(word) < n.n_products:
            raise ValueError(f"neuron {neuron} has {n.n_products} products")
        return offset + replica * n.n_products * s.product_bits + int(word) * s.product_bits
    if word == "output":
        return offset + s.dot_replicas * n.n_sums * s.sum_bits
    if not 0 <= int(word) < n.n_sums:
        raise ValueError(f"neuron {neuron} has {n.n_sums} partial sums")
    return offset + replica * n.n_sums * s.sum_bits + int(word) * s.sum_bits
