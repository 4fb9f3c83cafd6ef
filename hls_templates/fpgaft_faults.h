// fpga-ft fault-injection runtime, part 2: weight fault modes and multi-bit upsets (C
// simulation only; included by fpgaft_runtime.h after its State, generator and configure()).
//
//   weight modes (State::weight_mode, fpga_ft.core.faults.WEIGHT_MODES): 0 transient, 1
//   accumulate, 2 latched, 3 stuck-at; the held modes (2, 3) draw the weight faults once per
//   scrub interval (LayerMemory::enter) at the weights' BER per bit per interval.
//   multi-bit upsets: a flip event flips burst_size() adjacent bits of its word (clipped at
//   the MSB); the draw helpers of fpgaft_runtime.h loop over [bit, burst_end(bit, width)).
#ifndef FPGAFT_FAULTS_H_
#define FPGAFT_FAULTS_H_

#ifndef FPGAFT_RUNTIME_H_
#error "fpgaft_faults.h is part of fpgaft_runtime.h: include that"
#endif

// (included inside namespace fpgaft::rt)
// ---- weight fault modes and multi-bit upsets (issue 15) ----------------------------------
// configure() with a weight mode (0..3, see State::weight_mode) and a burst-size table:
// mbu[s - 1] = P(a flip event flips s adjacent bits), s = 1..n_mbu (n_mbu <= MAX_BURST; the
// rest of the probability, if any, goes to size 1).
inline void configure_faults(const double *bers, int weight_mode, uint64_t seed_value, int64_t scrub_interval,
                             const double *mbu, int n_mbu) {
    configure(bers, weight_mode != 0, seed_value, scrub_interval);
    State &st = state();
    st.weight_mode = weight_mode;
    st.n_mbu = n_mbu > MAX_BURST ? MAX_BURST : (n_mbu < 0 ? 0 : n_mbu);
    double total = 0.0;
    st.mbu_cum[0] = 0.0;
    for (int i = 0; i < st.n_mbu; i++) {
        total += mbu[i];
        st.mbu_cum[i + 1] = total;
    }
    if (st.n_mbu > 0 && total < 1.0) // the missing probability is size 1
        for (int i = 1; i <= st.n_mbu; i++)
            st.mbu_cum[i] += 1.0 - total;
}

// Size of the next flip event's burst (1 without an MBU table).
inline int burst_size() {
    const State &st = state();
    if (st.n_mbu == 0)
        return 1;
    const double u = uniform01();
    for (int s = 1; s <= st.n_mbu; s++)
        if (u <= st.mbu_cum[s])
            return s;
    return st.n_mbu;
}

// Bits a burst starting at `bit` of a `width`-bit word flips: [bit, end) (clipped at the MSB).
inline int burst_end(int bit, int width) {
    const int end = bit + burst_size();
    return end < width ? end : width;
}

// Weight upsets are drawn once per scrub interval (latched, stuck-at), not per inference.
inline bool weights_held() { return state().weight_mode >= 2; }

// The value a stuck-at fault forces its bit to: drawn per fault, 0 or 1 equally likely.
inline bool stuck_at_one() { return (next_u64() >> 63) != 0; }

// Apply one weight fault to bit `bit` of v: a flip, or in stuck-at mode the bit forced to
// stuck_at_one() (rt::fault_word does the same on raw words).
template <class T> inline void weight_fault(T &v, int bit) {
    if (state().weight_mode == 3) {
        ap_uint<T::width> r = v.range(T::width - 1, 0);
        r[bit] = stuck_at_one();
        v.range(T::width - 1, 0) = r;
        return;
    }
    ap_uint<T::width> r = v.range(T::width - 1, 0);
    r[bit] = !r[bit];
    v.range(T::width - 1, 0) = r;
}

// Test-only: weight bits that differ from their pristine value, summed over every layer
// memory entered so far (flipped, total): each LayerMemory registers its counter once.
typedef void (*FlipCounter)(int64_t &flipped, int64_t &total);
inline std::vector<FlipCounter> &flip_counters() {
    static std::vector<FlipCounter> counters;
    return counters;
}
inline void weight_flipped_bits(int64_t &flipped, int64_t &total) {
    flipped = total = 0;
    for (size_t i = 0; i < flip_counters().size(); i++)
        flip_counters()[i](flipped, total);
}

#endif
