// fpga-ft: the C-simulation engine (FPGAFT_CSIM only; included by fpgaft_tmr.h).
//
// The scalar kernels (the definition of every exposed word under faults) and the block
// engine (clean pass + fault pass with sparse corrections) of docs/csim.md, the raw-integer
// ReLU and the io_parallel convolution's block path. Synthesis never sees this code.
#ifndef FPGAFT_ENGINE_H_
#define FPGAFT_ENGINE_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include "nnet_common.h"
#include "fpgaft_runtime.h"
#include <algorithm>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#include <cstring>
#include <type_traits>
#include <vector>

namespace fpgaft {

// ------------------------------------------------------------------------------------------
// C-simulation kernels with fault hooks (FPGAFT_CSIM only). They expose exactly the nodes of
// fpga_ft/core/structure.py: per dot product, the products of the non-zero (pristine) weights in
// input order, the bias first when its accum_t value is non-zero, and one partial-sum word
// per term after the first (the hardware's balanced tree has as many adds, of the same
// words; the csim adds in chain order: same sum, same fault statistics, not the identity of
// each add). Weight faults change the weight values (memory model); a product whose pristine
// weight is zero has no hardware, so its (flipped) value is added without exposure.
// ------------------------------------------------------------------------------------------

// Fast path: raw integers (see rt::fixed_traits), used when every type is an
// ap_[u]fixed/ap_[u]int that fits and the accumulator truncates and wraps. Protected layers
// need it (a static_assert says so otherwise).
template <class data_T, typename CONFIG_T> struct use_raw_csim {
    typedef typename CONFIG_T::weight_t w_t;
    typedef typename CONFIG_T::accum_t a_t;
    static const bool fits =
        rt::fixed_traits<data_T>::ok && rt::fixed_traits<w_t>::ok && rt::fixed_traits<typename CONFIG_T::bias_t>::ok &&
        rt::fixed_traits<a_t>::ok && rt::fixed_traits<a_t>::trn_wrap && (data_T::width + w_t::width <= 62) &&
        std::is_same<typename CONFIG_T::template product<data_T, w_t>, nnet::product::mult<data_T, w_t>>::value;
#ifdef FPGAFT_CSIM_TYPED // test switch: force the generic ap_fixed path (unprotected layers)
    static const bool value =
        fits && (CONFIG_T::protected_msbs > 0 || CONFIG_T::n_critical > 0 || CONFIG_T::n_scheme_neurons > 0);
#else
    static const bool value = fits;
#endif
};

// Raw arithmetic of one layer: product of input i and weight word w into accum_t (unwrapped).
template <class data_T, typename CONFIG_T> struct raw_math {
    typedef typename CONFIG_T::accum_t a_t;
    static const int W = a_t::width;
    static const bool S = rt::fixed_traits<a_t>::S;
    static const int PF = rt::fixed_traits<data_T>::F + rt::fixed_traits<typename CONFIG_T::weight_t>::F;
    static const int AF = rt::fixed_traits<a_t>::F;
    static const int BF = rt::fixed_traits<typename CONFIG_T::bias_t>::F;
    static inline int64_t product(int64_t x, int64_t w) {
        const int shift = PF - AF;
        if (shift >= 0 && shift < 63)
            return (x * w) >> shift;
        return rt::rescale_raw(x * w, PF, AF);
    }
    static inline int64_t bias(int64_t b) { return rt::wrap_raw<W, S>(rt::rescale_raw(b, BF, AF)); }
};

// The exposed words of a neuron with k = protected_msbs (bit-level TMR; k = 0: plain), as
// fpga_ft.core.exposure counts them: products of NP = W + 2k bits (replica 0's W bits, then
// lanes 1 and 2's top k bits), partial sums of NS = NP + 1 when there are both low bits and
// lanes (the shared carry into the lanes), the k-bit output voter; LW single low bits (LMASK).
template <class data_T, typename CONFIG_T> struct tmr_words {
    static const int W = raw_math<data_T, CONFIG_T>::W, K = CONFIG_T::protected_msbs, LW = W - K;
    static const int NP = W + 2 * K, NS = NP + (K > 0 && LW > 0 ? 1 : 0);
    static constexpr uint64_t LMASK = LW > 0 ? (~0ull >> (64 - LW)) : 0ull;
};

// Terms without hardware, non-zero only under weight faults: products of weights that are
// zero in the design, and a bias that is zero in the design (added without exposure).
template <class data_T, typename CONFIG_T>
inline uint64_t extra_terms(const int64_t *x, const int64_t *w, const int64_t *b, const rt::NeuronTerms &nt,
                            unsigned j) {
    typedef raw_math<data_T, CONFIG_T> M;
    uint64_t e = nt.bias_present ? 0 : (uint64_t)M::bias(b[j]);
    if (nt.extra)
        for (unsigned i = 0; i < CONFIG_T::n_in; i++)
            if (!nt.present[i] && w[i * CONFIG_T::n_out + j] != 0)
                e += (uint64_t)M::product(x[i], w[i * CONFIG_T::n_out + j]);
    return e;
}

// product(a, b) into accum_t in T lanes (int32_t or int64_t), as an unsigned T: the shift
// in T when it fits, else raw_math's general rescale.
template <class T, class data_T, typename CONFIG_T>
inline typename std::make_unsigned<T>::type lane_product(T a, T b) {
    typedef raw_math<data_T, CONFIG_T> M;
    const int SH = M::PF - M::AF;
    if (SH >= 0 && SH < 8 * (int)sizeof(T) - 1)
        return (typename std::make_unsigned<T>::type)((T)(a * b) >> SH);
    return (typename std::make_unsigned<T>::type)M::product(a, b);
}

// Sum of the products of terms [t, end) of a neuron, mod 2^64: x the neuron's inputs (raw,
// n_in words), nt.w its own weight words. A contiguous loop g++ vectorises when the neuron
// reads every input (nt.n == n_in).
template <class data_T, typename CONFIG_T>
inline uint64_t sum_terms(const int64_t *__restrict x, const rt::NeuronTerms &nt, unsigned t, unsigned end) {
    const int64_t *__restrict w = nt.w;
    uint64_t s = 0;
    if (nt.n == CONFIG_T::n_in) {
        for (unsigned u = t; u < end; u++)
            s += lane_product<int64_t, data_T, CONFIG_T>(x[u], w[u]);
    } else {
        for (unsigned u = t; u < end; u++)
            s += lane_product<int64_t, data_T, CONFIG_T>(x[nt.idx[u]], w[u]);
    }
    return s;
}

// The same sum in 32-bit lanes (clean_in_32: modulo 2^32, which 2^W divides) over a neuron's
// weight row (NeuronTerms::row32, zeros where the design has no product): inputs [i0, i1),
// contiguous, vectorised whether or not the neuron reads every input.
// With AVX-512: 16 lanes per step, the tail by a masked load (zeros: products 0), no scalar
// remainder loop (the ranges are short: at most half a neuron).
template <class data_T, typename CONFIG_T>
inline uint64_t sum_row_in(const int32_t *__restrict x, const int32_t *__restrict row, unsigned i0, unsigned i1) {
#if defined(__AVX512F__)
    const int SH = raw_math<data_T, CONFIG_T>::PF - raw_math<data_T, CONFIG_T>::AF; // 0 <= SH < 31 (clean_in_32)
    __m512i acc = _mm512_setzero_si512();
    for (unsigned i = i0; i < i1; i += 16) {
        const __mmask16 m = i1 - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (i1 - i)) - 1);
        const __m512i p = _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(m, x + i), _mm512_maskz_loadu_epi32(m, row + i));
        acc = _mm512_add_epi32(acc, _mm512_srai_epi32(p, SH));
    }
    return (uint64_t)(uint32_t)_mm512_reduce_add_epi32(acc);
