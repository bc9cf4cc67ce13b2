/* cv_rng.h -- counter-based RNG (Philox4x32-10), bit-identical with
 * cl/cv_rng.clh: the same (seed, stream, index) gives the same float on
 * the host and on every OpenCL device.  The normal deviate uses only
 * IEEE-exact operations (+, -, *, integer and bit operations, FP
 * contraction off), so no libm or device math-library differences enter.
 *
 * Counter = (index lo, index hi, stream lo, stream hi), key = (seed lo,
 * seed hi).  Every function here is pure and thread-safe.  On the device
 * the same calls exist with ulong arguments: cv_rng_normal(seed, stream,
 * index) and cv_rng_uniform(seed, stream, index) in any kernel (the header
 * is prepended to every program). */
#ifndef CV_RNG_H
#define CV_RNG_H

#include <stdint.h>

void  cv_philox4x32(uint32_t ctr[4], const uint32_t key[2]);  /* in place, 10 rounds */
/* (0, 1): odd multiples of 2^-24 (24-bit fixed point from the top 23 bits of
 * Philox word 2), exact in float, never 0 or 1. */
float cv_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* The uniform of one raw word w: (2 (w >> 9) + 1) 2^-24. */
float cv_rng_uniform_word(uint32_t w);
/* N(0, 1) by Box-Muller from Philox words 0 (radius) and 1 (angle);
 * |z| <= 6.8; about 1e-6 relative to the exact transform of those bits. */
float cv_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);
/* The Box-Muller transform alone, from two raw 32-bit words: radius
 * sqrt(-2 ln((2 r0 + 1) 2^-33)), angle 2 pi r1 / 2^32 (24 bits within the
 * octant); returns radius * cos(angle).  For tests of edge words. */
float cv_rng_normal_words(uint32_t r0, uint32_t r1);

/* SplitMix64 (Steele, Lea, Flood 2014), the one host-side hash of the
 * project for what needs no device twin: the dataset's counter hash, the
 * probe's bootstrap and the t-SNE start.  cv_splitmix64_mix is the
 * finalizer alone; cv_splitmix64(x) = mix(x + golden gamma), one step of
 * the generator from state x. */
static inline uint64_t cv_splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline uint64_t cv_splitmix64(uint64_t x) { return cv_splitmix64_mix(x + 0x9E3779B97F4A7C15ULL); }

#endif
