"""The HLS view of a layer's protection structure: generated C++ for ``parameters.h``.

For every layer fpga-ft tagged, the layer's config struct gets ``fpgaft_dense`` (the
synthesis kernel that ``fpgaft::DenseFT`` calls) written from
:class:`fpga_ft.core.structure.LayerStructure`:

* an unprotected layer calls hls4ml's own kernel (``fpgaft_base_kernel``) unchanged;
* a bit-level protected neuron (``structure.BitTMR``) is its balanced adder tree, spelled
  out: every non-zero product a ``fpgaft::tmr_product<k, CODE, ...>`` (three kept constant
  multipliers, the weight's integer code a template parameter), every add a
  ``fpgaft::tmr_add`` (single low adder, three kept lanes), the root voted by
  ``fpgaft::tmr_output``;
* a critical neuron (``structure.FullTMR``) calls three kept replicas
  ``fpgaft_tmr_r<r>_dot<J>``, each of which inlines ``fpgaft_dot<J>::dot``: the same tree
  over W-bit words with its own constants;
* a neuron of a registered scheme (``fpga_ft.core.schemes.NeuronScheme``) is what the
  scheme's ``hls_neuron`` writes (after its ``hls_definitions``); in the csim build the
  layer's ``fpgaft_scheme_dot`` calls the scheme's ``csim_kernel`` for it;
* an unprotected neuron of a protected layer is hls4ml's arithmetic (weights array, bias);
* a time-shared layer (``ReuseFactor > 1``, either strategy, protected or not) is
  a loop of R pipelined cycles over ``ceil(n_in * n_out / R)`` MAC units, each with its own
  weight ROM and input index table; protected, every unit is ``fpgaft::tmr_mac`` (three kept
  generic multiplier replicas ``fpgaft_tmr_r<r>_smul``, three kept lanes) and every
  accumulator a ``fpgaft::lanes`` word voted once at the output.

The csim build never calls ``fpgaft_dense`` (``FPGAFT_CSIM`` kernels read the same
structure from the pristine weights at run time).
"""

from __future__ import annotations

from fpga_ft.core.schemes import NeuronScheme
from fpga_ft.core.structure import Add, BitTMR, FullTMR, LayerStructure, NeuronStructure, Term


def declarations() -> str:
    """Lines inside the config struct."""
    return ("    template<class data_T, class res_T> static void fpgaft_dense(data_T data[n_in], res_T res[n_out],"
            " weight_t weights[n_in * n_out], bias_t biases[n_out]);\n"
            "    template<unsigned J> struct fpgaft_dot;\n")


def _leaf(term: Term) -> str:
    return "bias" if term.is_bias else f"p{term.input}"


def _name(node) -> str:
    return f"s{node.index}" if isinstance(node, Add) else _leaf(node)


def _leaves(n: NeuronStructure, type_name: str, bias_expr: str, product_expr: str) -> list[str]:
    """One declaration per term (``bias`` / ``p<input>``); the expressions are formatted
    with the term's ``code`` and ``input``."""
    return [f"        {type_name} {_leaf(t)} = "
            + (bias_expr if t.is_bias else product_expr).format(code=t.code, input=t.input) + ";"
            for t in n.terms]


def _bit_tmr_neuron(n: NeuronStructure, c: str) -> list[str]:
    k = n.scheme.k
    lines = [f"    {{ // neuron {n.neuron}: bit-level TMR of the top {k} bits, {n.n_products} products, "
             f"{n.n_sums} partial sums",
             f"        typedef fpgaft::lanes<W, {k}> L;"]
    lines += _leaves(n, "L", f"fpgaft::tmr_const<W, {k}, {{code}}LL>()",
                     f"fpgaft::tmr_product<{k}, {{code}}, data_T, {c}>(data[{{input}}])")
    for a in n.adds():
        va = "true" if isinstance(a.left, Add) else "false"
        vb = "true" if isinstance(a.right, Add) else "false"
        lines.append(f"        L s{a.index} = fpgaft::tmr_add<W, {k}, {va}, {vb}>({_name(a.left)}, {_name(a.right)});")
    lines.append(f"        res[{n.neuron}] = nnet::cast<data_T, res_T, {c}>(fpgaft::tmr_output<acc_t, {k}>({_name(n.tree)}));")
    lines.append("    }")
    return lines


def _constant_neuron(n: NeuronStructure, c: str) -> list[str]:
    """No non-zero product: the output is the bias constant (or 0)."""
    code = n.terms[0].code if n.terms else 0
    return [f"    res[{n.neuron}] = nnet::cast<data_T, res_T, {c}>(fpgaft::from_code<acc_t, {code}LL>());"]


def _critical_neuron(n: NeuronStructure, c: str) -> list[str]:
    j = n.neuron
    return [f"    {{ // neuron {j}: full TMR, three kept replicas with their own constants",
            *[f"        acc_t r{r} = fpgaft::fpgaft_tmr_r{r}_dot<{j}, data_T, {c}>(data);" for r in range(3)],
            f"        res[{j}] = nnet::cast<data_T, res_T, {c}>(fpgaft::vote_full(r0, r1, r2));",
            "    }"]