#else
    uint32_t s = 0;
    for (unsigned i = i0; i < i1; i++)
        s += lane_product<int32_t, data_T, CONFIG_T>(x[i], row[i]);
    return (uint64_t)s;
#endif
}

// Fused terms: from term t on, as many terms as no flip lands in (np exposed bits per
// product word, ns per partial-sum word) are summed without per-word hooks (summing mod
// 2^64 and wrapping once equals wrapping every partial sum, as 2^W divides 2^64); their
// exposed bits are consumed at once. Returns the first term not summed.
template <class data_T, typename CONFIG_T>
inline unsigned fused_terms(const int64_t *x, const rt::NeuronTerms &nt, unsigned t, int np, int ns, uint64_t &sum) {
    rt::SiteState &sp = rt::state().site[rt::PRODUCTS];
    rt::SiteState &sa = rt::state().site[rt::ACCUMULATORS];
    int64_t m = sp.countdown / np;
    const int64_t ma = sa.countdown / ns;
    m = m < ma ? m : ma;
    if (m > (int64_t)(nt.n - t))
        m = nt.n - t;
    sp.countdown -= m * np;
    sa.countdown -= m * ns;
    const unsigned end = t + (unsigned)m;
    sum += sum_terms<data_T, CONFIG_T>(x, nt, t, end);
    return end;
}

// An unprotected dot product, or one replica of a full-TMR one, or a scoped exposure:
// every word exposes `bits` bits (W: the whole word, 1: only bit `bit_only`, 0: none).
template <class data_T, typename CONFIG_T>
int64_t dot_plain_raw(const int64_t *x, const int64_t *w, const int64_t *b, const rt::NeuronTerms &nt, unsigned j,
                      int bits, int bit_only) {
    typedef raw_math<data_T, CONFIG_T> M;
    rt::SiteState &sp = rt::state().site[rt::PRODUCTS];
    rt::SiteState &sa = rt::state().site[rt::ACCUMULATORS];
    uint64_t sum = nt.bias_present ? (uint64_t)M::bias(b[j]) : 0;
    bool have = nt.bias_present;
    unsigned t = 0;
    if (!have && nt.n > 0 && bits > 0 && sp.countdown >= bits) { // first term, no flip in it
        sp.countdown -= bits;
        sum = (uint64_t)M::product(x[nt.idx[0]], nt.w[0]);
        have = true;
        t = 1;
    }
    while (t < nt.n) {
        if (bits > 0 && have) { // the first term has no partial-sum word: through the hooks
            t = fused_terms<data_T, CONFIG_T>(x, nt, t, bits, bits, sum);
            if (t >= nt.n)
                break;
        }
        int64_t p = rt::wrap_raw<M::W, M::S>(M::product(x[nt.idx[t]], nt.w[t]));
        if (bits > 0)
            rt::expose_raw<M::W, M::S>(rt::PRODUCTS, p, bits == 1 ? rt::bit_only(bit_only) : 0);
        if (have) {
            int64_t acc = rt::wrap_raw<M::W, M::S>((int64_t)(sum + (uint64_t)p));
            if (bits > 0)
                rt::expose_raw<M::W, M::S>(rt::ACCUMULATORS, acc, bits == 1 ? rt::bit_only(bit_only) : 0);
            sum = (uint64_t)acc;
        } else {
            sum = (uint64_t)p; // the first term
        }
        have = true;
        t++;
    }
    sum += extra_terms<data_T, CONFIG_T>(x, w, b, nt, j);
    return rt::wrap_raw<M::W, M::S>((int64_t)sum);
}

