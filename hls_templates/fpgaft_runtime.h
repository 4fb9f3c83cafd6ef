// fpga-ft fault-injection runtime: C simulation only.
//
// This header is included by fpgaft_tmr.h only when FPGAFT_CSIM is defined, which the
// fpga-ft csim build (g++ -DFPGAFT_CSIM) sets and no synthesis Tcl ever sets. It holds the
// run-time fault parameters (BER per site, mode, seed), the skip-sampling bit-flip
// process and the counters. Nothing here needs recompiling when BER, seed, sites or mode
// change: Python sets them through the extern "C" functions of fpgaft_bridge.cpp.
//
// Fault model (units):
//   BER  = probability that a given bit flips, per bit, per inference; bits independent.
//   The exposed bits of each word are the nodes of fpga_ft/core/structure.py. A bit-level TMR
//   product word (W bits, top k protected) exposes W + 2k bits: [0, W) replica 0 (low bits
//   and lane 0), [W, W+k) lane 1's top k bits, [W+k, W+2k) lane 2's; a partial sum adds bit
//   W + 2k, the carry from its single low adder into the three lanes (when k < W); each
//   neuron's k-bit output voter is exposed once per evaluation.
//   Flips are drawn by skip-sampling: the gap to the next flipped bit is geometric with
//   parameter BER, so the cost grows with the number of flips, not the number of bits.
#ifndef FPGAFT_RUNTIME_H_
#define FPGAFT_RUNTIME_H_

#include <stdint.h>

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "ap_fixed.h"
#include "ap_int.h"

