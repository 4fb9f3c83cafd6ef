// fpga-ft: the csim's fault-gap sampler (hls_templates/fpgaft_runtime.h: the ziggurat
// standard_exponential and draw_gap) against the exact distributions (tests/test_raw_convert.py).
// Prints "chi2 X", then for each BER "gap p mean m theory t z z"; a fixed seed, so the figures
// are deterministic.
#define FPGAFT_CSIM
#include "fpgaft_runtime.h"
#include <cstdio>

using namespace fpgaft::rt;

int main() {
    build_exp_ziggurat();
    seed(20261130);
    // 64 equiprobable bins of Exp(1): [q_i, q_{i+1}) with q_i = -log(1 - i/64)
    const int B = 64;
    const long N = 8000000;
    std::vector<long> count(B, 0);
    for (long n = 0; n < N; n++) {
        const double e = standard_exponential();
        int b = (int)(B * (1.0 - std::exp(-e)));
        count[b < B ? b : B - 1]++;
    }
    double chi2 = 0.0;
    for (int b = 0; b < B; b++) {
        const double want = (double)N / B;
        chi2 += (count[b] - want) * (count[b] - want) / want;
    }
    std::printf("chi2 %.2f\n", chi2);
    // Geometric(p) gaps: mean (1 - p) / p, z-score of the sample mean
    const double bers[3] = {1e-1, 1e-3, 1e-5};
    for (int i = 0; i < 3; i++) {
        SiteState s = {bers[i], -1.0 / std::log1p(-bers[i]), 0, 0, 0};
        const long M = 2000000;
        double sum = 0.0;
        for (long n = 0; n < M; n++)
            sum += (double)draw_gap(s);
        const double p = bers[i], mean = (1 - p) / p, sd = std::sqrt(1 - p) / p;
        std::printf("gap %g mean %.3f theory %.3f z %.3f\n", p, sum / M, mean, (sum / M - mean) / (sd / std::sqrt((double)M)));
    }
    return 0;
}