// A bit-level TMR dot product (structure.BitTMR): products of W + 2k exposed bits (replica
// 0 whole, lanes 1 and 2 top k bits), partial sums of W + 2k + 1 (low bits, three lanes,
// the shared carry), and the k-bit output voter. Between flips the three lanes agree and
// the words are summed fused; from a flip until the lanes agree again every lane is kept.
template <class data_T, typename CONFIG_T>
int64_t dot_tmr_raw(const int64_t *x, const int64_t *w, const int64_t *b, const rt::NeuronTerms &nt, unsigned j,
                    const int k) {
    typedef raw_math<data_T, CONFIG_T> M;
    const int W = M::W;
    const int LW = W - k;
    const uint64_t LMASK = LW > 0 ? (~0ull >> (64 - LW)) : 0ull;
    const uint64_t KMASK = ~0ull >> (64 - k);
    const int NP = W + 2 * k, NS = W + 2 * k + (LW > 0 ? 1 : 0);
    rt::State &st = rt::state();
    rt::SiteState &sp = st.site[rt::PRODUCTS];
    rt::SiteState &sa = st.site[rt::ACCUMULATORS];

    uint64_t sum = nt.bias_present ? (uint64_t)M::bias(b[j]) : 0; // valid while the lanes agree
    bool have = nt.bias_present, a_is_sum = false, clean = true;
    uint64_t low = 0, lane[3] = {0, 0, 0};
    uint64_t pend[3][2] = {{0, 0}, {0, 0}, {0, 0}}; // lane flips not yet voted: [lane][products, accumulators]

    // Vote the current word's lanes (a consumer's voter): outvoted lanes' flips are masked.
    auto vote = [&]() -> uint64_t {
        const uint64_t v = (lane[0] & lane[1]) | (lane[0] & lane[2]) | (lane[1] & lane[2]);
        for (int r = 0; r < 3; r++) {
            if (lane[r] != v) {
                sp.masked += pend[r][0];
                sa.masked += pend[r][1];
            }
            pend[r][0] = pend[r][1] = 0;
        }
        return v;
    };

    unsigned t = 0;
    if (!have && nt.n > 0 && sp.countdown >= NP) { // first term, no flip in it: no partial sum
        sp.countdown -= NP;
        sum = (uint64_t)M::product(x[nt.idx[0]], nt.w[0]);
        have = true;
        t = 1;
    }
    while (t < nt.n) {
        if (clean && have) { // fused block: no flip lands in the next product and sum words
            const unsigned t0 = t;
            t = fused_terms<data_T, CONFIG_T>(x, nt, t, NP, NS, sum);
            a_is_sum = a_is_sum || t > t0;
            if (t >= nt.n)
                break;
        }
        // one term with every lane: a flip lands in it, or the lanes disagree
        const uint64_t p = (uint64_t)rt::wrap_raw<M::W, M::S>(M::product(x[nt.idx[t]], nt.w[t]));
        if (clean) {
            low = sum & LMASK;
            lane[0] = lane[1] = lane[2] = (sum >> LW) & KMASK;
        }
        uint64_t a_lane[3] = {lane[0], lane[1], lane[2]};
        if (have && a_is_sum) { // the lanes of the next add vote the partial sum they read
            const uint64_t v = vote();
            a_lane[0] = a_lane[1] = a_lane[2] = v;
        }
        uint64_t pm[3] = {0, 0, 0}, sm[3] = {0, 0, 0};
        int pc = 0, sc = 0;
        rt::draw_word_flips(sp, NP, W, k, pm, pc, pend, 0);
        const uint64_t p0 = p ^ pm[0];
        const uint64_t p_low = p0 & LMASK;
        const uint64_t p_lane[3] = {(p0 >> LW) & KMASK, ((p ^ pm[1]) >> LW) & KMASK, ((p ^ pm[2]) >> LW) & KMASK};
        if (!have) { // the first term: the product's lanes are the word
            low = p_low;
            for (int r = 0; r < 3; r++)
                lane[r] = p_lane[r];
            have = true;
            a_is_sum = false;
        } else {
            rt::draw_word_flips(sa, NS, W, k, sm, sc, pend, 1);
            const uint64_t ls = low + p_low;
            const uint64_t carry = (LW > 0 ? (ls >> LW) & 1 : 0) ^ (uint64_t)sc;
            low = (ls & LMASK) ^ (sm[0] & LMASK);
            for (int r = 0; r < 3; r++)
                lane[r] = ((a_lane[r] + p_lane[r] + carry) ^ (sm[r] >> LW)) & KMASK;
            a_is_sum = true;
        }
        clean = lane[0] == lane[1] && lane[1] == lane[2];
        if (clean) {
            for (int r = 0; r < 3; r++)
                pend[r][0] = pend[r][1] = 0;
            sum = low | (lane[0] << LW);
        }
        t++;
    }
    const uint64_t e = extra_terms<data_T, CONFIG_T>(x, w, b, nt, j);
    if (e != 0) { // terms without hardware (weight faults only): added to every lane alike
        if (clean) {
            sum += e;
        } else {
            const uint64_t ls = low + (e & LMASK);
            const uint64_t carry = LW > 0 ? (ls >> LW) & 1 : 0;
            low = ls & LMASK;
            for (int r = 0; r < 3; r++)
                lane[r] = (lane[r] + (e >> LW) + carry) & KMASK;
        }
    }
    if (nt.n == 0) // no product: a constant (the bias), no voter
        return rt::wrap_raw<M::W, M::S>((int64_t)sum);
    uint64_t top;
    if (clean) {
        low = sum & LMASK;
        top = (sum >> LW) & KMASK;
    } else {
        top = vote();
    }
    // the output voter: one k-bit node, unprotected
    sa.countdown -= k;
    while (sa.countdown < 0) {
        sa.injected++;
        top ^= 1ull << (k + sa.countdown);
        sa.countdown += 1 + rt::draw_gap(sa);
    }
    return rt::wrap_raw<M::W, M::S>((int64_t)(low | ((top & KMASK) << LW)));
}

// The W-bit output voter of a full-TMR neuron (one node, unprotected).
template <int W, bool S> inline int64_t expose_output_voter(int64_t v) {
    rt::SiteState &sa = rt::state().site[rt::ACCUMULATORS];
    sa.countdown -= W;
    while (sa.countdown < 0) {
        sa.injected++;
        v = rt::wrap_raw<W, S>((int64_t)((uint64_t)v ^ (1ull << (W + sa.countdown))));
        sa.countdown += 1 + rt::draw_gap(sa);
    }
    return v;
}

// One neuron through the scalar kernels (today's definition of every exposed word): the
// scheme, full-TMR, bit-level TMR or plain dot product of neuron j on raw inputs x.
template <class data_T, typename CONFIG_T>
int64_t neuron_raw(const int64_t *x, rt::LayerMemory<CONFIG_T> &mem, unsigned j) {
    typedef raw_math<data_T, CONFIG_T> M;
    const int W = M::W;
    rt::State &st = rt::state();
    const int policy = rt::exposure_policy(CONFIG_T::fpgaft_layer, j, CONFIG_T::protected_msbs);
    const int plain_bits = policy == rt::NO_EXPOSURE ? 0 : policy < 0 ? 1 : W;
    const int bit = policy < rt::NO_EXPOSURE ? -2 - policy : -1;
    if (CONFIG_T::n_scheme_neurons > 0 && CONFIG_T::fpgaft_scheme[j] != 0) // a registered scheme
        return CONFIG_T::template fpgaft_scheme_dot<data_T>::dot(x, mem.raw[0].data(), mem.raw[1].data(),
                                                              mem.terms(j, 0), j, plain_bits, bit);
    if (CONFIG_T::n_critical > 0 && CONFIG_T::critical[j]) {
        int64_t r[3];
        uint64_t faults[3][2];
        for (int rep = 0; rep < 3; rep++) { // three full replicas, own weight copies
            const uint64_t p0 = st.site[rt::PRODUCTS].injected, a0 = st.site[rt::ACCUMULATORS].injected;
            r[rep] = dot_plain_raw<data_T, CONFIG_T>(x, mem.raw[2 * rep].data(), mem.raw[2 * rep + 1].data(),
                                                     mem.terms(j, rep), j, plain_bits, bit);
            faults[rep][0] = st.site[rt::PRODUCTS].injected - p0;
            faults[rep][1] = st.site[rt::ACCUMULATORS].injected - a0;
        }
        int64_t acc = rt::wrap_raw<W, M::S>((r[0] & r[1]) | (r[0] & r[2]) | (r[1] & r[2]));
        for (int rep = 0; rep < 3; rep++) {
            if (r[rep] != acc) { // outvoted replica: its faults were masked by the voter
                st.site[rt::PRODUCTS].masked += faults[rep][0];
                st.site[rt::ACCUMULATORS].masked += faults[rep][1];
            }
        }
        if (policy >= 0 && mem.terms(j, 0).n > 0)
            acc = expose_output_voter<W, M::S>(acc);
        return acc;
    }
    if (CONFIG_T::protected_msbs > 0 && policy > 0)
        return dot_tmr_raw<data_T, CONFIG_T>(x, mem.raw[0].data(), mem.raw[1].data(), mem.terms(j, 0), j, policy);
    return dot_plain_raw<data_T, CONFIG_T>(x, mem.raw[0].data(), mem.raw[1].data(), mem.terms(j, 0), j, plain_bits,
                                           bit);
}