namespace fpgaft {
namespace rt {

// The fault sites, in the order of fpga_ft.core.faults.SITES (the csim library reports them
// through fpgaft_n_sites / fpgaft_site_name, and fpga-ft checks the two agree when it loads it).
enum Site { WEIGHTS = 0, ACTIVATIONS = 1, PRODUCTS = 2, ACCUMULATORS = 3, N_SITES = 4 };

// Name of site `i` (0 <= i < N_SITES) as fpga-ft spells it; nullptr outside that range.
inline const char *site_name(int i) {
    static const char *const names[N_SITES] = {"weights", "activations", "products", "accumulators"};
    return i >= 0 && i < N_SITES ? names[i] : nullptr;
}

// Largest multi-bit upset (adjacent bits of one word) the runtime draws.
static const int MAX_BURST = 16;

// Gap used when a site's BER is 0: never reached in any realistic run (bits).
static const int64_t NEVER = INT64_MAX / 4;

struct SiteState {
    double ber;         // faults per bit per inference
    double inv_rate;    // -1 / log(1 - ber), cached (bits per unit of Exp(1))
    int64_t countdown;  // unflipped bits left before the next flip
    uint64_t injected;  // flips drawn at this site (every replica counted)
    uint64_t masked;    // flips outvoted by a TMR voter
};

struct State {
    SiteState site[N_SITES];
    uint64_t rng[4];
    int persistent;           // 0: transient weight faults, 1: persistent until a scrub
    uint64_t inference;       // id of the current inference (bumped by begin_inference)
    uint64_t scrub_epoch;     // bumped at every scrub; layers restore pristine weights
    int64_t scrub_interval;   // inferences between scrubs in persistent mode (0 = never)
    int64_t since_scrub;
    uint64_t inferences_run;
    // Fault scope (vulnerability analysis): when active, only the products and partial
    // sums of layer `scope_layer` (neuron `scope_neuron`, or all if < 0) are exposed, and
    // only bit `scope_bit` of each word (all bits if < 0); weights and activations are not.
    int scope_active, scope_layer, scope_neuron, scope_bit;
    // Weight fault mode (fpga_ft.core.faults.WEIGHT_MODES): 0 transient, 1 accumulate (new
    // flips every inference, kept until a scrub), 2 latched (upsets drawn once per scrub
    // interval at the weights' BER, held for the interval), 3 stuck-at (like latched, but
    // each fault forces its bit to 0 or 1, drawn per fault). `persistent` is mode != 0.
    int weight_mode;
    // Multi-bit upsets: a flip event flips `burst` adjacent bits of its word, burst = s with
    // probability mbu_cum[s] - mbu_cum[s - 1] (mbu_cum[1] = P(size 1)); n_mbu = 0: single bits.
    int n_mbu;
    double mbu_cum[MAX_BURST + 1];
};

// Constant-initialised (no run-time guard): BER 0 everywhere, no flip pending, no scope,
// until fpgaft_configure() is called.
inline State &state() {
    static State s = {{{0.0, 0.0, NEVER, 0, 0}, {0.0, 0.0, NEVER, 0, 0}, {0.0, 0.0, NEVER, 0, 0}, {0.0, 0.0, NEVER, 0, 0}},
                      {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 1ull},
                      0, 0, 0, 0, 0, 0, 0, -1, -1, -1};
    return s;
}

inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

inline uint64_t splitmix64(uint64_t &x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// xoshiro256** (Blackman & Vigna).
inline uint64_t next_u64() {
    uint64_t *s = state().rng;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

// Uniform in [0, 1) (53 bits), and in (0, 1] (the same plus 2^-53: exact).
inline double uniform_co() { return (double)(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
inline double uniform01() { return uniform_co() + 1.0 / 9007199254740992.0; }

// Exponential(1) variates by the ziggurat method (Marsaglia & Tsang 2000, "The ziggurat method
// for generating random variables", 256 layers, the exponential constants r = 7.69711747013104972,
// v = 3.949659822581572e-3; layer index and abscissa from separate bits of one 64-bit draw, as
// numpy's random_standard_exponential). ~99 % of draws cost one RNG call, a table read and a
// multiply; the rest take the wedge or tail (one exp or log). Tables built by configure().
struct ExpZiggurat {
    uint64_t k[256]; // accept when the 53-bit abscissa draw is below k[i]
    double w[256];   // abscissa = draw * w[i]
    double f[256];   // exp(-x_i) at the layer edges
    bool ready;
};
inline ExpZiggurat &exp_ziggurat() {
    static ExpZiggurat z; // zero-initialised: no run-time guard
    return z;
}
inline void build_exp_ziggurat() {
    ExpZiggurat &z = exp_ziggurat();
    if (z.ready)
        return;
    const double m2 = 9007199254740992.0, ve = 3.949659822581572e-3;
    double de = 7.69711747013104972, te = de;
    const double q = ve / std::exp(-de);
    z.k[0] = (uint64_t)((de / q) * m2);
    z.k[1] = 0;
    z.w[0] = q / m2;
    z.w[255] = de / m2;
    z.f[0] = 1.0;
    z.f[255] = std::exp(-de);
    for (int i = 254; i >= 1; i--) {
        de = -std::log(ve / de + std::exp(-de));
        z.k[i + 1] = (uint64_t)((de / te) * m2);
        te = de;
        z.f[i] = std::exp(-de);
        z.w[i] = de / m2;
    }
    z.ready = true;
}
// The ~1 % of ziggurat draws outside a layer's rectangle (layer i, abscissa x): the tail
// (i = 0) or the wedge test, then fresh draws as standard_exponential makes them. Out of line,
// so that the common draw inlines where a gap is drawn.
__attribute__((noinline)) inline double exp_ziggurat_edge(int i, double x) {
    const ExpZiggurat &z = exp_ziggurat();
    for (;;) {
        if (i == 0) // the tail beyond r: r + Exp(1)
            return 7.69711747013104972 - std::log1p(-uniform_co());
        if ((z.f[i - 1] - z.f[i]) * uniform_co() + z.f[i] < std::exp(-x))
            return x; // the wedge
        const uint64_t r = next_u64() >> 3;
        i = (int)(r & 0xFF);
        const uint64_t u = r >> 8; // 53 bits
        x = (double)u * z.w[i];
        if (u < z.k[i])
            return x;
    }
}
inline double standard_exponential() {
    const ExpZiggurat &z = exp_ziggurat();
    const uint64_t r = next_u64() >> 3;
    const int i = (int)(r & 0xFF);
    const uint64_t u = r >> 8; // 53 bits
    const double x = (double)u * z.w[i];
    if (__builtin_expect(u < z.k[i], 1))
        return x;
    return exp_ziggurat_edge(i, x);
}

// Number of unflipped bits before the next flip: Geometric(ber) on {0, 1, 2, ...}, as
// floor(E / -log(1 - ber)) for E ~ Exp(1): P(gap >= g) = (1 - ber)^g.
inline int64_t draw_gap(const SiteState &s) {
    if (s.ber <= 0.0)
        return NEVER;
    if (s.ber >= 1.0)
        return 0;
    const double g = std::floor(standard_exponential() * s.inv_rate);
    return g >= (double)NEVER ? NEVER : (int64_t)g;
}

inline void seed(uint64_t seed_value) {
    uint64_t x = seed_value;
    for (int i = 0; i < 4; i++)
        state().rng[i] = splitmix64(x);
}

// Start a fresh stream: new seed, counters zeroed, weight memories scrubbed.
inline void configure(const double *bers, int persistent, uint64_t seed_value, int64_t scrub_interval) {
    State &st = state();
    build_exp_ziggurat();
    seed(seed_value);
    for (int i = 0; i < N_SITES; i++) {
        SiteState &s = st.site[i];
        s.ber = bers[i];
        s.inv_rate = (bers[i] > 0.0 && bers[i] < 1.0) ? -1.0 / std::log1p(-bers[i]) : 0.0;
        s.injected = 0;
        s.masked = 0;
        s.countdown = draw_gap(s);
    }
    st.persistent = persistent;
    st.weight_mode = persistent ? 1 : 0;
    st.n_mbu = 0;
    st.scrub_interval = scrub_interval;
    st.since_scrub = 0;
    st.scrub_epoch++;
    st.inferences_run = 0;
}

// Weight fault modes, multi-bit upsets (configure_faults, burst_end, weight_fault, ...).
#include "fpgaft_faults.h"

// Called by the batch driver before every inference.
inline void begin_inference() {
    State &st = state();
    st.inference++;
    st.inferences_run++;
    if (st.persistent && st.scrub_interval > 0 && st.since_scrub >= st.scrub_interval) {
        st.scrub_epoch++;
        st.since_scrub = 0;
    }
    st.since_scrub++;
}

inline void set_scope(int layer, int neuron, int bit) {
    State &st = state();
    st.scope_active = layer >= 0;
    st.scope_layer = layer;
    st.scope_neuron = neuron;
    st.scope_bit = bit;
}

// Exposure policy of one neuron's product/partial-sum words: k >= 0 protected MSBs as
// usual; NO_EXPOSURE; or BIT_ONLY(b): only bit b of replica 0 is exposed.
static const int NO_EXPOSURE = -1;
inline int bit_only(int bit) { return -2 - bit; }
inline int exposure_policy(unsigned layer, unsigned neuron, int k) {
    const State &st = state();
    if (!st.scope_active)
        return k;
    if ((int)layer != st.scope_layer || (st.scope_neuron >= 0 && (int)neuron != st.scope_neuron))
        return NO_EXPOSURE;
    return st.scope_bit >= 0 ? bit_only(st.scope_bit) : k;
}

// Test-only switch: the next flip at `site` happens after exactly `skip_bits` more exposed
// bits (then the site's BER takes over again). Lets a test hit one chosen bit of one replica.
inline void force_next_flip(int site, int64_t skip_bits) { state().site[site].countdown = skip_bits; }

// ---- bit helpers (work for ap_fixed, ap_ufixed, ap_int, ap_uint of any width) -------------
template <class T> inline ap_uint<T::width> raw_bits(const T &v) {
    ap_uint<T::width> r = v.range(T::width - 1, 0);
    return r;
}
template <class T> inline void set_raw_bits(T &v, const ap_uint<T::width> &r) { v.range(T::width - 1, 0) = r; }
template <class T> inline void flip_bit(T &v, int bit) {
    ap_uint<T::width> r = raw_bits(v);
    r[bit] = !r[bit];
    set_raw_bits(v, r);
}
// Draw the flips that land in one bit-level TMR word of n exposed bits (structure.BitTMR
// layout, see above): m[r] collects lane r's flips in W-bit positions (m[0] also the low
// bits), `carry` the shared carry's, pend[r][slot] counts lane flips awaiting a vote.
__attribute__((always_inline)) inline void draw_word_flips(SiteState &s, int n, int W, int k, uint64_t m[3], int &carry, uint64_t pend[3][2],
                            int slot) {
    s.countdown -= n;
    while (s.countdown < 0) {
        const int pos = (int)(n + s.countdown);
        // a burst stays in its word: replica 0 (W bits), lane 1 or 2 (k bits), the carry (1)
        if (pos < W) {
            for (int b = pos, end = burst_end(pos, W); b < end; b++) {
                s.injected++;
                m[0] ^= 1ull << b;
                if (b >= W - k)
                    pend[0][slot]++;
            }
        } else if (pos < W + 2 * k) {
            const int r = pos < W + k ? 1 : 2, j = pos - W - (r - 1) * k;
            for (int b = j, end = burst_end(j, k); b < end; b++) {
                s.injected++;
                m[r] ^= 1ull << (W - k + b);
                pend[r][slot]++;
            }
        } else {
            s.injected++;
            carry ^= 1;
        }
        s.countdown += 1 + draw_gap(s);
    }
}

// ---- the per-word hooks ------------------------------------------------------------------
// Hooks for single (unreplicated) words: unprotected products and partial sums, and each
// word of a full-TMR replica (the replicas are separate words, voted by the kernel). The
// lanes of a bit-level TMR word are drawn by draw_word_flips above. `policy` (see
// exposure_policy): >= 0 every one of the word's W bits, NO_EXPOSURE none, bit_only(b) only
// bit b. Returns the exposed bit count n; `bit` is b for bit-only exposure, else -1.
inline int exposed_word_bits(int policy, int W, int &bit) {
    bit = policy < NO_EXPOSURE ? -2 - policy : -1;
    if (policy == NO_EXPOSURE || bit >= W)
        return 0;
    return bit >= 0 ? 1 : W;
}

// Slow path: at least one flip lands in the word's n exposed bits; flip(b) applies one.
template <class F> __attribute__((noinline)) void draw_word_slow(SiteState &s, int n, int bit, F flip) {
    while (s.countdown < 0) {
        if (bit >= 0) { // bit-only exposure (vulnerability scope): no burst
            s.injected++;
            flip(bit);
        } else {
            const int pos = (int)(n + s.countdown);
            for (int b = pos, end = burst_end(pos, n); b < end; b++) {
                s.injected++;
                flip(b);
            }
        }
        s.countdown += 1 + draw_gap(s);
    }
}

// Expose one single word. Fast path: one subtraction and a predictable branch.
template <class T> inline void expose(int site, T &v, int policy) {
    int bit;
    const int n = exposed_word_bits(policy, T::width, bit);
    SiteState &s = state().site[site];
    s.countdown -= n;
    if (__builtin_expect(s.countdown < 0, 0))
        draw_word_slow(s, n, bit, [&v](int b) { flip_bit(v, b); });
}

// Expose an array of N unprotected words (a layer's input activations). Returns the array
// to compute with: `data` itself, or `local` holding a copy with the flips applied.
template <class T, unsigned N> inline const T *expose_array(int site, const T *data, T *local) {
    if (state().scope_active)
        return data;
    SiteState &s = state().site[site];
    const int64_t n = (int64_t)N * T::width;
    s.countdown -= n;
    if (__builtin_expect(s.countdown >= 0, 1))
        return data;
#ifdef FPGAFT_AP_PRIVATE // the words themselves (ap_private's copy assignment clears a volatile word)
    std::memcpy((void *)local, (const void *)data, sizeof(T) * N);
#else
    for (unsigned i = 0; i < N; i++)
        local[i] = data[i];
#endif
    while (s.countdown < 0) {
        const int64_t pos = n + s.countdown;
        const int bit = (int)(pos % T::width);
        for (int b = bit, end = burst_end(bit, T::width); b < end; b++) {
            s.injected++;
            flip_bit(local[pos / T::width], b);
        }
        s.countdown += 1 + draw_gap(s);
    }
    return local;
}

// ---- native-integer model of ap_fixed words (fast csim path) -----------------------------
// A fixed-point word is kept as its raw two's-complement integer (int64_t, sign-extended),
// scaled by 2^-F (F = fractional bits). Used only when every type involved is an
// ap_[u]fixed / ap_[u]int of at most 62 bits and the accumulator truncates (AP_TRN) and
// wraps (AP_WRAP), which are the semantics it reproduces exactly.
// One definition of the traits; each ap_ type below only says what it is.
template <bool OK, int W, int I, bool S_, ap_q_mode Q_, ap_o_mode O_, int N_> struct fixed_traits_of {
    static const bool ok = OK && W <= 62;
    static const bool trn_wrap = (Q_ == AP_TRN) && (O_ == AP_WRAP) && (N_ == 0);
    static const int F = W - I;
    static const bool S = S_;
    static const ap_q_mode Q = Q_;
    static const ap_o_mode O = O_;
    static const int N = N_;
};
template <class T> struct fixed_traits : fixed_traits_of<false, 0, 0, false, AP_TRN, AP_WRAP, 0> {};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct fixed_traits<ap_fixed<W, I, Q, O, N>> : fixed_traits_of<true, W, I, true, Q, O, N> {};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct fixed_traits<ap_ufixed<W, I, Q, O, N>> : fixed_traits_of<true, W, I, false, Q, O, N> {};
template <int W> struct fixed_traits<ap_int<W>> : fixed_traits_of<true, W, W, true, AP_TRN, AP_WRAP, 0> {};
template <int W> struct fixed_traits<ap_uint<W>> : fixed_traits_of<true, W, W, false, AP_TRN, AP_WRAP, 0> {};

// Keep the low W bits of v, sign-extended (signed) or zero-extended (unsigned): AP_WRAP.
template <int W, bool S> inline int64_t wrap_raw(int64_t v) {
    if (S)
        return (int64_t)((uint64_t)v << (64 - W)) >> (64 - W);
    return (int64_t)((uint64_t)v & (~0ull >> (64 - W)));
}

// Rescale a raw value from `from_f` to `to_f` fractional bits with truncation (AP_TRN).
inline int64_t rescale_raw(int64_t v, int from_f, int to_f) {
    const int shift = from_f - to_f;
    if (shift > 0)
        return shift >= 63 ? (v < 0 ? -1 : 0) : (v >> shift);
    if (shift < 0)
        return -shift >= 63 ? 0 : (int64_t)((uint64_t)v << -shift);
    return v;
}

// FPGAFT_AP_PRIVATE (set by fpga-ft's own csim build, which compiles against hls4ml's
// bundled open-source ap_types): read and write the <= 64-bit word that ap_private keeps
// sign- or zero-extended in VAL directly, instead of going through range().
template <class T> inline int64_t to_raw(const T &v) {
#ifdef FPGAFT_AP_PRIVATE
    return (int64_t)v.V.get_VAL();
#else
    const uint64_t bits = v.range(T::width - 1, 0).to_uint64();
    return wrap_raw<T::width, fixed_traits<T>::S>((int64_t)bits);
#endif
}

// Write raw word `raw` into v (v = from_raw<T>(raw), without a copy of the word).
template <class T> inline void set_raw(T &v, int64_t raw) {
#ifdef FPGAFT_AP_PRIVATE
    // the word ap_private keeps: sign- or zero-extended, as its clearUnusedBits() makes it
    // (which, like ap_private's copy assignment, works on a volatile VAL: slow)
    v.V.get_VAL() = (uint64_t)wrap_raw<T::width, fixed_traits<T>::S>(raw);
#else
    v.range(T::width - 1, 0) = (ap_uint<T::width>)(uint64_t)raw;
#endif
}

// One weight fault (fpgaft_faults.h's weight_fault: a flip, or stuck-at) on bit `bit` of v,
// on the raw word when T is an ap_ type the raw helpers model (the bit proxies are slow).
template <class T> inline void fault_word(T &v, int bit, std::true_type) {
    const uint64_t r = (uint64_t)to_raw(v), m = 1ull << bit;
    set_raw(v, (int64_t)(state().weight_mode == 3 ? (stuck_at_one() ? r | m : r & ~m) : r ^ m)); // set_raw wraps
}
template <class T> inline void fault_word(T &v, int bit, std::false_type) { weight_fault(v, bit); }
template <class T> inline void fault_word(T &v, int bit) {
    fault_word(v, bit, std::integral_constant<bool, fixed_traits<T>::ok>());
}

template <class T> inline T from_raw(int64_t raw) {
    T v;
    set_raw(v, raw);
    return v;
}

// Raw-word version of expose(): same bits, same counters.
template <int W, bool S> inline void expose_raw(int site, int64_t &v, int policy) {
    int bit;
    const int n = exposed_word_bits(policy, W, bit);
    SiteState &s = state().site[site];
    s.countdown -= n;
    if (__builtin_expect(s.countdown < 0, 0))
        draw_word_slow(s, n, bit, [&v](int b) { v = wrap_raw<W, S>((int64_t)((uint64_t)v ^ (1ull << b))); });
}

// ---- fixed-point conversion on raw integers (csim speed; exact for the modes below) ------
// res_T(x) for an ap_[u]fixed/ap_[u]int x of type data_T given raw: quantisation to res_T's
// fractional bits (every ap_q_mode), then its overflow mode (AP_WRAP without saturation
// bits, AP_SAT, AP_SAT_ZERO, AP_SAT_SYM), as ap_fixed's converting constructor does.
template <class T> struct is_ap_fixed { static const bool value = false; };
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct is_ap_fixed<ap_fixed<W, I, Q, O, N>> {
    static const bool value = true;
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct is_ap_fixed<ap_ufixed<W, I, Q, O, N>> {
    static const bool value = true;
};

// ReLU: non-negative values only, where ap_fixed -> ap_int (towards zero) is the floor too.
template <class data_T, class res_T> struct raw_relu_ok {
    typedef fixed_traits<res_T> R;
    static const bool value = fixed_traits<data_T>::ok && R::ok &&
                              (R::O == AP_SAT || R::O == AP_SAT_SYM || R::O == AP_SAT_ZERO || (R::O == AP_WRAP && R::N == 0)) &&
                              (fixed_traits<data_T>::F - R::F < 62) && (R::F - fixed_traits<data_T>::F < 62);
};
// Any sign: an ap_[u]fixed result, or an integer source (ap_fixed -> ap_int rounds towards
// zero through an intermediate of I bits: left to ap_fixed's own code).
template <class data_T, class res_T> struct raw_convert_ok {
    static const bool value =
        raw_relu_ok<data_T, res_T>::value && (is_ap_fixed<res_T>::value || fixed_traits<data_T>::F <= 0);
};

template <class data_T, class res_T> inline int64_t convert_raw(int64_t v) {
    typedef fixed_traits<res_T> R;
    const int shift = fixed_traits<data_T>::F - R::F;
    int64_t q;
    if (shift > 0) {
        q = v >> shift; // floor
        const int64_t rem = v & ((1ll << shift) - 1), half = 1ll << (shift - 1);
        switch (R::Q) {
        case AP_TRN: break;
        case AP_TRN_ZERO: q += (v < 0 && rem != 0); break;
        case AP_RND: q += rem >= half; break;                             // ties towards +infinity
        case AP_RND_ZERO: q += rem > half || (rem == half && v < 0); break; // ties towards zero
        case AP_RND_MIN_INF: q += rem > half; break;                      // ties towards -infinity
        case AP_RND_INF: q += rem > half || (rem == half && v >= 0); break; // ties away from zero
        case AP_RND_CONV: q += rem > half || (rem == half && (q & 1)); break; // ties to even
        default: break;
        }
    } else {
        q = -shift < 64 ? (int64_t)((uint64_t)v << -shift) : 0; // the low 64 bits (wrap)
    }
    const int64_t maxv = R::S ? (int64_t)((1ull << (res_T::width - 1)) - 1) : (int64_t)((1ull << res_T::width) - 1);
    const int64_t minv = R::S ? -maxv - 1 : 0;
    // shifted past any representable value: out of range whatever q's low bits say
    const bool huge = shift < 0 && -shift >= 63 - res_T::width && v != 0;
    if (huge || q > maxv || q < minv) {
        if (R::O == AP_WRAP)
            return wrap_raw<res_T::width, R::S>(q);
        if (R::O == AP_SAT_ZERO)
            return 0;
        if (huge ? v > 0 : q > maxv)
            return maxv;
        return R::O == AP_SAT_SYM && R::S ? -maxv : minv;
    }
    if (R::O == AP_SAT_SYM && R::S && q == minv)
        return -maxv;
    return q;
}

// max(x, 0) converted to res_T, x given raw.
template <class data_T, class res_T> inline int64_t relu_raw(int64_t v) { return convert_raw<data_T, res_T>(v > 0 ? v : 0); }

// ---- float -> ap_fixed input conversion on raw integers (csim speed) ----------------------

// 2^e as a compile-time double (exact for |e| < 1000).
constexpr double pow2(int e) { return e == 0 ? 1.0 : e > 0 ? 2.0 * pow2(e - 1) : 0.5 * pow2(e + 1); }

// float(v) for an ap_[u]fixed word v of at most 53 bits: its raw integer scaled by 2^-F is exact
// in a double, and the double -> float conversion rounds half to even, as ap_fixed's to_float
// does (which, with AP_FIXED_ENABLE_CPP_FENV, also calls fegetround on every conversion).
template <class T> struct raw_float_ok {
    static const bool value = is_ap_fixed<T>::value && fixed_traits<T>::ok && T::width <= 53;
};
template <class T> inline float raw_to_float(const T &v) {
    return (float)((double)to_raw(v) * pow2(-fixed_traits<T>::F));
}

// Whether float_to_raw below handles type T at all: an ap_[u]fixed of at most 52 bits whose
// overflow mode is not symmetric saturation or a wrap with saturated bits.
template <class T> struct float_raw_ok {
    typedef fixed_traits<T> R;
    static const bool value = is_ap_fixed<T>::value && R::ok && T::width <= 52 && R::O != AP_SAT_SYM &&
                              !(R::O == AP_WRAP && R::N != 0) && R::O != AP_WRAP_SM;
};

// The raw word of T(f) (the ap_[u]fixed constructor from a float: quantisation mode, then
// overflow mode), for the modes below and a finite f whose scaled value stays under 2^52
// (where double arithmetic is exact); false otherwise (the caller converts with T(f); an
// ap_[u]int converts as C++ integers do, towards zero, and always goes there). Branch-free
// (raw is written in every case), so that a loop over an array of inputs vectorises.
template <class T> inline bool float_to_raw(float f, int64_t &raw) {
    typedef fixed_traits<T> R;
    if (!float_raw_ok<T>::value)
        return false;
    const double v0 = (double)f * pow2(R::F);          // exact: a power-of-two scale
    const bool finite = std::fabs(v0) < 4503599627370496.0; // not NaN or infinite, |v| < 2^52
    const double v = finite ? v0 : 0.0;
    double q;
    switch (R::Q) {
    case AP_TRN: q = std::floor(v); break;
    case AP_TRN_ZERO: q = std::trunc(v); break;
    case AP_RND: q = std::floor(v + 0.5); break;          // ties towards +infinity
    case AP_RND_ZERO: q = v >= 0 ? std::ceil(v - 0.5) : std::floor(v + 0.5); break;
    case AP_RND_MIN_INF: q = std::ceil(v - 0.5); break;   // ties towards -infinity
    case AP_RND_INF: q = std::round(v); break;            // ties away from zero
    default: q = std::rint(v); break;                     // AP_RND_CONV: ties to even (default rounding
                                                          // mode; rint, unlike nearbyint, needs no
                                                          // floating-point environment call)
    }
    const int64_t lo = R::S ? -(int64_t)(1ull << (T::width - 1)) : 0;
    const int64_t hi = R::S ? (int64_t)((1ull << (T::width - 1)) - 1) : (int64_t)((1ull << T::width) - 1);
    const int64_t r = (int64_t)q;
    const bool in_range = r >= lo && r <= hi;
    if (R::O == AP_WRAP) {
        raw = wrap_raw<T::width, R::S>(r);
        return finite;
    }
    if (R::O == AP_SAT_ZERO) {
        raw = in_range ? r : 0;
        return finite;
    }
    if (R::O == AP_SAT) {
        raw = r < lo ? lo : r > hi ? hi : r;
        return finite;
    }
    raw = r;
    return finite && in_range;
}

// The terms one neuron's hardware has (structure.NeuronStructure.terms): the inputs whose
// pristine weight is non-zero, and whether the bias is non-zero in accum_t.
struct NeuronTerms {
    unsigned n;             // products with hardware
    const unsigned *idx;    // their input indices, ascending (idx[t] == t when n == n_in)
    const int64_t *w;       // their raw weight words (this replica, now), in the same order
    const int32_t *row32;   // [n_in]: replica 0's weights in 32-bit words, 0 where the design has no
                            // product (weight_t of <= 32 bits), else null: the sum of terms [a, b)
                            // is that of inputs [idx[a], idx[b - 1]] over this row
    const uint8_t *present; // [n_in]: 1 where the pristine weight is non-zero
    bool bias_present;
    bool extra; // a weight that is zero in the design is non-zero now (weight fault)
};

template <class CONFIG_T> struct LayerMemory;
template <class CONFIG_T> inline LayerMemory<CONFIG_T> &layer_memory();

// ---- per-layer weight memory -------------------------------------------------------------
// Weights and biases of one layer: replica 0 is the design's own array (`w<index>` in the
// generated C++); replicas 1 and 2 exist for critical neurons only (their full-TMR dot
// products read their own copies). Weight faults are drawn once per inference per layer.
template <class CONFIG_T> struct LayerMemory {
    typedef typename CONFIG_T::weight_t weight_t;
    typedef typename CONFIG_T::bias_t bias_t;
    static const unsigned NI = CONFIG_T::n_in;
    static const unsigned NO = CONFIG_T::n_out;
    static const unsigned NW = NI * NO;

    bool ready = false;
    uint64_t inference = ~0ull;
    uint64_t epoch = 0;
    std::vector<weight_t> pristine_w, rep_w[2];
    std::vector<bias_t> pristine_b, rep_b[2];
    std::vector<unsigned> critical;
    // raw-integer mirrors of the six arrays (same ids as `dirty`), for the fast csim path
    std::vector<int64_t> raw[6];
    // (array id, index) of words flipped since the last restore; array id 0 = weights,
    // 1 = biases of replica 0, 2/3 = weights/biases of replica 1, 4/5 = of replica 2.
    std::vector<std::pair<int, unsigned>> dirty;
    // the structure: per neuron, inputs with a non-zero pristine weight (CSR) and bias flags
    std::vector<unsigned> nz_idx, nz_start;
    std::vector<uint8_t> present_t, bias_on;
    bool zero_flipped[3] = {false, false, false}; // per replica weight array
    // Neuron-major copies of the raw weights that have hardware (per replica: raw[0], raw[2],
    // raw[4] gathered in nz_idx order; nz_pos[i] = position of weight word i there, or -1),
    // so a neuron's terms are contiguous; and raw[0] in 32-bit words when weight_t fits.
    std::vector<int64_t> compact[3];
    std::vector<int> nz_pos;
    std::vector<int32_t> raw32, rows32; // rows32: neuron-major, NO x NI (NeuronTerms::row32)
    // raw[0] as 16-bit pairs for the clean pass's multiply-add of two inputs at once (W16):
    // pairs16[(i / 2) * NO16 * 2 + 2 * j + i % 2] = weight (i, j); outputs padded to NO16
    // (a multiple of 16) and inputs to an even count with zeros.
    static const bool W16 = fixed_traits<weight_t>::ok && weight_t::width <= (fixed_traits<weight_t>::S ? 16 : 15);
    static const unsigned NO16 = (NO + 15) / 16 * 16;
    std::vector<int16_t> pairs16;
    static const bool W32 = fixed_traits<weight_t>::ok && weight_t::width <= 32;
    // The weight memory (fpga_ft.core.layers.LayerInfo.stored_weights_per_neuron): every word
    // of the n_in x n_out array; or, for a depthwise convolution the intake rewrote with a
    // block-diagonal kernel (DM = fpgaft_depthwise_multiplier > 0 output channels per input
    // channel, CH = NO / DM channels, NI / CH taps), only its depthwise words, in the depthwise
    // kernel's own order (tap, channel, multiplier): the zeros off the block diagonal are not
    // stored, so no fault lands there.
    static const unsigned DM = CONFIG_T::fpgaft_depthwise_multiplier;
    static const unsigned DM1 = DM ? DM : 1;
    static const unsigned CH = DM ? NO / DM1 : 1;
    static const unsigned COL = DM ? NI / CH : NI; // stored words of one neuron's column
    static const unsigned NWS = COL * NO;          // stored weight words
    // array index (i * NO + j) of stored weight word u
    static unsigned stored_word(unsigned u) {
        if (!DM)
            return u;
        const unsigned q = u % DM1, c = (u / DM1) % CH, t = u / (DM1 * CH);
        return (t * CH + c) * NO + c * DM1 + q;
    }
    // array index of word u of neuron j's stored column
    static unsigned column_word(unsigned u, unsigned j) { return DM ? (u * CH + j / DM1) * NO + j : u * NO + j; }

    NeuronTerms terms(unsigned j, int rep) const {
        NeuronTerms t;
        t.n = nz_start[j + 1] - nz_start[j];
        t.idx = nz_idx.data() + nz_start[j];
        t.w = compact[rep].data() + nz_start[j];
        t.row32 = W32 && rep == 0 ? rows32.data() + (size_t)j * NI : nullptr;
        t.present = present_t.data() + (size_t)j * NI;
        t.bias_present = bias_on[j] != 0;
        t.extra = zero_flipped[rep];
        return t;
    }

    void build_terms() {
        present_t.assign((size_t)NI * NO, 0);
        bias_on.assign(NO, 0);
        nz_start.assign(NO + 1, 0);
        nz_idx.clear();
        for (unsigned j = 0; j < NO; j++) {
            nz_start[j] = (unsigned)nz_idx.size();
            // a time-shared layer (fpga_ft/core/structure.py) computes every product on its shared
            // MAC units (weights from a ROM, zeros included) into an accumulator that starts
            // at the bias: every product and every add has hardware
            for (unsigned i = 0; i < NI; i++) {
                if (CONFIG_T::fpgaft_time_shared || pristine_w[i * NO + j] != 0) {
                    present_t[(size_t)j * NI + i] = 1;
                    nz_idx.push_back(i);
                }
            }
            bias_on[j] = CONFIG_T::fpgaft_time_shared || ((typename CONFIG_T::accum_t)pristine_b[j]) != 0;
        }
        nz_start[NO] = (unsigned)nz_idx.size();
        nz_pos.assign(NW, -1);
        for (unsigned j = 0; j < NO; j++)
            for (unsigned t = nz_start[j]; t < nz_start[j + 1]; t++)
                nz_pos[nz_idx[t] * NO + j] = (int)t;
    }

    // A flip of weight word `idx` of replica array `rep`: note when the design has no
    // product for it (pristine weight zero).
    void note_weight_flip(int rep, unsigned idx) {
        if (pristine_w[idx] == 0)
            zero_flipped[rep] = true;
    }

    void restore_all(weight_t *w, bias_t *b) {
        for (unsigned i = 0; i < NW; i++)
            w[i] = pristine_w[i];
        for (unsigned i = 0; i < NO; i++)
            b[i] = pristine_b[i];
        for (int r = 0; r < 2; r++) {
            rep_w[r] = pristine_w;
            rep_b[r] = pristine_b;
        }
        dirty.clear();
        zero_flipped[0] = zero_flipped[1] = zero_flipped[2] = false;
        if (fixed_traits<weight_t>::ok && fixed_traits<bias_t>::ok) {
            for (int a = 0; a < 6; a++)
                raw[a].resize(a % 2 == 0 ? NW : NO);
            for (unsigned i = 0; i < NW; i++)
                raw[0][i] = raw[2][i] = raw[4][i] = to_raw(pristine_w[i]);
            for (unsigned i = 0; i < NO; i++)
                raw[1][i] = raw[3][i] = raw[5][i] = to_raw(pristine_b[i]);
            for (int r = 0; r < 3; r++)
                compact[r].assign(nz_idx.size(), 0);
            if (W32) {
                raw32.assign(NW, 0);
                rows32.assign((size_t)NO * NI, 0);
            }
            if (W16)
                pairs16.assign((size_t)(NI + 1) / 2 * NO16 * 2, 0);
            for (int r = 0; r < 3; r++)
                for (unsigned i = 0; i < NW; i++)
                    mirror_weight(2 * r, i);
        }
    }

    // Copy raw weight word i of weight array a (0, 2, 4: replica a / 2) into the copies the
    // engine reads: compact[a / 2] (words with hardware), and for replica 0 raw32, rows32
    // (words with hardware) and pairs16.
    void mirror_weight(int a, unsigned i) {
        if (nz_pos[i] >= 0)
            compact[a / 2][nz_pos[i]] = raw[a][i];
        if (a != 0)
            return;
        if (W32) {
            raw32[i] = (int32_t)raw[0][i];
            if (nz_pos[i] >= 0)
                rows32[(size_t)(i % NO) * NI + i / NO] = (int32_t)raw[0][i];
        }
        if (W16)
            pairs16[(size_t)(i / NO / 2) * NO16 * 2 + 2 * (i % NO) + (i / NO) % 2] = (int16_t)raw[0][i];
    }

    // The typed word behind (array id, index), for the raw mirror.
    void refresh_raw(weight_t *w, bias_t *b, int a, unsigned i) {
        if (!(fixed_traits<weight_t>::ok && fixed_traits<bias_t>::ok))
            return;
        if (a == 0)
            raw[0][i] = to_raw(w[i]);
        else if (a == 1)
            raw[1][i] = to_raw(b[i]);
        else if (a % 2 == 0)
            raw[a][i] = to_raw(rep_w[(a - 2) / 2][i]);
        else
            raw[a][i] = to_raw(rep_b[(a - 2) / 2][i]);
        if (a % 2 == 0)
            mirror_weight(a, i);
    }

    void restore_dirty(weight_t *w, bias_t *b) {
        for (size_t d = 0; d < dirty.size(); d++) {
            const int a = dirty[d].first;
            const unsigned i = dirty[d].second;
            if (a == 0)
                w[i] = pristine_w[i];
            else if (a == 1)
                b[i] = pristine_b[i];
            else if (a % 2 == 0)
                rep_w[(a - 2) / 2][i] = pristine_w[i];
            else
                rep_b[(a - 2) / 2][i] = pristine_b[i];
            refresh_raw(w, b, a, i);
        }
        dirty.clear();
        zero_flipped[0] = zero_flipped[1] = zero_flipped[2] = false;
    }

    // One fault event at exposed weight-memory bit `pos`: a flip (stuck-at: a forced value)
    // of a burst of adjacent bits of that word (burst_end). Returns the bits it faulted.
    int flip(weight_t *w, bias_t *b, int64_t pos) {
        const int WW = weight_t::width, WB = bias_t::width;
        const int64_t w_bits = (int64_t)NWS * WW, b_bits = (int64_t)NO * WB;
        if (pos < w_bits) {
            const unsigned idx = stored_word((unsigned)(pos / WW));
            const int bit = (int)(pos % WW), end = burst_end(bit, WW);
            for (int k = bit; k < end; k++)
                fault_word(w[idx], k);
            dirty.push_back(std::make_pair(0, idx));
            note_weight_flip(0, idx);
            refresh_raw(w, b, 0, idx);
            return end - bit;
        }
        pos -= w_bits;
        if (pos < b_bits) {
            const unsigned idx = (unsigned)(pos / WB);
            const int bit = (int)(pos % WB), end = burst_end(bit, WB);
            for (int k = bit; k < end; k++)
                fault_word(b[idx], k);
            dirty.push_back(std::make_pair(1, idx));
            refresh_raw(w, b, 1, idx);
            return end - bit;
        }
        pos -= b_bits;
        // replica copies: for r in 1, 2: for each critical neuron c: its COL stored weights, 1 bias
        const int64_t per_neuron = (int64_t)COL * WW + WB;
        const int64_t per_replica = per_neuron * (int64_t)critical.size();
        const int r = (int)(pos / per_replica);
        pos -= r * per_replica;
        const unsigned c = critical[pos / per_neuron];
        pos %= per_neuron;
        if (pos < (int64_t)COL * WW) {
            const unsigned idx = column_word((unsigned)(pos / WW), c);
            const int bit = (int)(pos % WW), end = burst_end(bit, WW);
            for (int k = bit; k < end; k++)
                fault_word(rep_w[r][idx], k);
            dirty.push_back(std::make_pair(2 + 2 * r, idx));
            note_weight_flip(1 + r, idx);
            refresh_raw(w, b, 2 + 2 * r, idx);
            return end - bit;
        }
        const int bit = (int)(pos - (int64_t)COL * WW), end = burst_end(bit, WB);
        for (int k = bit; k < end; k++)
            fault_word(rep_b[r][c], k);
        dirty.push_back(std::make_pair(3 + 2 * r, c));
        refresh_raw(w, b, 3 + 2 * r, c);
        return end - bit;
    }

    // Draw the weight faults of one exposure of this layer's whole memory (n bits).
    void draw_faults(weight_t *w, bias_t *b) {
        SiteState &s = state().site[WEIGHTS];
        const int64_t n = (int64_t)NWS * weight_t::width + (int64_t)NO * bias_t::width +
                          2 * (int64_t)critical.size() * ((int64_t)COL * weight_t::width + bias_t::width);
        s.countdown -= n;
        while (s.countdown < 0) {
            s.injected += flip(w, b, n + s.countdown);
            s.countdown += 1 + draw_gap(s);
        }
    }

    // Test-only (weight_flipped_bits): bits of the memory that differ from pristine.
    weight_t *w_ptr = nullptr;
    bias_t *b_ptr = nullptr;
    template <class T> static int64_t differing(const T &a, const T &p) {
        ap_uint<T::width> d = a.range(T::width - 1, 0) ^ p.range(T::width - 1, 0);
        int64_t c = 0;
        for (int i = 0; i < T::width; i++)
            c += d[i] ? 1 : 0;
        return c;
    }
    static void count_flipped(int64_t &flipped, int64_t &total) {
        LayerMemory &m = layer_memory<CONFIG_T>();
        for (unsigned i = 0; i < NW; i++)
            flipped += differing(m.w_ptr[i], m.pristine_w[i]);
        for (unsigned i = 0; i < NO; i++)
            flipped += differing(m.b_ptr[i], m.pristine_b[i]);
        total += (int64_t)NWS * weight_t::width + (int64_t)NO * bias_t::width;
    }

    // Once per inference, at the layer's first call: undo last inference's transient flips
    // (or everything after a scrub), then draw this inference's weight flips; latched and
    // stuck-at modes draw only after a scrub (a new interval: a new device) and hold them.
    void enter(weight_t *w, bias_t *b) {
        State &st = state();
        if (!ready) {
            pristine_w.assign(w, w + NW);
            pristine_b.assign(b, b + NO);
            for (unsigned j = 0; j < NO; j++)
                if (CONFIG_T::critical[j])
                    critical.push_back(j);
            build_terms();
            restore_all(w, b);
            epoch = st.scrub_epoch - 1; // latched: the first interval draws its upsets below
            w_ptr = w;
            b_ptr = b;
            flip_counters().push_back(&LayerMemory::count_flipped);
            ready = true;
        }
        if (inference == st.inference)
            return;
        inference = st.inference;
        bool new_interval = false;
        if (epoch != st.scrub_epoch) {
            // every fault since the last restore is in `dirty` (flip records each word it
            // touches): undoing those is a full scrub, unless rewriting everything is cheaper
            if (dirty.size() < NW / 4)
                restore_dirty(w, b);
            else
                restore_all(w, b);
            epoch = st.scrub_epoch;
            new_interval = true;
        } else if (!st.persistent && !dirty.empty()) {
            restore_dirty(w, b);
        }
        if (st.scope_active)
            return;
        if (!weights_held() || new_interval)
            draw_faults(w, b);
    }
};

template <class CONFIG_T> inline LayerMemory<CONFIG_T> &layer_memory() {
    static LayerMemory<CONFIG_T> m;
    return m;
}

} // namespace rt
} // namespace fpgaft

#endif
