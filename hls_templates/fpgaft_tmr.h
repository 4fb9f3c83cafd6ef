// fpga-ft: selective triple modular redundancy (TMR) for hls4ml Dense / Conv1D / Conv2D.
//
// Header-only (hls4ml compiles only myproject.cpp). The fpga-ft template classes point
// each protected layer's config at these kernels:
//   - Dense (io_parallel, io_stream) and the per-window kernel of io_stream convolutions:
//     `using kernel = fpgaft::DenseFT<...>` in the layer's (mult_)config;
//   - io_parallel Conv1D / Conv2D: the call becomes fpgaft::conv_1d_cl / conv_2d_cl.
//
// Per-layer compile-time parameters (added to the config structs by the templates):
//   protected_msbs  k: the top k bits of every product and every partial-sum (accumulator)
//                   word (accum_t) are computed in three replicas and voted bitwise 2-of-3;
//                   the lower bits are single.
//   critical[j]     output neuron / channel j computes its whole dot product (every
//                   product, every partial sum, all bits, its own weight copy) in three
//                   replicas; the three accumulators are voted at the neuron output.
//   n_critical      number of critical neurons.
//
// Two builds of the same source:
//   - synthesis / vendor csim (no FPGAFT_CSIM): explicit replicas, each a distinct
//     non-inlined function (fpgaft_tmr_r<R>_*), so HLS keeps three instances; the
//     generated fpgaft_keep_replicas.xdc marks them DONT_TOUCH / KEEP_HIERARCHY for Vivado.
//     An unprotected layer calls hls4ml's own kernel unchanged.
//   - fpga-ft C simulation (g++ -DFPGAFT_CSIM): the fault hooks of fpgaft_runtime.h; each
//     replica is exposed to faults separately. Synthesis never sees this code.
#ifndef FPGAFT_TMR_H_
#define FPGAFT_TMR_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include "nnet_activation.h"
#include "nnet_common.h"
#include <type_traits>
#include "nnet_conv1d.h"
#include "nnet_conv2d.h"
#include "nnet_dense.h"
#include "nnet_mult.h"

#ifdef FPGAFT_CSIM
#include "fpgaft_runtime.h"
#endif