// ---- the block engine ----------------------------------------------------------------------
// A layer call evaluates a block of input vectors (one for Dense, every output pixel of a
// convolution) in two passes. (1) clean pass: every neuron's wrap-around sum of every
// product and the bias, as if no flip landed in its words (i outer, j inner: a loop over
// contiguous weights that g++ vectorises). (2) fault pass, in the scalar kernels' exposure
// order (vector by vector, neuron by neuron): a neuron whose exposed bits (neuron_cost) all
// fit before the next product and partial-sum flips consumes them at once and keeps its
// clean value, which is exactly what the scalar kernel would return; any other neuron (a
// flip lands in it, a scheme or full-TMR neuron, a fault scope) runs the scalar kernel. The
// RNG draws, the counters and every result are therefore those of the scalar kernels.

// Exposed (product, partial-sum) bits of neuron j's words when no fault scope is active
// (fpga_ft/core/exposure.py); p < 0: the neuron always runs the scalar kernel.
struct NeuronCost {
    int64_t p, a;
};
template <class data_T, typename CONFIG_T> struct LayerCost {
    std::vector<NeuronCost> cost;
    NeuronCost vector_cost; // the sum over the layer's neurons (p < 0: one runs its scalar kernel)
    void build(rt::LayerMemory<CONFIG_T> &mem) {
        typedef tmr_words<data_T, CONFIG_T> T;
        cost.resize(CONFIG_T::n_out);
        for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
            const rt::NeuronTerms t = mem.terms(j, 0);
            const int64_t n = t.n, sums = n > 0 ? n - 1 + (t.bias_present ? 1 : 0) : 0;
            NeuronCost &c = cost[j];
            if ((CONFIG_T::n_scheme_neurons > 0 && CONFIG_T::fpgaft_scheme[j] != 0) ||
                (CONFIG_T::n_critical > 0 && CONFIG_T::critical[j])) {
                c.p = c.a = -1;
            } else {
                c.p = n * T::NP;
                c.a = n > 0 ? sums * T::NS + T::K : 0;
            }
        }
        vector_cost.p = vector_cost.a = 0;
        for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
            if (cost[j].p < 0) {
                vector_cost.p = vector_cost.a = -1;
                break;
            }
            vector_cost.p += cost[j].p;
            vector_cost.a += cost[j].a;
        }
    }
};
template <class data_T, typename CONFIG_T> inline LayerCost<data_T, CONFIG_T> &layer_cost(rt::LayerMemory<CONFIG_T> &mem) {
    static LayerCost<data_T, CONFIG_T> c;
    if (c.cost.empty())
        c.build(mem);
    return c;
}

// Clean pass: out[v][j] = wrap(bias_j + sum_i product(x[v][i], w[i][j])) for nv vectors
// (x: nv x n_in raw inputs, out: nv x n_out raw accum_t words), summed in T (int32_t or
// int64_t) modulo 2^bits(T), which 2^W divides. Zero weights add nothing; a weight flipped
// away from zero is in w, as the scalar kernels' extra terms add it.
template <class T, class data_T, typename CONFIG_T>
void clean_block_in(const T *__restrict x, unsigned nv, const T *__restrict w, const int64_t *__restrict b,
                    int64_t *__restrict out) {
    typedef raw_math<data_T, CONFIG_T> M;
    typedef typename std::make_unsigned<T>::type U;
    const unsigned NI = CONFIG_T::n_in, NO = CONFIG_T::n_out;
    U bias[NO], acc[NO];
    for (unsigned j = 0; j < NO; j++)
        bias[j] = (U)M::bias(b[j]);
    for (unsigned v = 0; v < nv; v++) {
        const T *xv = x + (size_t)v * NI;
        for (unsigned j = 0; j < NO; j++)
            acc[j] = bias[j];
        // zero inputs (ReLU outputs, blank pixels) are not skipped: a data-dependent branch per
        // input mispredicts about as often as it saves a row (docs/csim.md)
        for (unsigned i = 0; i < NI; i++) {
            const T xi = xv[i];
            const T *__restrict wi = w + (size_t)i * NO;
            for (unsigned j = 0; j < NO; j++)
                acc[j] += lane_product<T, data_T, CONFIG_T>(xi, wi[j]);
        }
        for (unsigned j = 0; j < NO; j++)
            out[(size_t)v * NO + j] = rt::wrap_raw<M::W, M::S>((int64_t)(uint64_t)acc[j]);
    }
}

// 32-bit lanes (twice as many per vector) when every product fits in 31 bits and the
// accumulator in 32 (the weights' 32-bit mirror is kept by the layer memory).
template <class data_T, typename CONFIG_T> struct clean_in_32 {
    typedef raw_math<data_T, CONFIG_T> M;
    static const bool value = data_T::width + CONFIG_T::weight_t::width <= 31 && M::W <= 32 &&
                              M::PF - M::AF >= 0 && M::PF - M::AF < 31 && rt::LayerMemory<CONFIG_T>::W32;
};

// 16-bit pairs (clean_block_pairs16): every input and weight word fits 16 bits, the product is
// not shifted into accum_t (then a sum of two products mod 2^32 is what vpmaddwd returns), and
// the CPU the library is built for has AVX-512BW or AVX2 (Lanes16: the vector operations).
#if defined(__AVX512BW__)
#define FPGAFT_LANES16 1
struct Lanes16 {
    typedef __m512i V;
    static const unsigned L = 16; // 32-bit lanes
    static V load(const int32_t *p) { return _mm512_load_si512((const void *)p); }
    static V pair(int32_t x) { return _mm512_set1_epi32(x); }
    static V madd(V acc, V x, const int16_t *w) {
        return _mm512_add_epi32(acc, _mm512_madd_epi16(x, _mm512_loadu_si512((const void *)w)));
    }
    static void store(int32_t *p, V v) { _mm512_store_si512((void *)p, v); }
};
#elif defined(__AVX2__)
#define FPGAFT_LANES16 1
struct Lanes16 {
    typedef __m256i V;
    static const unsigned L = 8;
    static V load(const int32_t *p) { return _mm256_load_si256((const __m256i *)p); }
    static V pair(int32_t x) { return _mm256_set1_epi32(x); }
    static V madd(V acc, V x, const int16_t *w) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i *)w)));
    }
    static void store(int32_t *p, V v) { _mm256_store_si256((__m256i *)p, v); }
};
#endif

template <class data_T, typename CONFIG_T> struct clean_in_16 {
    typedef raw_math<data_T, CONFIG_T> M;
#ifdef FPGAFT_LANES16
    static const bool value = clean_in_32<data_T, CONFIG_T>::value && M::PF == M::AF &&
                              data_T::width <= (rt::fixed_traits<data_T>::S ? 16 : 15) && rt::LayerMemory<CONFIG_T>::W16;
#else
    static const bool value = false;
#endif
};

