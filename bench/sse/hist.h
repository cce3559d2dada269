/*
 * hist: a latency histogram in microseconds. 1 µs buckets below
 * HIST_FINE_US, 1 ms buckets from there to HIST_COARSE_MS, one overflow
 * bucket above; the exact maximum is kept too.
 */
#ifndef KHEISH_BENCH_SSE_HIST_H
#define KHEISH_BENCH_SSE_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_FINE_US   100000 /* 1 µs resolution up to 100 ms */
#define HIST_COARSE_MS 60000  /* 1 ms resolution up to 60 s */

struct hist {
    uint64_t n, over;
    int64_t max_us;
    uint64_t fine[HIST_FINE_US];
    uint64_t coarse[HIST_COARSE_MS];
};

/* A zeroed histogram (about 1.3 MB), or NULL when out of memory. */
struct hist *hist_new(void);
void hist_free(struct hist *h);

/* Records one value; negative values count as 0. */
void hist_add(struct hist *h, int64_t us);

/* The value at or below which a fraction q of the values fall, as the
 * lower end of its bucket in µs; the maximum when it is in the overflow
 * bucket, -1 when the histogram is empty. */
int64_t hist_quantile(const struct hist *h, double q);

/* Writes "\"NAME_p50_us\":..,\"NAME_p99_us\":..,\"NAME_max_us\":..,\"NAME_n\":.."
 * (a JSON fragment, no braces); values of an empty histogram are null. */
void hist_print_json(const struct hist *h, const char *name, FILE *f);

#endif