namespace fpgaft {

// ------------------------------------------------------------------------------------------
// Voters (synthesised: one LUT3 per voted bit)
// ------------------------------------------------------------------------------------------
template <int K> inline ap_uint<K> majority(ap_uint<K> a, ap_uint<K> b, ap_uint<K> c) {
    #pragma HLS INLINE
    return (a & b) | (a & c) | (b & c);
}

// Replace the top K bits of `word` by the vote of its own top bits and two replica slices.
template <int K, class T> inline T vote_msbs(T word, ap_uint<K> r1, ap_uint<K> r2) {
    #pragma HLS INLINE
    const int W = T::width;
    ap_uint<K> r0 = word.range(W - 1, W - K);
    word.range(W - 1, W - K) = majority<K>(r0, r1, r2);
    return word;
}

template <class T> inline T vote_full(T a, T b, T c) {
    #pragma HLS INLINE
    const int W = T::width;
    ap_uint<W> ra = a.range(W - 1, 0), rb = b.range(W - 1, 0), rc = c.range(W - 1, 0);
    T out;
    out.range(W - 1, 0) = majority<W>(ra, rb, rc);
    return out;
}

// ------------------------------------------------------------------------------------------
// Replicas (synthesis build). Each replica index R instantiates a different function, kept
// as its own module (INLINE off) so that HLS cannot merge the three copies into one.
// ------------------------------------------------------------------------------------------
template <int R, class data_T, class CONFIG_T>
typename CONFIG_T::accum_t fpgaft_tmr_r0_mul(data_T x, typename CONFIG_T::weight_t w) {
    #pragma HLS INLINE off
    return (typename CONFIG_T::accum_t)CONFIG_T::template product<data_T, typename CONFIG_T::weight_t>::product(x, w);
}

// Replica 1 / 2 of a product's top K bits (only the cone of those bits is kept).
template <int R, int K, class data_T, class CONFIG_T>
ap_uint<K> fpgaft_tmr_rk_mul_msbs(data_T x, typename CONFIG_T::weight_t w) {
    #pragma HLS INLINE off
    typename CONFIG_T::accum_t p =
        CONFIG_T::template product<data_T, typename CONFIG_T::weight_t>::product(x, w);
    const int W = CONFIG_T::accum_t::width;
    ap_uint<K> top = p.range(W - 1, W - K);
    return top;
}

// Replica R of the top K bits of a partial sum a + p. The lower W-K bits are added once
// (single, unprotected); their carry into bit W-K feeds all three replicas of the top
// slice, so each replica is a K-bit adder with carry-in (K LUTs), not a W-bit one. Exact
// for accum_t's two's-complement wrap-around (AP_WRAP), which hls4ml's accum_t uses.
template <int R, int K>
ap_uint<K> fpgaft_tmr_rk_add_msbs(ap_uint<K> a_top, ap_uint<K> p_top, ap_uint<1> carry_in) {
    #pragma HLS INLINE off
    ap_uint<K> s = a_top + p_top + carry_in;
    return s;
}

// a += p with the top K bits triplicated (split adder above); K == W: whole word.
template <int K, class acc_T, bool PARTIAL = (K < acc_T::width)> struct tmr_add {
    static acc_T add(acc_T a, acc_T p) {
        #pragma HLS INLINE
        const int W = acc_T::width;
        ap_uint<W - K + 1> low = (ap_uint<W - K + 1>)(ap_uint<W - K>)a.range(W - K - 1, 0) +
                                 (ap_uint<W - K + 1>)(ap_uint<W - K>)p.range(W - K - 1, 0);
        ap_uint<1> carry = low[W - K];
        ap_uint<K> a_top = a.range(W - 1, W - K), p_top = p.range(W - 1, W - K);
        ap_uint<K> t0 = fpgaft_tmr_rk_add_msbs<0, K>(a_top, p_top, carry);
        ap_uint<K> t1 = fpgaft_tmr_rk_add_msbs<1, K>(a_top, p_top, carry);
        ap_uint<K> t2 = fpgaft_tmr_rk_add_msbs<2, K>(a_top, p_top, carry);
        acc_T out;
        out.range(W - K - 1, 0) = low.range(W - K - 1, 0);
        out.range(W - 1, W - K) = majority<K>(t0, t1, t2);
        return out;
    }
};
template <int K, class acc_T> struct tmr_add<K, acc_T, false> {
    static acc_T add(acc_T a, acc_T p) {
        #pragma HLS INLINE
        const int W = acc_T::width;
        ap_uint<W> ra = a.range(W - 1, 0), rp = p.range(W - 1, 0);
        ap_uint<W> t0 = fpgaft_tmr_rk_add_msbs<0, W>(ra, rp, 0);
        ap_uint<W> t1 = fpgaft_tmr_rk_add_msbs<1, W>(ra, rp, 0);
        ap_uint<W> t2 = fpgaft_tmr_rk_add_msbs<2, W>(ra, rp, 0);
        acc_T out;
        out.range(W - 1, 0) = majority<W>(t0, t1, t2);
        return out;
    }
};

// Balanced adder tree over p[L .. L+N) whose every node is a protected add (tmr_add): the
// voters sit between adder levels, so the tree keeps depth ceil(log2 N) (a chain of voted
// adds could not be rebalanced by HLS). Exact: accum_t addition wraps, so the order of
// the additions does not change the sum.
template <int K, class acc_T, unsigned L, unsigned N> struct tmr_tree {
    static acc_T sum(const acc_T p[]) {
        #pragma HLS INLINE
        return tmr_add<K, acc_T>::add(tmr_tree<K, acc_T, L, N / 2>::sum(p), tmr_tree<K, acc_T, L + N / 2, N - N / 2>::sum(p));
    }
};
template <int K, class acc_T, unsigned L> struct tmr_tree<K, acc_T, L, 1> {
    static acc_T sum(const acc_T p[]) {
        #pragma HLS INLINE
        return p[L];
    }
};

// One full replica of a critical neuron's dot product (all bits, own weight copy).
template <int R, class data_T, class CONFIG_T>
typename CONFIG_T::accum_t fpgaft_tmr_rfull_dot(data_T data[CONFIG_T::n_in],
                                                typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                                                typename CONFIG_T::bias_t biases[CONFIG_T::n_out], unsigned j) {
    #pragma HLS INLINE off
    typename CONFIG_T::accum_t acc = (typename CONFIG_T::accum_t)biases[j];
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        typename CONFIG_T::accum_t p = CONFIG_T::template product<data_T, typename CONFIG_T::weight_t>::product(
            data[i], weights[i * CONFIG_T::n_out + j]);
        acc += p;
    }
    return acc;
}