// The clean pass in 16-bit pairs: for each pair of inputs (2p, 2p + 1), one multiply-add of
// 16-bit words (vpmaddwd) gives x[2p] w[2p][j] + x[2p+1] w[2p+1][j] in 32 bits for 16 (or 8)
// outputs j at once; the same wrap-around sums as clean_block_in (mod 2^32, which 2^W divides).
template <class data_T, typename CONFIG_T>
void clean_block_pairs16(const int32_t *__restrict x, unsigned nv, const int16_t *__restrict w,
                         const int64_t *__restrict b, int64_t *__restrict out) {
#ifdef FPGAFT_LANES16
    typedef raw_math<data_T, CONFIG_T> M;
    typedef Lanes16 A;
    const unsigned NI = CONFIG_T::n_in, NO = CONFIG_T::n_out, NO16 = rt::LayerMemory<CONFIG_T>::NO16;
    const unsigned NP = (NI + 1) / 2, NQ = NO16 / A::L;
    alignas(64) int32_t bias[NO16], sums[NO16];
    for (unsigned j = 0; j < NO16; j++)
        bias[j] = j < NO ? (int32_t)(uint32_t)M::bias(b[j]) : 0;
    for (unsigned v = 0; v < nv; v++) {
        const int32_t *xv = x + (size_t)v * NI;
        A::V acc[NQ];
        for (unsigned q = 0; q < NQ; q++)
            acc[q] = A::load(bias + q * A::L);
        for (unsigned p = 0; p < NP; p++) {
            const uint32_t lo = (uint16_t)xv[2 * p], hi = 2 * p + 1 < NI ? (uint16_t)xv[2 * p + 1] : 0u;
            const A::V xp = A::pair((int32_t)(lo | (hi << 16)));
            const int16_t *wp = w + (size_t)p * NO16 * 2;
            for (unsigned q = 0; q < NQ; q++)
                acc[q] = A::madd(acc[q], xp, wp + 2 * A::L * q);
        }
        for (unsigned q = 0; q < NQ; q++)
            A::store(sums + q * A::L, acc[q]);
        for (unsigned j = 0; j < NO; j++)
            out[(size_t)v * NO + j] = rt::wrap_raw<M::W, M::S>((int64_t)(uint64_t)(uint32_t)sums[j]);
    }
#else
    (void)x, (void)nv, (void)w, (void)b, (void)out;
#endif
}

// The clean pass; returns the block's inputs in 32-bit words when it used them (else null).
template <class data_T, typename CONFIG_T>
const int32_t *clean_block(const int64_t *x, unsigned nv, rt::LayerMemory<CONFIG_T> &mem, int64_t *out) {
    const unsigned NI = CONFIG_T::n_in;
    if (clean_in_32<data_T, CONFIG_T>::value) {
        static std::vector<int32_t> x32;
        if (x32.size() < (size_t)nv * NI)
            x32.resize((size_t)nv * NI);
        for (size_t t = 0; t < (size_t)nv * NI; t++)
            x32[t] = (int32_t)x[t];
        if (clean_in_16<data_T, CONFIG_T>::value)
            clean_block_pairs16<data_T, CONFIG_T>(x32.data(), nv, mem.pairs16.data(), mem.raw[1].data(), out);
        else
            clean_block_in<int32_t, data_T, CONFIG_T>(x32.data(), nv, mem.raw32.data(), mem.raw[1].data(), out);
        return x32.data();
    } else {
        clean_block_in<int64_t, data_T, CONFIG_T>(x, nv, mem.raw[0].data(), mem.raw[1].data(), out);
        return nullptr;
    }
}

// Prefix sums of one neuron's chain for the sparse corrections: at(t) = S(t) = bias + the
// clean products of terms [0, t), mod 2^64, summed on from the last one asked (calls in
// ascending t), or, when every term of the clean value is in the chain (no term without
// hardware), as the clean value minus the suffix, whichever is shorter.
template <class data_T, typename CONFIG_T> struct PrefixSums {
    typedef raw_math<data_T, CONFIG_T> M;
    const int64_t *x;
    const int32_t *x32;
    const rt::NeuronTerms &nt;
    uint64_t clean, acc;
    unsigned pos;
    bool suffix_ok;
    PrefixSums(const int64_t *x_, const int32_t *x32_, const rt::NeuronTerms &nt_, int64_t bias_raw, int64_t clean_)
        : x(x_), x32(x32_), nt(nt_), clean((uint64_t)clean_),
          acc(nt_.bias_present ? (uint64_t)M::bias(bias_raw) : 0), pos(0),
          suffix_ok(!nt_.extra && (nt_.bias_present || M::bias(bias_raw) == 0)) {}
    __attribute__((always_inline)) uint64_t terms(unsigned a, unsigned b) const {
        if (a >= b)
            return 0;
        return x32 && nt.row32 ? sum_row_in<data_T, CONFIG_T>(x32, nt.row32, nt.idx[a], nt.idx[b - 1] + 1)
                               : sum_terms<data_T, CONFIG_T>(x, nt, a, b);
    }
    __attribute__((always_inline)) uint64_t at(unsigned t) {
        if (suffix_ok && nt.n - t < t - pos)
            return clean - terms(t, nt.n);
        acc += terms(pos, t);
        pos = t;
        return acc;
    }
};

// The change of the wrap-around sum when the shared carry into the lanes of the add of
// term t is inverted: prev = the partial sum it adds to, p_low = the low bits of the product.
inline uint64_t carry_flip_delta(uint64_t prev, uint64_t p_low, int LW, uint64_t LMASK) {
    const uint64_t carry = (((prev & LMASK) + (p_low & LMASK)) >> LW) & 1;
    return carry ? (0ull - (1ull << LW)) : (1ull << LW);
}

// The common case of sparse_neuron below, without its event bookkeeping: exactly one flip of
// one bit lands in the neuron's words (no multi-bit upsets), at the site whose countdown is
// inside them. A flip of the low bits of a product, of a partial sum or of the shared carry
// moves the sum by a correction, a lane flip is outvoted (masked), an output-voter flip
// inverts its bit of the result. Draws the same numbers, in the same order, as sparse_neuron
// and the scalar kernel; returns false, with the fault state as it was, when a second flip
// lands in the neuron (the caller then runs sparse_neuron).
template <class data_T, typename CONFIG_T>
bool single_flip_neuron(const int64_t *x, const int32_t *x32, const rt::NeuronTerms &nt, int64_t bias_raw,
                        int64_t clean, const NeuronCost c, int64_t &out) {
    typedef raw_math<data_T, CONFIG_T> M;
    typedef tmr_words<data_T, CONFIG_T> T;
    const int W = T::W, k = T::K, LW = T::LW, NP = T::NP, NS = T::NS;
    const uint64_t LMASK = T::LMASK;
    rt::State &st = rt::state();
    rt::SiteState &sp = st.site[rt::PRODUCTS], &sa = st.site[rt::ACCUMULATORS];
    const bool in_p = sp.countdown < c.p, in_a = sa.countdown < c.a;
    if (in_p == in_a || st.n_mbu != 0)
        return false;
    rt::SiteState &s = in_p ? sp : sa;
    const int64_t at = s.countdown, bits = in_p ? c.p : c.a;
    uint64_t rng0[4];
    std::memcpy(rng0, st.rng, sizeof rng0);
    const int64_t next = at - bits + 1 + rt::draw_gap(s);
    if (next < 0) { // a second flip in this neuron
        std::memcpy(st.rng, rng0, sizeof rng0);
        return false;
    }
    s.countdown = next;
    s.injected++;
    (in_p ? sa : sp).countdown -= in_p ? c.a : c.p;
    uint64_t delta = 0;
    const unsigned t0 = nt.bias_present ? 0 : 1, sums = (unsigned)(nt.n - t0);
    if (in_p || (int64_t)at < (int64_t)sums * NS) {
        // (word sizes are compile-time constants: the divisions are multiplications)
        const unsigned t = in_p ? (unsigned)(at / NP) : (unsigned)(at / NS) + t0;
        const int bit = in_p ? (int)(at % NP) : (int)(at % NS);
        const uint64_t p = (uint64_t)rt::wrap_raw<M::W, M::S>(M::product(x[nt.idx[t]], nt.w[t]));
        if (bit >= LW && bit < W + 2 * k) { // replica 0's protected bits or lane 1, 2: outvoted
            s.masked++;
            out = clean;
            return true;
        }
        if (bit >= LW) { // the shared carry
            PrefixSums<data_T, CONFIG_T> prefix(x, x32, nt, bias_raw, clean);
            delta = carry_flip_delta(prefix.at(t), p, LW, LMASK);
        } else if (in_p) {
            delta = (p ^ (1ull << bit)) - p;
        } else {
            PrefixSums<data_T, CONFIG_T> prefix(x, x32, nt, bias_raw, clean);
            const uint64_t v = prefix.at(t) + p;
            delta = (v ^ (1ull << bit)) - v;
        }
        out = rt::wrap_raw<M::W, M::S>((int64_t)((uint64_t)clean + delta));
    } else { // the k-bit output voter
        out = rt::wrap_raw<M::W, M::S>((int64_t)((uint64_t)clean ^ (1ull << (LW + (at - (int64_t)sums * NS)))));
    }
    return true;
}