def _plain_neuron(n: NeuronStructure, c: str) -> list[str]:
    j = n.neuron
    return [f"    {{ // neuron {j}: unprotected, hls4ml's arithmetic",
            f"        acc_t a = (acc_t)biases[{j}];",
            f"        for (unsigned i = 0; i < {c}::n_in; i++) {{",
            "            #pragma HLS UNROLL",
            f"            a += {c}::product<data_T, {c}::weight_t>::product(data[i], weights[i * {c}::n_out + {j}]);",
            "        }",
            f"        res[{j}] = nnet::cast<data_T, res_T, {c}>(a);",
            "    }"]


def dot_specialisation(n: NeuronStructure, c: str) -> list[str]:
    """``fpgaft_dot<J>::dot``: the critical neuron's tree over W-bit words (constants)."""
    lines = [f"template <> struct {c}::fpgaft_dot<{n.neuron}> {{",
             f"    template <class data_T> static {c}::accum_t dot(data_T data[{c}::n_in]) {{",
             "        #pragma HLS INLINE",
             f"        typedef {c}::accum_t acc_t;"]
    lines += _leaves(n, "acc_t", "fpgaft::from_code<acc_t, {code}LL>()",
                     f"fpgaft::const_product<{{code}}, data_T, {c}>(data[{{input}}])")
    for a in n.adds():
        lines.append(f"        acc_t s{a.index} = {_name(a.left)} + {_name(a.right)};")
    lines += [f"        return {_name(n.tree)};", "    }", "};"]
    return lines


def _time_shared(structure: LayerStructure, c: str, protected: bool) -> list[str]:
    """The body of a time-shared layer (``structure.LayerStructure``): R cycles, each unit
    one multiply-accumulate per cycle from its own weight ROM and input index table."""
    r, units = structure.reuse_factor, structure.n_units
    sched = structure.schedule()
    k = structure.scheme.k if protected and isinstance(structure.scheme, BitTMR) else 0
    bits = max(1, (structure.n_in - 1).bit_length())
    word = f"fpgaft::lanes<W, {k}>" if k else "acc_t"
    lines = [f"    // time-shared: {structure.n_in * len(structure.neurons)} products on {units} MAC units, {r} cycles"
             + (f"; bit-level TMR of the top {k} bits of every unit and accumulator" if k else ""),
             f"    typedef {c}::weight_t w_t;",
             f"    {word} acc[{c}::n_out];",
             "    #pragma HLS ARRAY_PARTITION variable=acc complete"]
    for n in structure.neurons:
        bias = n.terms[-1].code
        start = f"fpgaft::tmr_const<W, {k}, {bias}LL>()" if k else f"fpgaft::from_code<acc_t, {bias}LL>()"
        lines.append(f"    acc[{n.neuron}] = {start};")
    codes = [[t.code for t in n.products] for n in structure.neurons]
    for u in range(units):
        ins = ", ".join(str(sched[c_][u][1]) if sched[c_][u] else "0" for c_ in range(r))
        ws = ", ".join(f"{codes[sched[c_][u][0]][sched[c_][u][1]]}" if sched[c_][u] else "0" for c_ in range(r))
        lines += [f"    static const ap_uint<{bits}> fpgaft_in{u}[{r}] = {{{ins}}};",
                  f"    static const ap_int<w_t::width + 1> fpgaft_rom{u}[{r}] = {{{ws}}};"]
    lines += [f"    FpgaftReuse: for (unsigned c = 0; c < {r}; c++) {{",
              "        #pragma HLS PIPELINE II=1"]
    for u in range(units):
        spans: dict[int, list[int]] = {}
        for c_ in range(r):
            if sched[c_][u] is not None:
                spans.setdefault(sched[c_][u][0], []).append(c_)
        if not spans:
            continue
        js = sorted(spans)
        lines += [f"        {{ // unit {u}: neuron(s) {', '.join(map(str, js))}",
                  "            w_t w;",
                  f"            w.range(w_t::width - 1, 0) = (ap_uint<w_t::width>)fpgaft_rom{u}[c];",
                  f"            data_T x = data[fpgaft_in{u}[c]];"]
        select = f"acc[{js[-1]}]"
        for j in reversed(js[:-1]):
            select = f"(c <= {spans[j][-1]} ? acc[{j}] : {select})"
        last = max(max(v) for v in spans.values())
        guard = f"c <= {last}" if last < r - 1 else "true"
        if k:
            step = f"fpgaft::tmr_mac<{k}, data_T, {c}>({select}, x, w)"
        else:
            step = f"({select}) + fpgaft::shared_product<data_T, {c}>(x, w)"
        lines.append(f"            if ({guard}) {{")
        lines.append(f"                {word} s = {step};")
        for j in js:
            lo, hi = spans[j][0], spans[j][-1]
            cond = "true" if len(js) == 1 else " && ".join(([f"c >= {lo}"] if lo > 0 else []) + [f"c <= {hi}"])
            lines.append(f"                if ({cond}) acc[{j}] = s;")
        lines += ["            }", "        }"]
    lines.append("    }")
    for n in structure.neurons:
        out = f"fpgaft::tmr_output<acc_t, {k}>(acc[{n.neuron}])" if k else f"acc[{n.neuron}]"
        lines.append(f"    res[{n.neuron}] = nnet::cast<data_T, res_T, {c}>({out});")
    return lines