// Protected dense kernel for synthesis: same pipeline/partition/allocation pragmas as
// nnet::dense_latency; products and partial sums go through the TMR'd MSB cones.
template <class data_T, class res_T, typename CONFIG_T>
void dense_tmr_hw(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                  typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                  typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
    typedef typename CONFIG_T::accum_t acc_t;
    const int K = CONFIG_T::protected_msbs > 0 ? CONFIG_T::protected_msbs : 1;
    acc_t acc[CONFIG_T::n_out];
    #pragma HLS function_instantiate variable=weights,biases
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    #pragma HLS ARRAY_PARTITION variable=biases complete
    #pragma HLS ARRAY_PARTITION variable=acc complete
    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit

Neuron:
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        #pragma HLS UNROLL
        if (CONFIG_T::critical[j]) {
            acc_t a0 = fpgaft_tmr_rfull_dot<0, data_T, CONFIG_T>(data, weights, biases, j);
            acc_t a1 = fpgaft_tmr_rfull_dot<1, data_T, CONFIG_T>(data, weights, biases, j);
            acc_t a2 = fpgaft_tmr_rfull_dot<2, data_T, CONFIG_T>(data, weights, biases, j);
            acc[j] = vote_full(a0, a1, a2);
        } else if (CONFIG_T::protected_msbs > 0) {
            acc_t prod[CONFIG_T::n_in];
            #pragma HLS ARRAY_PARTITION variable=prod complete
        Mac:
            for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
                #pragma HLS UNROLL
                const unsigned index = i * CONFIG_T::n_out + j;
                prod[i] = vote_msbs<K>(fpgaft_tmr_r0_mul<0, data_T, CONFIG_T>(data[i], weights[index]),
                                       fpgaft_tmr_rk_mul_msbs<1, K, data_T, CONFIG_T>(data[i], weights[index]),
                                       fpgaft_tmr_rk_mul_msbs<2, K, data_T, CONFIG_T>(data[i], weights[index]));
            }
            acc[j] = tmr_add<K, acc_t>::add((acc_t)biases[j], tmr_tree<K, acc_t, 0, CONFIG_T::n_in>::sum(prod));
        } else {
            acc_t a = (acc_t)biases[j];
            for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
                #pragma HLS UNROLL
                a += fpgaft_tmr_r0_mul<0, data_T, CONFIG_T>(data[i], weights[i * CONFIG_T::n_out + j]);
            }
            acc[j] = a;
        }
    }
Result:
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        #pragma HLS UNROLL
        res[j] = nnet::cast<data_T, res_T, CONFIG_T>(acc[j]);
    }
}