// A plain or bit-level TMR neuron with flips, from its clean value (the fault pass's sparse
// path). The flips are drawn word by word exactly as the scalar kernel draws them (same RNG
// calls in the same order), then applied as corrections: a flip in the single low bits of a
// product or partial sum, or in the shared carry, moves the wrap-around sum by +-2^b (the sign
// read off the word's value: the product, or the prefix sum up to that term); a flip confined
// to one lane of the protected top bits is outvoted at the next voter that reads it (counted
// masked); output-voter flips invert bits of the result. Returns false, with the fault state
// as it was, when two lane flips fall within two terms of each other (they could meet at a
// voter): the caller then runs the scalar kernel.
template <class data_T, typename CONFIG_T>
bool sparse_neuron(const int64_t *x, const int32_t *x32, const rt::NeuronTerms &nt, int64_t bias_raw, int64_t clean,
                   int64_t &out) {
    typedef raw_math<data_T, CONFIG_T> M;
    typedef tmr_words<data_T, CONFIG_T> T;
    const int W = T::W, k = T::K, LW = T::LW, NP = T::NP, NS = T::NS;
    const uint64_t LMASK = T::LMASK;
    const unsigned n = nt.n;
    rt::State &st = rt::state();
    rt::SiteState &sp = st.site[rt::PRODUCTS], &sa = st.site[rt::ACCUMULATORS];
    const rt::SiteState sp0 = sp, sa0 = sa;
    uint64_t rng0[4];
    std::memcpy(rng0, st.rng, sizeof rng0);
    auto give_up = [&]() {
        sp = sp0;
        sa = sa0;
        std::memcpy(st.rng, rng0, sizeof rng0);
        return false;
    };
    struct Event {
        unsigned t;
        bool has_sum;
        int carry;
        uint64_t pm[3], sm[3], pend[3][2];
    };
    const int MAX_EVENTS = 8;
    Event ev[MAX_EVENTS];
    int ne = 0;
    // (1) draw: the words of term t are its product (NP bits) and, when a partial sum exists
    // (t > 0 or a bias), the partial sum (NS bits); terms without a flip are skipped at once
    unsigned t = 0;
    while (t < n) {
        const bool have = nt.bias_present || t > 0;
        if (have) {
            const int64_t rest = n - t;
            if (sp.countdown >= rest * NP && sa.countdown >= rest * NS) { // no flip in the rest
                sp.countdown -= rest * NP;
                sa.countdown -= rest * NS;
                break;
            }
            const int64_t m = std::min(sp.countdown / NP, sa.countdown / NS); // < rest: a flip lands
            sp.countdown -= m * NP;
            sa.countdown -= m * NS;
            t += (unsigned)m;
        } else if (sp.countdown >= NP) {
            sp.countdown -= NP;
            t = 1;
            continue;
        }
        if (ne == MAX_EVENTS)
            return give_up();
        Event &e = ev[ne++];
        std::memset(&e, 0, sizeof e);
        e.t = t;
        e.has_sum = have;
        int pc = 0;
        rt::draw_word_flips(sp, NP, W, k, e.pm, pc, e.pend, 0);
        if (have)
            rt::draw_word_flips(sa, NS, W, k, e.sm, e.carry, e.pend, 1);
        t++;
    }
    uint64_t voter = 0; // the k-bit output voter (bit-level TMR only)
    if (k > 0 && n > 0) {
        sa.countdown -= k;
        while (sa.countdown < 0) {
            sa.injected++;
            voter ^= 1ull << (k + sa.countdown);
            sa.countdown += 1 + rt::draw_gap(sa);
        }
    }
    // (2) lane flips: at most one lane per event, events at least three terms apart
    int64_t last_lane = -8;
    uint64_t masked_p = 0, masked_a = 0;
    for (int q = 0; q < ne; q++) {
        const Event &e = ev[q];
        const uint64_t lane_bits[6] = {e.pm[0] >> LW, e.pm[1], e.pm[2], e.sm[0] >> LW, e.sm[1], e.sm[2]};
        int words = 0;
        for (int u = 0; u < 6; u++)
            words += lane_bits[u] != 0;
        if (words == 0)
            continue;
        if (words > 1 || (int64_t)e.t - last_lane <= 2)
            return give_up();
        last_lane = e.t;
        for (int r = 0; r < 3; r++) {
            masked_p += e.pend[r][0];
            masked_a += e.pend[r][1];
        }
    }
    sp.masked += masked_p;
    sa.masked += masked_a;
    // (3) corrections, term by term (delta: their sum). A carry or partial-sum flip needs the
    // prefix sum S(t) (PrefixSums).
    PrefixSums<data_T, CONFIG_T> prefix(x, x32, nt, bias_raw, clean);
    uint64_t delta = 0;
    for (int q = 0; q < ne; q++) {
        const Event &e = ev[q];
        const uint64_t p = (uint64_t)rt::wrap_raw<M::W, M::S>(M::product(x[nt.idx[e.t]], nt.w[e.t]));
        const uint64_t p_flipped = p ^ (e.pm[0] & LMASK);
        if (e.has_sum && e.carry) // the shared carry into the lanes, inverted
            delta += carry_flip_delta(prefix.at(e.t) + delta, p_flipped, LW, LMASK);
        delta += p_flipped - p;
        const uint64_t s_low = e.sm[0] & LMASK;
        if (s_low) {
            const uint64_t s = prefix.at(e.t) + p + delta;
            delta += (s ^ s_low) - s;
        }
    }
    uint64_t v = (uint64_t)clean + delta;
    if (voter)
        v ^= voter << LW;
    out = rt::wrap_raw<M::W, M::S>((int64_t)v);
    return true;
}

