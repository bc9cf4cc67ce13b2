/* cv_rng.c -- host side of the counter-based RNG.  The arithmetic lives in
 * cl/cv_rng.clh, which is compiled here by the C compiler and prepended to
 * every OpenCL program, so host and device share one source text.
 * Invariant: every float operation is rounded to float on its own (no FP
 * contraction into fused multiply-adds, no excess precision), exactly as
 * OpenCL C evaluates it with FP_CONTRACT OFF; that is what makes host and
 * device bit-identical. */
#include "runtime/cv_rng.h"

#include <float.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "cv_rng.c needs float arithmetic evaluated in float (FLT_EVAL_METHOD 0; on i386 use -msse2 -mfpmath=sse)"
#endif
#if defined(__GNUC__) && !defined(__clang__)
/* GCC ignores the STDC pragma below and contracts a*b+c into an FMA with
 * -std=gnu* or -ffp-contract=fast; this keeps it off for this file whatever
 * CFLAGS say. */
#pragma GCC optimize("fp-contract=off")
#endif

#include "../../cl/cv_rng.clh"

void cv_philox4x32(uint32_t ctr[4], const uint32_t key[2]) {
    cv_rngc_philox(ctr, key[0], key[1]);
}

float cv_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return cv_rngc_uniform(seed, stream, index);
}

float cv_rng_uniform_word(uint32_t w) {
    return cv_rngc_u01(w);
}

float cv_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    return cv_rngc_normal(seed, stream, index);
}

float cv_rng_normal_words(uint32_t r0, uint32_t r1) {
    return cv_rngc_normal_words(r0, r1);
}