#ifdef FPGAFT_CSIM
// ------------------------------------------------------------------------------------------
// C-simulation kernel with fault hooks (FPGAFT_CSIM only). Same arithmetic, same order of
// accumulation per neuron as nnet::dense_latency, so fault-free results are bit-exact.
// ------------------------------------------------------------------------------------------
template <class data_T, typename CONFIG_T>
typename CONFIG_T::accum_t critical_neuron_sim(const data_T *data, typename CONFIG_T::weight_t *weights,
                                               typename CONFIG_T::bias_t *biases, rt::LayerMemory<CONFIG_T> &mem,
                                               unsigned j) {
    typedef typename CONFIG_T::accum_t acc_t;
    rt::State &st = rt::state();
    acc_t r[3];
    uint64_t faults[3][2];
    const int policy = rt::exposure_policy(CONFIG_T::fpgaft_layer, j, 0);
    for (int rep = 0; rep < 3; rep++) {
        const typename CONFIG_T::weight_t *w = rep == 0 ? weights : &mem.rep_w[rep - 1][0];
        const typename CONFIG_T::bias_t *b = rep == 0 ? biases : &mem.rep_b[rep - 1][0];
        const uint64_t p0 = st.site[rt::PRODUCTS].injected, a0 = st.site[rt::ACCUMULATORS].injected;
        acc_t a = (acc_t)b[j];
        for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
            acc_t p = CONFIG_T::template product<data_T, typename CONFIG_T::weight_t>::product(
                data[i], w[i * CONFIG_T::n_out + j]);
            rt::expose(rt::PRODUCTS, p, policy); // hook: product word of replica `rep`
            a += p;
            rt::expose(rt::ACCUMULATORS, a, policy); // hook: partial sum of replica `rep`
        }
        r[rep] = a;
        faults[rep][0] = st.site[rt::PRODUCTS].injected - p0;
        faults[rep][1] = st.site[rt::ACCUMULATORS].injected - a0;
    }
    const acc_t voted = rt::vote_word(r[0], r[1], r[2]);
    for (int rep = 0; rep < 3; rep++) {
        if (rt::raw_bits(r[rep]) != rt::raw_bits(voted)) { // this replica was outvoted
            st.site[rt::PRODUCTS].masked += faults[rep][0];
            st.site[rt::ACCUMULATORS].masked += faults[rep][1];
        }
    }
    return voted;
}

// Fast path: the same arithmetic on raw integers (see rt::fixed_traits), used when every
// type is an ap_[u]fixed/ap_[u]int that fits and the accumulator truncates and wraps.
template <class data_T, typename CONFIG_T> struct use_raw_csim {
    typedef typename CONFIG_T::weight_t w_t;
    typedef typename CONFIG_T::accum_t a_t;
#ifdef FPGAFT_CSIM_TYPED // test switch: force the generic ap_fixed path
    static const bool value = false;
#else
    static const bool value =
        rt::fixed_traits<data_T>::ok && rt::fixed_traits<w_t>::ok && rt::fixed_traits<typename CONFIG_T::bias_t>::ok &&
        rt::fixed_traits<a_t>::ok && rt::fixed_traits<a_t>::trn_wrap && (data_T::width + w_t::width <= 62) &&
        std::is_same<typename CONFIG_T::template product<data_T, w_t>, nnet::product::mult<data_T, w_t>>::value;
#endif
};

template <class data_T, typename CONFIG_T>
int64_t dot_raw(const int64_t *x, const int64_t *w, const int64_t *b, unsigned j, int k) {
    typedef typename CONFIG_T::accum_t a_t;
    const int W = a_t::width;
    const bool S = rt::fixed_traits<a_t>::S;
    const int PF = rt::fixed_traits<data_T>::F + rt::fixed_traits<typename CONFIG_T::weight_t>::F;
    const int AF = rt::fixed_traits<a_t>::F;
    const int BF = rt::fixed_traits<typename CONFIG_T::bias_t>::F;
    if (k >= 0) {
        // Fused path: between two flips, words are summed without per-word hooks (summing
        // mod 2^64 and wrapping once equals wrapping every partial sum, as 2^W divides
        // 2^64); the exposed bits of the skipped words are consumed at once. The word a
        // flip lands in goes through the per-word hooks. Bit-exact, same random stream.
        rt::SiteState &sp = rt::state().site[rt::PRODUCTS];
        rt::SiteState &sa = rt::state().site[rt::ACCUMULATORS];
        const int64_t n = W + 2 * k;
        const int shift = PF - AF;
        uint64_t sum = (uint64_t)rt::rescale_raw(b[j], BF, AF);
        unsigned i = 0;
        while (i < CONFIG_T::n_in) {
            const int64_t safe_p = sp.countdown / n, safe_a = sa.countdown / n;
            int64_t m = safe_p < safe_a ? safe_p : safe_a;
            if (m > (int64_t)(CONFIG_T::n_in - i))
                m = CONFIG_T::n_in - i;
            sp.countdown -= m * n;
            sa.countdown -= m * n;
            const unsigned end = i + (unsigned)m;
            if (shift >= 0 && shift < 63) {
                for (; i < end; i++)
                    sum += (uint64_t)((x[i] * w[i * CONFIG_T::n_out + j]) >> shift);
            } else {
                for (; i < end; i++)
                    sum += (uint64_t)rt::rescale_raw(x[i] * w[i * CONFIG_T::n_out + j], PF, AF);
            }
            if (i < CONFIG_T::n_in) { // a flip lands in word i (product or partial sum)
                int64_t p = rt::wrap_raw<W, S>(rt::rescale_raw(x[i] * w[i * CONFIG_T::n_out + j], PF, AF));
                rt::expose_raw<W, S>(rt::PRODUCTS, p, k);
                int64_t acc = rt::wrap_raw<W, S>((int64_t)(sum + (uint64_t)p));
                rt::expose_raw<W, S>(rt::ACCUMULATORS, acc, k);
                sum = (uint64_t)acc;
                i++;
            }
        }
        return rt::wrap_raw<W, S>((int64_t)sum);
    }
    int64_t acc = rt::wrap_raw<W, S>(rt::rescale_raw(b[j], BF, AF));
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        int64_t p = rt::wrap_raw<W, S>(rt::rescale_raw(x[i] * w[i * CONFIG_T::n_out + j], PF, AF));
        rt::expose_raw<W, S>(rt::PRODUCTS, p, k); // hook: product word (replicas 0..2 of its top k bits)
        acc = rt::wrap_raw<W, S>(acc + p);
        rt::expose_raw<W, S>(rt::ACCUMULATORS, acc, k); // hook: partial-sum word
    }
    return acc;
}

