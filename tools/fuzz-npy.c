/* fuzz-npy.c -- fuzz target for the .npy header parser (cv_npy_parse).
 *
 * With libFuzzer:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -Isrc -I. \
 *         tools/fuzz-npy.c src/dataset/cv_npy.c src/runtime/cv_status.c src/runtime/cv_out.c -lm -o fuzz-npy
 *   ./fuzz-npy data/fuzz-npy
 * (run from a configured build tree so that config.h is found with -I.).
 *
 * Without libFuzzer (CV_FUZZ_STANDALONE, as `make check` builds it): a main
 * that runs the target over each file named on the command line, then over
 * deterministic mutations of it (every truncation, byte flips, inserted
 * and deleted bytes), checking the parser's invariants: it returns CV_OK or
 * CV_ERR_FORMAT, a parsed header is self-consistent, and (under ASan or
 * valgrind) it never touches memory past the input. */
#include "dataset/cv_npy.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cv_fuzz_bad;

/* Under libFuzzer a violation must crash to be reported. */
static void fuzz_violation(void) {
    cv_fuzz_bad++;
#ifndef CV_FUZZ_STANDALONE
    abort();
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* copy into an exactly sized buffer so that ASan sees any overread */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    cv_npy_header h;
    size_t need = 0;
    cv_status st = cv_npy_parse(buf, size, &h, &need);
    if (st == CV_OK) {
        int64_t n = 1;
        for (int d = 0; d < h.ndim; d++) n *= h.shape[d];
        if (h.ndim < 0 || h.ndim > CV_NPY_MAX_DIM || n != h.n_elem || h.data_offset > (int64_t)size || h.data_offset < 10 ||
            strlen(h.descr) >= sizeof h.descr)
            fuzz_violation();
    } else if (st != CV_ERR_FORMAT || need > CV_NPY_MAX_HEADER + 12) {
        fuzz_violation();
    }
    free(buf);
    return 0;
}

#ifdef CV_FUZZ_STANDALONE
#include <stdio.h>

static uint64_t fz_state = 0x9e3779b97f4a7c15ULL;
static uint64_t fz_next(void) {
    fz_state ^= fz_state << 13;
    fz_state ^= fz_state >> 7;
    fz_state ^= fz_state << 17;
    return fz_state;
}

int main(int argc, char **argv) {
    long runs = 0;
    for (int a = 1; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) { fprintf(stderr, "fuzz-npy: %s: cannot open\n", argv[a]); return 2; }
        static uint8_t in[1 << 16], mut[(1 << 16) + 64];
        size_t n = fread(in, 1, sizeof in, f);
        fclose(f);
        LLVMFuzzerTestOneInput(in, n);
        runs++;
        for (size_t k = 0; k < n; k++, runs++) LLVMFuzzerTestOneInput(in, k);   /* every truncation */
        for (int r = 0; r < 3000; r++, runs++) {
            size_t m = n;
            memcpy(mut, in, n);
            int edits = 1 + (int)(fz_next() % 4);
            for (int e = 0; e < edits && m > 0; e++) {
                size_t pos = (size_t)(fz_next() % m);
                switch (fz_next() % 5) {
                case 0: mut[pos] ^= (uint8_t)(1u << (fz_next() % 8)); break;            /* bit flip */
                case 1: mut[pos] = (uint8_t)fz_next(); break;                           /* random byte */
                case 2: {                                                                /* interesting byte */
                    static const char tok[] = "(),:'\"{}0123456789 \n\\TF-L";
                    mut[pos] = (uint8_t)tok[fz_next() % (sizeof tok - 1)];
                    break;
                }
                case 3: if (m < sizeof mut) { memmove(mut + pos + 1, mut + pos, m - pos); mut[pos] = (uint8_t)fz_next(); m++; } break;
                case 4: memmove(mut + pos, mut + pos + 1, m - pos - 1); m--; break;
                }
            }
            LLVMFuzzerTestOneInput(mut, m);
        }
    }
    printf("fuzz-npy: %ld inputs, %d invariant violations\n", runs, cv_fuzz_bad);
    return cv_fuzz_bad ? 1 : 0;
}
#endif