// Both passes over nv input vectors (x: nv x n_in raw words); out: nv x n_out raw accum_t.
template <class data_T, typename CONFIG_T>
void dense_raw_block(const int64_t *x, unsigned nv, int64_t *out, rt::LayerMemory<CONFIG_T> &mem) {
    const unsigned NI = CONFIG_T::n_in, NO = CONFIG_T::n_out;
    rt::State &st = rt::state();
#ifdef FPGAFT_CSIM_SCALAR // test switch: the scalar kernels only (the engine's reference)
    const bool scalar_only = true;
#else
    const bool scalar_only = st.scope_active; // per-neuron exposure policies
#endif
    if (scalar_only) { // the scalar kernels throughout
        for (unsigned v = 0; v < nv; v++)
            for (unsigned j = 0; j < NO; j++)
                out[(size_t)v * NO + j] = neuron_raw<data_T, CONFIG_T>(x + (size_t)v * NI, mem, j);
        return;
    }
    const int32_t *x32 = clean_block<data_T, CONFIG_T>(x, nv, mem, out);
    const LayerCost<data_T, CONFIG_T> &lc = layer_cost<data_T, CONFIG_T>(mem);
    const NeuronCost *cost = lc.cost.data();
    const NeuronCost all = lc.vector_cost;
    rt::SiteState &sp = st.site[rt::PRODUCTS];
    rt::SiteState &sa = st.site[rt::ACCUMULATORS];
    int64_t pc = sp.countdown, ac = sa.countdown; // the countdowns, in registers between flips
    for (unsigned v = 0; v < nv; v++) {
        if (all.p >= 0 && pc >= all.p && ac >= all.a) { // no flip lands in this vector
            pc -= all.p;
            ac -= all.a;
            continue;
        }
        for (unsigned j = 0; j < NO; j++) {
            const NeuronCost c = cost[j];
            if (c.p >= 0 && pc >= c.p && ac >= c.a) { // no flip lands in this neuron
                pc -= c.p;
                ac -= c.a;
                continue;
            }
            sp.countdown = pc;
            sa.countdown = ac;
            const int64_t *xv = x + (size_t)v * NI;
            const int32_t *x32v = x32 ? x32 + (size_t)v * NI : nullptr;
            int64_t &o = out[(size_t)v * NO + j];
            if (c.p < 0 || !(single_flip_neuron<data_T, CONFIG_T>(xv, x32v, mem.terms(j, 0), mem.raw[1][j], o, c, o) ||
                             sparse_neuron<data_T, CONFIG_T>(xv, x32v, mem.terms(j, 0), mem.raw[1][j], o, o)))
                o = neuron_raw<data_T, CONFIG_T>(xv, mem, j);
            pc = sp.countdown;
            ac = sa.countdown;
        }
    }
    sp.countdown = pc;
    sa.countdown = ac;
}

// accum_t raw word -> res_T, stored in dst (nnet::cast: res_T(acc), on raw integers where
// rt::convert_raw is exact; a plain copy when the types are the same).
template <class data_T, class res_T, typename CONFIG_T> inline void store_raw(res_T &dst, int64_t acc) {
    typedef typename CONFIG_T::accum_t a_t;
    if (std::is_same<data_T, ap_uint<1>>::value) // hls4ml's binary cast
        dst = nnet::cast<data_T, res_T, CONFIG_T>(rt::from_raw<a_t>(acc));
    else if (std::is_same<a_t, res_T>::value)
        rt::set_raw(dst, acc);
    else if (rt::raw_convert_ok<a_t, res_T>::value)
        rt::set_raw(dst, rt::convert_raw<a_t, res_T>(acc));
    else
        dst = nnet::cast<data_T, res_T, CONFIG_T>(rt::from_raw<a_t>(acc));
}

template <class data_T, class res_T, typename CONFIG_T>
void dense_sim_impl(const data_T *data, res_T res[CONFIG_T::n_out], typename CONFIG_T::weight_t *,
                    typename CONFIG_T::bias_t *, rt::LayerMemory<CONFIG_T> &mem, std::true_type /* raw */) {
    int64_t x[CONFIG_T::n_in], acc[CONFIG_T::n_out];
    for (unsigned i = 0; i < CONFIG_T::n_in; i++)
        x[i] = rt::to_raw(data[i]);
    dense_raw_block<data_T, CONFIG_T>(x, 1, acc, mem);
    for (unsigned j = 0; j < CONFIG_T::n_out; j++)
        store_raw<data_T, res_T, CONFIG_T>(res[j], acc[j]);
}

// Generic path: ap_fixed arithmetic, for any type hls4ml may produce (unprotected layers).
template <class data_T, class res_T, typename CONFIG_T>
void dense_sim_impl(const data_T *data, res_T res[CONFIG_T::n_out], typename CONFIG_T::weight_t *weights,
                    typename CONFIG_T::bias_t *biases, rt::LayerMemory<CONFIG_T> &mem, std::false_type /* typed */) {
    static_assert(CONFIG_T::protected_msbs == 0 && CONFIG_T::n_critical == 0 && CONFIG_T::n_scheme_neurons == 0,
                  "fpga-ft: a protected layer needs ap_fixed/ap_int types of at most 62 bits, an AP_TRN/AP_WRAP "
                  "accumulator and hls4ml's plain product");
    typedef typename CONFIG_T::accum_t acc_t;
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        const int policy = rt::exposure_policy(CONFIG_T::fpgaft_layer, j, 0);
        const rt::NeuronTerms &nt = mem.terms(j, 0);
        acc_t acc = (acc_t)biases[j]; // zero in the design unless present (or flipped)
        bool have = nt.bias_present;
        for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
            acc_t p = CONFIG_T::template product<data_T, typename CONFIG_T::weight_t>::product(
                data[i], weights[i * CONFIG_T::n_out + j]);
            if (!nt.present[i]) { // no hardware; non-zero only when a weight fault set it
                acc += p;
                continue;
            }
            rt::expose(rt::PRODUCTS, p, policy); // hook: product word
            acc += p;
            if (have)
                rt::expose(rt::ACCUMULATORS, acc, policy); // hook: partial-sum word
            have = true;
        }
        res[j] = nnet::cast<data_T, res_T, CONFIG_T>(acc);
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void dense_sim(data_T data_in[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
               typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
               typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
    rt::LayerMemory<CONFIG_T> &mem = rt::layer_memory<CONFIG_T>();
    mem.enter(weights, biases); // hook: weight memory, once per inference
    static data_T local[CONFIG_T::n_in]; // constructed once (ap_fixed's constructor clears the words)
    const data_T *data = data_in;
    if (CONFIG_T::fpgaft_expose_inputs) // hook: input activations
        data = rt::expose_array<data_T, CONFIG_T::n_in>(rt::ACTIVATIONS, data_in, local);
    dense_sim_impl<data_T, res_T, CONFIG_T>(data, res, weights, biases, mem,
                                            std::integral_constant<bool, use_raw_csim<data_T, CONFIG_T>::value>());
}

template <class data_T, class res_T, typename CONFIG_T>
void relu_sim(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], std::true_type) {
    for (unsigned i = 0; i < CONFIG_T::n_in; i++)
        rt::set_raw(res[i], rt::relu_raw<data_T, res_T>(rt::to_raw(data[i])));
}
template <class data_T, class res_T, typename CONFIG_T>
void relu_sim(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], std::false_type) {
    nnet::relu<data_T, res_T, CONFIG_T>(data, res);
}