template <class data_T, class res_T, typename CONFIG_T>
void dense_sim_impl(const data_T *data, res_T res[CONFIG_T::n_out], typename CONFIG_T::weight_t *,
                    typename CONFIG_T::bias_t *, rt::LayerMemory<CONFIG_T> &mem, std::true_type /* raw */) {
    typedef typename CONFIG_T::accum_t a_t;
    const int W = a_t::width;
    rt::State &st = rt::state();
    int64_t x[CONFIG_T::n_in];
    for (unsigned i = 0; i < CONFIG_T::n_in; i++)
        x[i] = rt::to_raw(data[i]);
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        int64_t acc;
        if (CONFIG_T::n_critical > 0 && CONFIG_T::critical[j]) {
            int64_t r[3];
            uint64_t faults[3][2];
            for (int rep = 0; rep < 3; rep++) { // three full replicas, own weight copies
                const uint64_t p0 = st.site[rt::PRODUCTS].injected, a0 = st.site[rt::ACCUMULATORS].injected;
                r[rep] = dot_raw<data_T, CONFIG_T>(x, mem.raw[2 * rep].data(), mem.raw[2 * rep + 1].data(), j,
                                                   rt::exposure_policy(CONFIG_T::fpgaft_layer, j, 0));
                faults[rep][0] = st.site[rt::PRODUCTS].injected - p0;
                faults[rep][1] = st.site[rt::ACCUMULATORS].injected - a0;
            }
            acc = rt::wrap_raw<W, rt::fixed_traits<a_t>::S>((r[0] & r[1]) | (r[0] & r[2]) | (r[1] & r[2]));
            for (int rep = 0; rep < 3; rep++) {
                if (r[rep] != acc) { // outvoted replica: its faults were masked by the voter
                    st.site[rt::PRODUCTS].masked += faults[rep][0];
                    st.site[rt::ACCUMULATORS].masked += faults[rep][1];
                }
            }
        } else {
            acc = dot_raw<data_T, CONFIG_T>(x, mem.raw[0].data(), mem.raw[1].data(), j,
                                            rt::exposure_policy(CONFIG_T::fpgaft_layer, j, CONFIG_T::protected_msbs));
        }
        res[j] = nnet::cast<data_T, res_T, CONFIG_T>(rt::from_raw<a_t>(acc));
    }
}

