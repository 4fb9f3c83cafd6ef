"""One description of each protection structure, read by every view of it.

A protected dot product (one neuron of a Dense layer, one output channel of a convolution)
is built from *nodes*: words computed by one piece of logic. This module says, for each
scheme, which nodes exist, how many bits each has, which replica module computes it and
whether a single bit flip on it is hidden by a vote (``masked``). Every other view reads
it, so they cannot disagree:

* the HLS templates (``hls_templates/templates.py``) emit the kept replica modules and
  the adder tree of :meth:`NeuronStructure.tree`;
* the C simulation (``hls_templates/fpgaft_runtime.h``/``fpgaft_tmr.h``) exposes exactly
  the bits of :meth:`Scheme.product_nodes`, :meth:`Scheme.sum_nodes` and
  :meth:`Scheme.output_nodes`, in that order (``fpga_ft.core.exposure`` counts them);
* the resource estimate (``fpga_ft.measure.resources``) costs the same modules;
* the keep-replicas constraints and check (``fpga_ft.generate.keep_replicas``) count
  :meth:`NeuronStructure.instances`;
* the structural RTL twin (``fpga_ft.measure.twin``) is generated from the same tree and proves
  with Yosys which nodes are masked.

Schemes (``W`` = accumulator width ``accum_t`` in bits, ``k`` = ``protected_msbs``):

``Unprotected``
    hls4ml's arithmetic: every product and every partial sum is one W-bit word; nothing
    is masked.
``BitTMR`` (circuit level, ``protected_msbs: k``)
    Each product is three kept constant multipliers: replica 0 the whole W-bit word,
    replicas 1 and 2 only its top k bits (the cone of those bits is the whole
    multiplier). Products are summed by a balanced tree of split adders: the low W-k bits
    of both operands are added once (single), and the carry out of that low adder (one
    shared node) enters three kept *lane* modules, each a k-bit adder with carry-in. A
    lane module votes (2-of-3) the lanes of an operand that is itself a sum (inside the
    module, so a voter fault stays in its lane) and takes its own replica of an operand
    that is a product. The root's three lanes are voted by one voter into the neuron's
    output word. Single points kept on purpose, exposed unprotected in the csim: the low
    bits, the shared carry (1 bit per partial sum, k < W) and the output voter (k bits
    per neuron).
``FullTMR`` (architecture level, ``critical_neurons``)
    Three kept replica modules of the whole dot product, each with its own constant
    weights (a private copy), voted bitwise into the W-bit output by one voter (W bits,
    exposed unprotected). Every product and partial sum inside a replica is masked.

Failure probability per inference (BER ``p``: faults per bit per inference, independent):

* a protected bit of a BitTMR word is wrong after its vote when two of its three lanes
  are wrong there: ``3q^2 - 2q^3`` with ``q`` the probability that one lane is wrong at
  that bit (at least ``p``: the lane's own output bit; more when faults below it in the
  same k-bit lane carry into it); plus, per partial sum, ``p`` for the shared carry
  (wrong top slice, unmasked) and, per neuron, ``k p`` for the output voter.
* a FullTMR neuron is wrong when two replicas are wrong at the same output bit, plus
  ``W p`` for its output voter.

:func:`word_failure_probability` evaluates these with ``q = p``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, Sequence, Union

import numpy as np

from fpga_ft.core.errors import FpgaFtError

#: Replica-module kinds and their HLS function / Verilog module name stems. Replica ``r``
#: of kind ``K`` is ``fpgaft_tmr_r<r>_<K>`` (the replica index is part of the name, so a
#: netlist's REF_NAME tells replicas apart).
KIND_MUL, KIND_ADD, KIND_DOT, KIND_SMUL = "mul", "add", "dot", "smul"
KINDS = (KIND_MUL, KIND_ADD, KIND_DOT, KIND_SMUL)
REPLICAS = (0, 1, 2)


def module_stem(kind: str, replica: int) -> str:
    """Name stem of replica ``replica`` of a kept module kind (``fpgaft_tmr_r1_mul``)."""
    if kind not in KINDS or replica not in REPLICAS:
        raise ValueError(f"unknown replica module {kind!r}/{replica!r}")
    return f"fpgaft_tmr_r{replica}_{kind}"


@dataclass(frozen=True)
class NodeClass:
    """A class of nodes of one word: ``bits`` bits computed by one piece of logic.

    Attributes:
        word: ``product``, ``sum`` (partial sum) or ``output`` (the neuron's voted word).
        role: ``low`` (single low bits), ``lane`` (one replica of the protected top bits),
            ``carry`` (shared carry into the lanes), ``voter`` (output voter), ``word``
            (a whole unprotected word), ``replica`` (a whole word of a FullTMR replica).
        replica: replica index 0..2, or ``None`` for single (unreplicated) logic.
        bits: number of bits (each a node of its own).
        lsb: bit position in the W-bit word of the lowest of these bits.
        masked: a single flip on any of these bits is hidden by a vote.
    """

    word: str
    role: str
    replica: int | None
    bits: int
    lsb: int
    masked: bool

    @property
    def name(self) -> str:
        rep = "" if self.replica is None else f"{self.replica}"
        return f"{self.word}.{self.role}{rep}"


class Scheme:
    """Base of a protection scheme of one dot product (see the module docstring).

    The csim exposes per product word the bits of :meth:`product_nodes` in order, per
    partial sum those of :meth:`sum_nodes`, and once per neuron evaluation those of
    :meth:`output_nodes`."""

    name = "scheme"
    width: int

    def product_nodes(self) -> tuple[NodeClass, ...]:
        raise NotImplementedError

    def sum_nodes(self) -> tuple[NodeClass, ...]:
        raise NotImplementedError

    def output_nodes(self) -> tuple[NodeClass, ...]:
        return ()

    #: how many times the dot product's products and sums are replicated (FullTMR: 3)
    dot_replicas = 1

    @property
    def product_bits(self) -> int:
        """Bits one product word exposes (per dot-product replica)."""
        return sum(n.bits for n in self.product_nodes())

    @property
    def sum_bits(self) -> int:
        """Bits one partial-sum word exposes (per dot-product replica)."""
        return sum(n.bits for n in self.sum_nodes())

    @property
    def output_bits(self) -> int:
        return sum(n.bits for n in self.output_nodes())

    def word_failure_probability(self, p: float) -> float:
        """Probability (per word, per inference) that a partial-sum word is wrong after
        its vote at BER ``p`` (see the module docstring); base: any of its W bits."""
        return 1.0 - (1.0 - float(p)) ** self.width

    def module_instances(self, neuron: "NeuronStructure") -> dict[str, int]:
        """Kept replica-module instances of one neuron's dot product, per module stem."""
        return {}

    def module_keys(self, neuron: "NeuronStructure") -> dict[str, set]:
        """Distinct kept modules of one neuron per stem (keys telling modules apart)."""
        return {}

    def to_dict(self) -> dict:
        return {"scheme": self.name, "width": self.width, "product_bits": self.product_bits,
                "sum_bits": self.sum_bits, "output_bits": self.output_bits,
                "nodes": [n.name for n in (*self.product_nodes(), *self.sum_nodes(), *self.output_nodes())]}


@dataclass(frozen=True)
class Unprotected(Scheme):
    """hls4ml's own arithmetic: W-bit products and partial sums, nothing voted."""

    width: int
    name = "none"

    def product_nodes(self):
        return (NodeClass("product", "word", None, self.width, 0, False),)

    def sum_nodes(self):
        return (NodeClass("sum", "word", None, self.width, 0, False),)


@dataclass(frozen=True)
class BitTMR(Scheme):
    """Bit-level TMR of the top ``k`` bits of every product and partial-sum word."""

    width: int
    k: int
    name = "bit_tmr"

    def __post_init__(self):
        if not 1 <= self.k <= self.width:
            raise FpgaFtError(f"protected_msbs must be in 1..{self.width}, got {self.k}")

    @property
    def low_bits(self) -> int:
        return self.width - self.k

    def _lanes(self, word: str) -> tuple[NodeClass, ...]:
        return tuple(NodeClass(word, "lane", r, self.k, self.low_bits, True) for r in REPLICAS)

    def product_nodes(self):
        low = (NodeClass("product", "low", 0, self.low_bits, 0, False),) if self.low_bits else ()
        return (*low, *self._lanes("product"))

    def sum_nodes(self):
        if not self.low_bits:
            return self._lanes("sum")
        return (NodeClass("sum", "low", None, self.low_bits, 0, False), *self._lanes("sum"),
                NodeClass("sum", "carry", None, 1, self.low_bits, False))

    def output_nodes(self):
        return (NodeClass("output", "voter", None, self.k, self.low_bits, False),)

    def word_failure_probability(self, p: float) -> float:
        carry = float(p) if self.low_bits else 0.0
        return 1.0 - (1.0 - _two_of_three(p)) ** self.k * (1.0 - carry)

    def module_instances(self, neuron: "NeuronStructure") -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in REPLICAS:
            counts[module_stem(KIND_MUL, r)] = neuron.n_products
            counts[module_stem(KIND_ADD, r)] = neuron.n_sums
        return counts

    def module_keys(self, neuron: "NeuronStructure") -> dict[str, set]:
        """A product module per weight code and replica; a lane module per replica and
        operand kind."""
        mods: dict[str, set] = {}
        for r in REPLICAS:
            mods[module_stem(KIND_MUL, r)] = {t.code for t in neuron.products}
            mods[module_stem(KIND_ADD, r)] = {
                (isinstance(a.left, Add), isinstance(a.right, Add)) for a in neuron.adds()}
        return mods


@dataclass(frozen=True)
class FullTMR(Scheme):
    """Three full replicas of the dot product (own constants), one W-bit output voter."""

    width: int
    name = "full_tmr"
    dot_replicas = 3

    def product_nodes(self):
        return (NodeClass("product", "replica", None, self.width, 0, True),)

    def sum_nodes(self):
        return (NodeClass("sum", "replica", None, self.width, 0, True),)

    def output_nodes(self):
        return (NodeClass("output", "voter", None, self.width, 0, False),)

    def word_failure_probability(self, p: float) -> float:
        return 1.0 - (1.0 - _two_of_three(p)) ** self.width

    def module_instances(self, neuron: "NeuronStructure") -> dict[str, int]:
        return {module_stem(KIND_DOT, r): 1 for r in REPLICAS} if neuron.n_products else {}

    def module_keys(self, neuron: "NeuronStructure") -> dict[str, set]:
        """A dot module per neuron and replica."""
        return {module_stem(KIND_DOT, r): {(neuron.layer, neuron.neuron)} for r in REPLICAS} if neuron.n_products else {}


def _two_of_three(p: float) -> float:
    """Probability that two or three of three independent lanes (each wrong with ``p``) are wrong."""
    p = float(p)
    return 3.0 * p * p - 2.0 * p ** 3


def scheme_for(width: int, protected_msbs: int, critical: bool, scheme_key: str | None = None) -> Scheme:
    """The scheme of one neuron: a registered scheme's plan key (``fpga_ft.core.schemes``) ->
    that scheme, critical -> FullTMR, k > 0 -> BitTMR, else Unprotected."""
    if scheme_key is not None:
        from fpga_ft.core.schemes import scheme_for_key

        return scheme_for_key(scheme_key, width)
    if critical:
        return FullTMR(width)
    if protected_msbs > 0:
        return BitTMR(width, min(int(protected_msbs), width))
    return Unprotected(width)


def word_failure_probability(scheme: Scheme, p: float) -> float:
    """Probability (per word, per inference) that the protected part of one partial-sum
    word is wrong after its vote, at BER ``p``, with single-lane error probability
    ``q = p`` per bit (see the module docstring). Unprotected: any of its W bits."""
    return scheme.word_failure_probability(p)


# ---------------------------------------------------------------------------------------
# One neuron's dot product: its terms and the adder tree over them
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """A leaf of the adder tree: a product ``x[input] * code`` or the bias constant.

    ``code`` is the raw integer of the constant (weight code in ``weight_t`` units, or the
    bias in ``accum_t`` units); ``input`` is ``None`` for the bias."""

    input: int | None
    code: int

    @property
    def is_bias(self) -> bool:
        return self.input is None


@dataclass(frozen=True)
class Add:
    """A partial sum of two subtrees. ``index`` numbers the adds of a neuron 0.. (post-order)."""

    left: "Node"
    right: "Node"
    index: int


Node = Union[Term, Add]


def weight_codes(values: np.ndarray, fractional_bits: int, what: str = "weight") -> np.ndarray:
    """Raw integer codes of fixed-point values (``value * 2^F``); must be integers."""
    scaled = np.asarray(values, dtype=float) * float(2 ** int(fractional_bits))
    codes = np.rint(scaled)
    if not np.array_equal(codes, scaled):
        raise FpgaFtError(f"{what} values are not exact multiples of 2^-{fractional_bits}: "
                          "the layer's quantizer must be a fixed-point quantized_bits")
    return codes.astype(np.int64)


def bias_accum_code(bias: float, bias_frac: int, accum_width: int, accum_frac: int, signed: bool = True) -> int:
    """The bias as the raw ``accum_t`` integer the hardware adds: cast with truncation
    (AP_TRN) and wrap-around (AP_WRAP), as ``(accum_t)bias`` does."""
    raw = int(np.rint(float(bias) * 2 ** bias_frac))
    shift = bias_frac - accum_frac
    raw = raw >> shift if shift > 0 else raw << -shift
    raw &= (1 << accum_width) - 1
    if signed and raw >= 1 << (accum_width - 1):
        raw -= 1 << accum_width
    return raw


@dataclass(frozen=True)
class NeuronStructure:
    """The protected (or plain) dot product of one neuron / output channel.

    ``terms``: the non-zero products in input order, then the bias if its ``accum_t``
    value is non-zero (zero weights and a zero bias have no hardware). A neuron without
    non-zero products is a constant: no node, no replica, no output voter."""

    layer: str
    neuron: int
    scheme: Scheme
    terms: tuple[Term, ...]

    @property
    def products(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.is_bias)

    @property
    def n_products(self) -> int:
        return len(self.products)

    @property
    def n_sums(self) -> int:
        """Partial sums (two-input adds) of the tree: terms - 1."""
        return max(0, len(self.terms) - 1)

    @cached_property
    def tree(self) -> Node | None:
        """Balanced binary tree of adds over :attr:`terms` (``None``: no term, output 0)."""
        counter = iter(range(len(self.terms)))

        def build(lo: int, hi: int) -> Node:
            if hi - lo == 1:
                return self.terms[lo]
            mid = lo + (hi - lo) // 2
            left, right = build(lo, mid), build(mid, hi)
            return Add(left, right, next(counter))

        return build(0, len(self.terms)) if self.terms else None

    def adds(self) -> Iterator[Add]:
        """The adds of :attr:`tree` in post-order (``Add.index`` order)."""
        def walk(node):
            if isinstance(node, Add):
                yield from walk(node.left)
                yield from walk(node.right)
                yield node
        if self.tree is not None:
            yield from walk(self.tree)

    def exposed_bits(self) -> dict[str, int]:
        """Bits the csim exposes for one evaluation of this dot product, per site."""
        s, reps = self.scheme, self.scheme.dot_replicas
        has_output = self.n_products > 0 and s.output_bits > 0
        return {"products": reps * self.n_products * s.product_bits,
                "accumulators": reps * self.n_sums * s.sum_bits + (s.output_bits if has_output else 0)}

    def nodes(self) -> list[tuple[str, NodeClass]]:
        """Every node class instance of this dot product, named as the twin names them:
        ``(instance name, node class)``; e.g. ``("p3", product.lane1)`` is lane 1 of the
        product of input 3, ``("s5", sum.carry)`` the carry of add 5, ``("r2.p3", ...)``
        a product inside FullTMR replica 2, ``("out", output.voter)``."""
        out: list[tuple[str, NodeClass]] = []
        reps = range(3) if self.scheme.dot_replicas == 3 else (None,)
        for rep in reps:
            prefix = "" if rep is None else f"r{rep}."
            for t in self.products:
                out += [(f"{prefix}p{t.input}", n) for n in self.scheme.product_nodes()]
            for a in self.adds():
                out += [(f"{prefix}s{a.index}", n) for n in self.scheme.sum_nodes()]
        if self.n_products:
            out += [("out", n) for n in self.scheme.output_nodes()]
        return out

    def instances(self) -> dict[str, int]:
        """Kept replica-module instances per module stem (``fpgaft_tmr_r1_mul`` -> n)."""
        return self.scheme.module_instances(self)

    def distinct_modules(self) -> dict[str, set]:
        """Distinct kept modules per stem (:meth:`Scheme.module_keys`)."""
        return self.scheme.module_keys(self)


@dataclass(frozen=True)
class LayerStructure:
    """The dot-product structures of one layer (one per neuron / output channel).

    ``reuse_factor`` > 0 marks a *time-shared* layer (a reuse factor R > 1, either
    strategy; ``LayerInfo.time_shared``): its ``n_in * n_out`` products run on ``n_units = ceil(n_in * n_out / R)``
    shared MAC units, R cycles per evaluation. Unit ``u`` computes products
    ``q = u * R + c`` (cycle ``c``) of the neuron-major order ``q = j * n_in + i`` and adds
    each into neuron j's accumulator register, which starts at the bias. Weights come from
    a ROM per unit, so every product exists, zero weights included, and every product is
    one partial sum (each neuron's terms: all ``n_in`` products, then the bias, always).
    Protection replicates the units, not the products: BitTMR gives every unit three kept
    multiplier replicas ``fpgaft_tmr_r<r>_smul`` (generic: the weight is an operand) and
    three kept lanes ``fpgaft_tmr_r<r>_add`` that vote the accumulator's lanes they read;
    the accumulator keeps its low bits once and its top k bits in three lane registers.
    FullTMR (critical neurons) has no time-shared form."""

    name: str
    neurons: tuple[NeuronStructure, ...]
    n_positions: int
    reuse_factor: int = 0

    @property
    def time_shared(self) -> bool:
        return self.reuse_factor > 0

    @cached_property
    def n_in(self) -> int:
        """Inputs per neuron of a time-shared layer (every product exists there)."""
        return len(self.neurons[0].products) if self.neurons else 0

    @cached_property
    def n_units(self) -> int:
        """Shared MAC units of a time-shared layer: ``ceil(n_in * n_out / R)``."""
        if not self.time_shared:
            return 0
        return -(-len(self.neurons) * self.n_in // self.reuse_factor)

    def schedule(self) -> list[list[tuple[int, int] | None]]:
        """Time-shared layer: ``[cycle][unit] -> (neuron, input)`` or ``None`` (idle)."""
        n_in, n_out, r, units = self.n_in, len(self.neurons), self.reuse_factor, self.n_units
        return [[divmod(u * r + c, n_in) if u * r + c < n_in * n_out else None for u in range(units)]
                for c in range(r)]

    @property
    def scheme(self) -> Scheme:
        """The scheme of a time-shared layer's units (all its neurons share it)."""
        return self.neurons[0].scheme

    def exposed_bits(self) -> dict[str, int]:
        """Bits exposed at the products / accumulators sites per inference."""
        total = {"products": 0, "accumulators": 0}
        for n in self.neurons:
            for site, bits in n.exposed_bits().items():
                total[site] += bits
        return {site: bits * self.n_positions for site, bits in total.items()}

    def instances(self) -> dict[str, int]:
        """Kept replica-module instances of the layer's hardware (one pixel's dot products
        for a convolution: hls4ml instantiates them once and reuses them per position; a
        time-shared layer: per unit, three multiplier and three lane replicas)."""
        counts: dict[str, int] = {}
        if self.time_shared:
            if isinstance(self.scheme, BitTMR):
                for r in REPLICAS:
                    counts[module_stem(KIND_SMUL, r)] = self.n_units
                    counts[module_stem(KIND_ADD, r)] = self.n_units
            return counts
        for n in self.neurons:
            for stem, c in n.instances().items():
                counts[stem] = counts.get(stem, 0) + c
        return counts

    def distinct_modules(self) -> dict[str, int]:
        if self.time_shared:  # one generic multiplier and one lane module per replica
            return {stem: 1 for stem in self.instances()}
        mods: dict[str, set] = {}
        for n in self.neurons:
            for stem, s in n.distinct_modules().items():
                mods.setdefault(stem, set()).update(s)
        return {stem: len(s) for stem, s in mods.items()}


def layer_structure(info, protection) -> LayerStructure:
    """Build the structure of a layer from its :class:`~fpga_ft.core.layers.LayerInfo` (with
    weights) and :class:`~fpga_ft.core.plan.LayerProtection`."""
    if info.weights is None or info.biases is None:
        raise FpgaFtError(f"layer '{info.name}': the structure needs the quantized weights")
    w_codes = weight_codes(np.asarray(info.weights).reshape(info.n_in, info.n_out),
                           info.weight_type.fractional, f"layer '{info.name}' weight")
    critical = set(int(j) for j in protection.critical_neurons)
    shared = bool(getattr(info, "time_shared", False))
    if shared and any(protection.scheme_neurons.values()):
        key = next(k for k, v in protection.scheme_neurons.items() if v)
        raise FpgaFtError(f"layer '{info.name}': {key} need Strategy: Latency and ReuseFactor 1 (the layer is "
                          "time-shared); protect it with protected_msbs, or convert it with ReuseFactor 1")
    if shared and critical:
        raise FpgaFtError(f"layer '{info.name}': critical_neurons need Strategy: Latency and ReuseFactor 1 (its "
                          f"{info.n_in * info.n_out} products share {-(-info.n_in * info.n_out // info.reuse_factor)}"
                          " MAC units); protect it with protected_msbs, or convert it with ReuseFactor 1")
    acc = info.accum_type
    neurons = []
    for j in range(info.n_out):
        terms = [Term(int(i), int(w_codes[i, j])) for i in range(info.n_in) if shared or w_codes[i, j] != 0]
        b = bias_accum_code(float(np.asarray(info.biases).reshape(-1)[j]), info.bias_type.fractional,
                            acc.width, acc.fractional, acc.signed)
        if b != 0 or shared:  # a time-shared accumulator always starts at the bias
            terms.append(Term(None, b))
        scheme = scheme_for(acc.width, protection.protected_msbs, j in critical, protection.scheme_key_of(j))
        neurons.append(NeuronStructure(info.name, j, scheme, tuple(terms)))
    return LayerStructure(info.name, tuple(neurons), int(info.n_positions),
                          max(1, int(info.reuse_factor)) if shared else 0)


def design_structures(layers: Sequence, plan) -> list[LayerStructure]:
    """:func:`layer_structure` of every layer of a design (``plan`` may be ``None``)."""
    from fpga_ft.core.plan import LayerProtection

    return [layer_structure(info, plan.for_layer(info.name) if plan is not None else LayerProtection())
            for info in layers]


__all__ = ["NodeClass", "Scheme", "Unprotected", "BitTMR", "FullTMR", "scheme_for", "word_failure_probability",
           "Term", "Add", "NeuronStructure", "LayerStructure", "layer_structure", "design_structures",
           "module_stem", "weight_codes", "bias_accum_code", "KINDS", "REPLICAS"]