// The im2col gather map of a convolution, read off hls4ml's generated fill_buffer once: run
// on input indices (index + 1; padding writes 0), it says where each (pixel, tap) of every
// partition reads from, in the order conv_im2col_ft feeds the kernel.
template <typename CONFIG_T, unsigned N_IN> const std::vector<int> &im2col_map() {
    typedef typename CONFIG_T::mult_config mult_config;
    static std::vector<int> map;
    if (map.empty()) {
        const unsigned NI = mult_config::n_in, NP = CONFIG_T::n_pixels;
        std::vector<int> ids(N_IN);
        for (unsigned i = 0; i < ids.size(); i++)
            ids[i] = (int)i + 1;
        std::vector<int> buf((size_t)NP * NI);
        map.resize((size_t)CONFIG_T::n_partitions * NP * NI);
        for (unsigned part = 0; part < CONFIG_T::n_partitions; part++) {
            std::fill(buf.begin(), buf.end(), 0);
            CONFIG_T::template fill_buffer<int, CONFIG_T>::fill_buffer(ids.data(), (int(*)[NI])buf.data(), part);
            std::copy(buf.begin(), buf.end(), map.begin() + (size_t)part * NP * NI);
        }
    }
    return map;
}

// A convolution in the raw csim: every output pixel is one vector of the block engine (one
// weight-memory entry, the scalar kernels' exposure order: pixel by pixel, channel by channel).
template <class data_T, class res_T, typename CONFIG_T, unsigned N_IN, unsigned N_OUT>
bool conv_block_sim(const data_T *, res_T *, typename CONFIG_T::weight_t *, typename CONFIG_T::bias_t *,
                    std::false_type) {
    return false; // typed layer, or exposed kernel inputs: pixel by pixel through DenseFT
}
template <class data_T, class res_T, typename CONFIG_T, unsigned N_IN, unsigned N_OUT>
bool conv_block_sim(const data_T *data, res_T *res, typename CONFIG_T::weight_t *weights,
                    typename CONFIG_T::bias_t *biases, std::true_type) {
#ifdef FPGAFT_CSIM_SCALAR // test switch: pixel by pixel through DenseFT, as before the engine
    return false;
#endif
    typedef typename CONFIG_T::mult_config mult_config;
    const unsigned NI = mult_config::n_in, NO = mult_config::n_out;
    const unsigned NV = CONFIG_T::n_partitions * CONFIG_T::n_pixels;
    static std::vector<int64_t> xcol((size_t)NV * NI), out((size_t)NV * NO);
    int64_t xraw[N_IN + 1];
    xraw[0] = 0; // padding
    for (unsigned i = 0; i < N_IN; i++)
        xraw[i + 1] = rt::to_raw(data[i]);
    const int *map = im2col_map<CONFIG_T, N_IN>().data();
    for (size_t t = 0; t < (size_t)NV * NI; t++)
        xcol[t] = xraw[map[t]];
    rt::LayerMemory<mult_config> &mem = rt::layer_memory<mult_config>();
    mem.enter(weights, biases); // hook: weight memory, once per inference
    dense_raw_block<data_T, mult_config>(xcol.data(), NV, out.data(), mem);
    for (size_t t = 0; t < (size_t)NV * NO; t++)
        store_raw<data_T, res_T, mult_config>(res[t], out[t]);
    return true;
}

// Max pooling on raw integers (nnet::pooling2d_cl with pool_op Max: the maximum of the window's
// data_T words, padded cells reading hls4ml's pad_val (only the sign bit set), converted to
// accum_t and then to res_T), when both conversions are exact on raw integers.
template <class data_T, class res_T, typename CONFIG_T> struct raw_max_pooling_ok {
    typedef typename CONFIG_T::accum_t a_t;
    static const bool value = CONFIG_T::pool_op == nnet::Max && rt::raw_convert_ok<data_T, a_t>::value &&
                              rt::raw_convert_ok<a_t, res_T>::value;
};
template <class data_T, class res_T, typename CONFIG_T> bool max_pooling_sim(const data_T *, res_T *, std::false_type) {
    return false;
}
template <class data_T, class res_T, typename CONFIG_T>
bool max_pooling_sim(const data_T *data, res_T *res, std::true_type) {
    typedef typename CONFIG_T::accum_t a_t;
    const int W = data_T::width;
    const int64_t pad = rt::wrap_raw<W, rt::fixed_traits<data_T>::S>((int64_t)(1ull << (W - 1)));
    const int PH = CONFIG_T::pool_height, PW = CONFIG_T::pool_width, SH = CONFIG_T::stride_height,
              SW = CONFIG_T::stride_width, IH = CONFIG_T::in_height, IW = CONFIG_T::in_width, NF = CONFIG_T::n_filt;
    const int padded_w = IW + CONFIG_T::pad_left + CONFIG_T::pad_right;
    const int padded_h = IH + CONFIG_T::pad_top + CONFIG_T::pad_bottom;
    const int rw = (padded_w - PW) / SW * SW + 1, rh = (padded_h - PH) / SH * SH + 1;
    static std::vector<int64_t> x;
    x.resize((size_t)IH * IW * NF);
    for (size_t i = 0; i < x.size(); i++)
        x[i] = rt::to_raw(data[i]);
    for (int ii = 0; ii < rh; ii += SH) {
        for (int jj = 0; jj < rw; jj += SW) {
            int64_t *best = nullptr;
            int64_t window[CONFIG_T::n_filt];
            for (int kk = 0; kk < PH; kk++) {
                for (int ll = 0; ll < PW; ll++) {
                    const int r = ii + kk - CONFIG_T::pad_top, c = jj + ll - CONFIG_T::pad_left;
                    const bool inside = r >= 0 && r < IH && c >= 0 && c < IW;
                    const int64_t *src = inside ? &x[((size_t)r * IW + c) * NF] : nullptr;
                    for (int ff = 0; ff < NF; ff++) {
                        const int64_t v = src ? src[ff] : pad;
                        if (best == nullptr || v > window[ff])
                            window[ff] = v;
                    }
                    best = window;
                }
            }
            res_T *out = res + ((size_t)(ii / SH) * CONFIG_T::out_width + jj / SW) * NF;
            for (int ff = 0; ff < NF; ff++)
                rt::set_raw(out[ff], rt::convert_raw<a_t, res_T>(rt::convert_raw<data_T, a_t>(window[ff])));
        }
    }
    return true;
}

} // namespace fpgaft

#endif