// Generic path: ap_fixed arithmetic, for any type hls4ml may produce.
template <class data_T, class res_T, typename CONFIG_T>
void dense_sim_impl(const data_T *data, res_T res[CONFIG_T::n_out], typename CONFIG_T::weight_t *weights,
                    typename CONFIG_T::bias_t *biases, rt::LayerMemory<CONFIG_T> &mem, std::false_type /* typed */) {
    typedef typename CONFIG_T::accum_t acc_t;
    const int K = CONFIG_T::protected_msbs;
    for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
        acc_t acc;
        if (CONFIG_T::n_critical > 0 && CONFIG_T::critical[j]) {
            acc = critical_neuron_sim<data_T, CONFIG_T>(data, weights, biases, mem, j);
        } else {
            const int policy = rt::exposure_policy(CONFIG_T::fpgaft_layer, j, K);
            acc = (acc_t)biases[j];
            for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
                acc_t p = CONFIG_T::template product<data_T, typename CONFIG_T::weight_t>::product(
                    data[i], weights[i * CONFIG_T::n_out + j]);
                rt::expose(rt::PRODUCTS, p, policy); // hook: replicas 0, 1, 2 of the product
                acc += p;
                rt::expose(rt::ACCUMULATORS, acc, policy); // hook: replicas 0, 1, 2 of the partial sum
            }
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
    data_T local[CONFIG_T::n_in];
    const data_T *data = data_in;
    if (CONFIG_T::fpgaft_expose_inputs) // hook: input activations
        data = rt::expose_array<data_T, CONFIG_T::n_in>(rt::ACTIVATIONS, data_in, local);
    dense_sim_impl<data_T, res_T, CONFIG_T>(data, res, weights, biases, mem,
                                            std::integral_constant<bool, use_raw_csim<data_T, CONFIG_T>::value>());
}
#endif

// The kernel every fpga-ft layer config names: `using kernel = fpgaft::DenseFT<...>`.
template <class data_T, class res_T, typename CONFIG_T> class DenseFT : public nnet::DenseKernel<data_T, res_T, CONFIG_T> {
  public:
    static void dense(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                      typename CONFIG_T::weight_t weights[CONFIG_T::n_in * CONFIG_T::n_out],
                      typename CONFIG_T::bias_t biases[CONFIG_T::n_out]) {
        #pragma HLS INLINE
#ifdef FPGAFT_CSIM
        dense_sim<data_T, res_T, CONFIG_T>(data, res, weights, biases);
#else
        if (CONFIG_T::protected_msbs == 0 && CONFIG_T::n_critical == 0) {
            // unprotected: hls4ml's own kernel, untouched
            CONFIG_T::template fpgaft_base_kernel<data_T, res_T, CONFIG_T>::dense(data, res, weights, biases);
        } else {
            dense_tmr_hw<data_T, res_T, CONFIG_T>(data, res, weights, biases);
        }
#endif
    }
};

// ------------------------------------------------------------------------------------------
// ReLU (io_parallel): hls4ml's nnet::relu, except in the fpga-ft csim build, where the
// output conversion runs on raw integers when res_T's rounding/overflow modes allow it
// (same values: tests compare with QKeras bit for bit).
// ------------------------------------------------------------------------------------------
#ifdef FPGAFT_CSIM
template <class data_T, class res_T, typename CONFIG_T>
void relu_sim(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], std::true_type) {
    for (unsigned i = 0; i < CONFIG_T::n_in; i++)
        res[i] = rt::from_raw<res_T>(rt::relu_raw<data_T, res_T>(rt::to_raw(data[i])));
}
template <class data_T, class res_T, typename CONFIG_T>
void relu_sim(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], std::false_type) {
    nnet::relu<data_T, res_T, CONFIG_T>(data, res);
}
#endif

template <class data_T, class res_T, typename CONFIG_T> void relu(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in]) {
    #pragma HLS INLINE
#ifdef FPGAFT_CSIM
    relu_sim<data_T, res_T, CONFIG_T>(data, res, std::integral_constant<bool, rt::raw_relu_ok<data_T, res_T>::value>());
#else
    nnet::relu<data_T, res_T, CONFIG_T>(data, res);
#endif
}

