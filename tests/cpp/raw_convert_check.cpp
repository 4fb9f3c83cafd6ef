// fpga-ft: the csim's raw-integer conversions against ap_fixed's own (tests/test_raw_convert.py).
// For many (source, result) type pairs and random source words: rt::convert_raw == res_T(x),
// rt::relu_raw == res_T(max(x, 0)), rt::set_raw/to_raw round trips, and rt::float_to_raw ==
// T(float). Prints one line per failing pair and "checked N" at the end; exit 1 on a failure.
#define FPGAFT_CSIM
#define FPGAFT_AP_PRIVATE
#include "fpgaft_runtime.h"
#include <cstdio>
#include <typeinfo>

using namespace fpgaft::rt;
static uint64_t seed_state = 12345;
static int64_t rnd() { return (int64_t)splitmix64(seed_state); }
static long failures = 0, checked = 0;

template <class S, class R> void pair_check(const char *name) {
    long bad = 0;
    for (int n = 0; n < 4000; n++) {
        S x;
        set_raw(x, rnd() >> (n % 64)); // every magnitude
        const R want = (R)x;
        if (raw_convert_ok<S, R>::value) {
            checked++;
            if (to_raw(want) != convert_raw<S, R>(to_raw(x)))
                bad++;
        }
        if (raw_relu_ok<S, R>::value) {
            checked++;
            const R want_relu = x > 0 ? (R)x : (R)0;
            if (to_raw(want_relu) != relu_raw<S, R>(to_raw(x)))
                bad++;
        }
        if (to_raw(from_raw<S>(to_raw(x))) != to_raw(x))
            bad++;
    }
    if (bad) {
        std::printf("FAIL %s -> %s: %ld mismatches\n", name, typeid(R).name(), bad);
        failures++;
    }
}

template <class T> void float_check(const char *name) {
    long bad = 0;
    for (int n = 0; n < 4000; n++) {
        const float f = (float)((double)(rnd() >> 20) * std::ldexp(1.0, -(n % 48)));
        int64_t raw;
        if (float_to_raw<T>(f, raw)) {
            checked++;
            if (raw != to_raw(T(f)))
                bad++;
        }
    }
    if (bad) {
        std::printf("FAIL float->%s: %ld mismatches\n", name, bad);
        failures++;
    }
}

// raw_to_float == float(x) (ap_fixed's to_float), and fault_word's raw flip == weight_fault's
// (the ap_uint bit proxy), on random words.
template <class T> void word_check(const char *name) {
    long bad = 0;
    for (int n = 0; n < 4000; n++) {
        T x;
        set_raw(x, rnd() >> (n % 64));
        if (raw_float_ok<T>::value) {
            checked++;
            const float a = raw_to_float(x), b = (float)x;
            if (std::memcmp(&a, &b, sizeof a) != 0)
                bad++;
        }
        T y = x, z = x;
        const int bit = n % T::width;
        fault_word(y, bit);
        weight_fault(z, bit);
        checked++;
        if (to_raw(y) != to_raw(z))
            bad++;
    }
    if (bad) {
        std::printf("FAIL words of %s: %ld mismatches\n", name, bad);
        failures++;
    }
}

typedef ap_fixed<8, 3> r0;
typedef ap_fixed<8, 3, AP_RND, AP_SAT> r1;
typedef ap_fixed<6, 1, AP_RND_CONV, AP_SAT_SYM> r2;
typedef ap_fixed<10, 4, AP_RND_ZERO, AP_SAT_ZERO> r3;
typedef ap_fixed<12, 2, AP_RND_INF, AP_WRAP> r4;
typedef ap_fixed<7, 7, AP_RND_MIN_INF, AP_SAT> r5;
typedef ap_fixed<9, 0, AP_TRN_ZERO, AP_SAT> r6;
typedef ap_fixed<16, 12, AP_RND, AP_SAT> r7;
typedef ap_fixed<20, -2, AP_TRN, AP_WRAP> r8;
typedef ap_ufixed<6, 0, AP_RND, AP_SAT> r9;
typedef ap_ufixed<8, 4, AP_TRN, AP_WRAP> r10;
typedef ap_ufixed<5, 2, AP_RND_CONV, AP_SAT_SYM> r11;
typedef ap_ufixed<16, 6, AP_TRN_ZERO, AP_SAT_ZERO> r12;
typedef ap_int<8> r13;
typedef ap_uint<4> r14;
typedef ap_fixed<40, 12> r15;

template <class S> void source_check(const char *name) {
    pair_check<S, r0>(name); pair_check<S, r1>(name); pair_check<S, r2>(name); pair_check<S, r3>(name);
    pair_check<S, r4>(name); pair_check<S, r5>(name); pair_check<S, r6>(name); pair_check<S, r7>(name);
    pair_check<S, r8>(name); pair_check<S, r9>(name); pair_check<S, r10>(name); pair_check<S, r11>(name);
    pair_check<S, r12>(name); pair_check<S, r13>(name); pair_check<S, r14>(name); pair_check<S, r15>(name);
}

int main() {
    typedef ap_fixed<18, 7> a18;
    typedef ap_fixed<24, 10> a24;
    typedef ap_ufixed<12, 3> u12;
    typedef ap_fixed<16, 16> i16f;
    typedef ap_fixed<30, 40> big;
    source_check<a18>("ap_fixed<18,7>");
    source_check<a24>("ap_fixed<24,10>");
    source_check<u12>("ap_ufixed<12,3>");
    source_check<i16f>("ap_fixed<16,16>");
    source_check<big>("ap_fixed<30,40>");
    source_check<ap_int<12>>("ap_int<12>");
    float_check<ap_fixed<8, 1>>("ap_fixed<8,1>");
    float_check<ap_fixed<16, 6, AP_RND, AP_SAT>>("ap_fixed<16,6,AP_RND,AP_SAT>");
    float_check<ap_ufixed<8, 0, AP_RND_CONV, AP_SAT>>("ap_ufixed<8,0,AP_RND_CONV,AP_SAT>");
    float_check<ap_fixed<12, 4, AP_RND_ZERO, AP_WRAP>>("ap_fixed<12,4,AP_RND_ZERO,AP_WRAP>");
    word_check<ap_fixed<16, 5>>("ap_fixed<16,5>");
    word_check<ap_ufixed<6, 0>>("ap_ufixed<6,0>");
    word_check<ap_fixed<40, 12>>("ap_fixed<40,12>");
    word_check<ap_fixed<53, -3>>("ap_fixed<53,-3>");
    word_check<ap_ufixed<53, 60>>("ap_ufixed<53,60>");
    word_check<ap_fixed<6, 1, AP_RND, AP_SAT>>("ap_fixed<6,1,AP_RND,AP_SAT>");
    word_check<ap_int<7>>("ap_int<7>");
    std::printf("checked %ld\n", checked);
    return failures ? 1 : 0;
}
