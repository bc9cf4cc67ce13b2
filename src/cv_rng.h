/* cv_rng.h -- counter-based RNG (Philox4x32-10), bit-identical with
 * cl/cv_rng.clh: the same (seed, stream, index) gives the same float on
 * the host and on every OpenCL device.  The normal deviate uses only
 * IEEE-exact operations (+, -, *, integer and bit operations, FP
 * contraction off), so no libm or device math-library differences enter. */
#ifndef CV_RNG_H
#define CV_RNG_H

#include <stdint.h>

void  cv_philox4x32(uint32_t ctr[4], const uint32_t key[2]);  /* in place, 10 rounds */
float cv_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);  /* (0, 1) */
float cv_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);   /* N(0, 1) */

#endif