// ------------------------------------------------------------------------------------------
// io_parallel convolutions: hls4ml's im2col (the generated fill_buffer) feeding DenseFT
// once per output pixel, in the order nnet::conv_2d_latency_cl writes its outputs.
// ------------------------------------------------------------------------------------------
template <class data_T, class res_T, typename CONFIG_T, unsigned N_IN, unsigned N_OUT>
void conv_im2col_ft(data_T data_in[N_IN], res_T res[N_OUT], typename CONFIG_T::weight_t *weights,
                    typename CONFIG_T::bias_t *biases) {
    typedef typename CONFIG_T::mult_config mult_config;
    const data_T *data_ptr = data_in;
#ifdef FPGAFT_CSIM
    data_T local[N_IN];
    data_ptr = rt::expose_array<data_T, N_IN>(rt::ACTIVATIONS, data_in, local); // hook: input activations
#endif
    data_T *data = const_cast<data_T *>(data_ptr);
    data_T data_buf[CONFIG_T::n_pixels][mult_config::n_in];
    #pragma HLS ARRAY_PARTITION variable=data_buf complete dim=0
    #pragma HLS ARRAY_PARTITION variable=weights complete
    #pragma HLS ARRAY_PARTITION variable=biases complete
    unsigned out = 0;
PartitionLoop:
    for (unsigned i_part = 0; i_part < CONFIG_T::n_partitions; i_part++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor rewind
        CONFIG_T::template fill_buffer<data_T, CONFIG_T>::fill_buffer(data, data_buf, i_part);
    PixelLoop:
        for (unsigned i_pxl = 0; i_pxl < CONFIG_T::n_pixels; i_pxl++) {
            #pragma HLS UNROLL
            res_T pixel[mult_config::n_out];
            #pragma HLS ARRAY_PARTITION variable=pixel complete
            DenseFT<data_T, res_T, mult_config>::dense(data_buf[i_pxl], pixel, weights, biases);
            for (unsigned f = 0; f < mult_config::n_out; f++) {
                #pragma HLS UNROLL
                res[out++] = pixel[f];
            }
        }
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void conv_2d_cl(data_T data[CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan],
                res_T res[CONFIG_T::out_height * CONFIG_T::out_width * CONFIG_T::n_filt],
                typename CONFIG_T::weight_t weights[CONFIG_T::filt_height * CONFIG_T::filt_width * CONFIG_T::n_chan *
                                                    CONFIG_T::n_filt],
                typename CONFIG_T::bias_t biases[CONFIG_T::n_filt]) {
    #pragma HLS INLINE region
#ifndef FPGAFT_CSIM
    if (CONFIG_T::mult_config::protected_msbs == 0 && CONFIG_T::mult_config::n_critical == 0) {
        nnet::conv_2d_cl<data_T, res_T, CONFIG_T>(data, res, weights, biases); // unprotected: hls4ml's own
        return;
    }
#endif
    conv_im2col_ft<data_T, res_T, CONFIG_T, CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan,
                   CONFIG_T::out_height * CONFIG_T::out_width * CONFIG_T::n_filt>(data, res, weights, biases);
}

template <class data_T, class res_T, typename CONFIG_T>
void conv_1d_cl(data_T data[CONFIG_T::in_width * CONFIG_T::n_chan], res_T res[CONFIG_T::out_width * CONFIG_T::n_filt],
                typename CONFIG_T::weight_t weights[CONFIG_T::filt_width * CONFIG_T::n_chan * CONFIG_T::n_filt],
                typename CONFIG_T::bias_t biases[CONFIG_T::n_filt]) {
    #pragma HLS INLINE region
#ifndef FPGAFT_CSIM
    if (CONFIG_T::mult_config::protected_msbs == 0 && CONFIG_T::mult_config::n_critical == 0) {
        nnet::conv_1d_cl<data_T, res_T, CONFIG_T>(data, res, weights, biases); // unprotected: hls4ml's own
        return;
    }
#endif
    conv_im2col_ft<data_T, res_T, CONFIG_T, CONFIG_T::in_width * CONFIG_T::n_chan,
                   CONFIG_T::out_width * CONFIG_T::n_filt>(data, res, weights, biases);
}

} // namespace fpgaft

#endif