def definitions(structure: LayerStructure, c: str, protected: bool) -> str:
    """Out-of-line definitions after the config struct ``c`` (synthesis build only: the
    csim build, ``FPGAFT_CSIM``, does not parse them)."""
    return "#ifndef FPGAFT_CSIM\n" + _definitions(structure, c, protected) + "#endif\n"


def _definitions(structure: LayerStructure, c: str, protected: bool) -> str:
    head = ["template <class data_T, class res_T>",
            f"void {c}::fpgaft_dense(data_T data[{c}::n_in], res_T res[{c}::n_out], "
            f"{c}::weight_t weights[{c}::n_in * {c}::n_out], {c}::bias_t biases[{c}::n_out]) {{"]
    if structure is not None and structure.time_shared:
        return "\n".join(head + ["    #pragma HLS INLINE", f"    typedef {c}::accum_t acc_t;",
                                 "    const int W = acc_t::width;", "    (void)W; (void)weights; (void)biases;",
                                 *_time_shared(structure, c, protected), "}"]) + "\n"
    if not protected:
        return "\n".join(head + ["    #pragma HLS INLINE",
                                 f"    {c}::fpgaft_base_kernel<data_T, res_T, {c}>::dense(data, res, weights, biases);",
                                 "}"]) + "\n"
    specs: list[str] = []
    body = ["    #pragma HLS function_instantiate variable=weights,biases",
            f"    #pragma HLS PIPELINE II={c}::reuse_factor",
            f"    typedef {c}::accum_t acc_t;",
            "    const int W = acc_t::width;"]
    for n in structure.neurons:
        if isinstance(n.scheme, FullTMR) and n.n_products:
            specs += dot_specialisation(n, c)
            body += _critical_neuron(n, c)
        elif isinstance(n.scheme, NeuronScheme) and n.n_products:
            specs += n.scheme.hls_definitions(n, c)
            body += n.scheme.hls_neuron(n, c)
        elif n.n_products == 0:
            body += _constant_neuron(n, c)
        elif isinstance(n.scheme, BitTMR):
            body += _bit_tmr_neuron(n, c)
        else:
            body += _plain_neuron(n, c)
    return "\n".join(specs + head + body + ["}"]) + "\n"


def registered_schemes(structure: LayerStructure | None, c: str, n_out: int) -> tuple[str, str]:
    """Config-struct lines and definitions for the layer's neurons of registered schemes
    (``fpga_ft.core.schemes``): ``n_scheme_neurons``, ``fpgaft_scheme[j]`` (0: none, else
    1 + the scheme's index in this layer) and, in the csim build, ``fpgaft_scheme_dot``
    (dispatch to each scheme's ``csim_kernel``, whose C++ is written once per project)."""
    kinds: list[type] = []
    ids = [0] * n_out
    for n in structure.neurons if structure is not None else ():
        if isinstance(n.scheme, NeuronScheme):
            if type(n.scheme) not in kinds:
                kinds.append(type(n.scheme))
            ids[n.neuron] = 1 + kinds.index(type(n.scheme))
    inside = (f"    static const unsigned n_scheme_neurons = {sum(1 for i in ids if i)};\n"
              f"    static const unsigned char fpgaft_scheme[{n_out}];\n"
              "    template<class data_T> struct fpgaft_scheme_dot;\n")
    after = [f"const unsigned char {c}::fpgaft_scheme[{n_out}] = {{{', '.join(map(str, ids))}}};", "#ifdef FPGAFT_CSIM"]
    for kind in kinds:
        guard = "FPGAFT_SCHEME_" + "".join(ch if ch.isalnum() else "_" for ch in kind.plan_key).upper()
        after += [f"#ifndef {guard}", f"#define {guard}", kind.csim_source.strip("\n"), "#endif"]
    after += [f"template <class data_T> struct {c}::fpgaft_scheme_dot {{",
              "    static int64_t dot(const int64_t *x, const int64_t *w, const int64_t *b,",
              "                       const fpgaft::rt::NeuronTerms &nt, unsigned j, int bits, int bit) {",
              f"        switch ({c}::fpgaft_scheme[j]) {{"]
    after += [f"        case {i + 1}: return {kind.csim_kernel}<data_T, {c}>(x, w, b, nt, j, bits, bit);"
              for i, kind in enumerate(kinds)]
    after += ["        default: (void)x; (void)w; (void)b; (void)nt; (void)bits; (void)bit; return 0;",
              "        }", "    }", "};", "#endif"]
    return inside, "\n".join(after) + "\n"
