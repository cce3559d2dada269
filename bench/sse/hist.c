#include "hist.h"

#include <stdlib.h>

struct hist *
hist_new(void)
{
    return calloc(1, sizeof(struct hist));
}

void
hist_free(struct hist *h)
{
    free(h);
}

void
hist_add(struct hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    if (us < HIST_FINE_US)
        h->fine[us]++;
    else if (us / 1000 < HIST_COARSE_MS)
        h->coarse[us / 1000]++;
    else
        h->over++;
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
}

int64_t
hist_quantile(const struct hist *h, double q)
{
    if (h->n == 0)
        return -1;
    /* The rank of the value wanted, 1-based: at least the first. */
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.5), seen = 0;
    if (rank < 1)
        rank = 1;
    for (int64_t i = 0; i < HIST_FINE_US; i++)
        if ((seen += h->fine[i]) >= rank)
            return i;
    for (int64_t i = HIST_FINE_US / 1000; i < HIST_COARSE_MS; i++)
        if ((seen += h->coarse[i]) >= rank)
            return i * 1000;
    return h->max_us;
}

/* One "NAME_LABEL_us":value member and a comma; a negative value is null. */
static void
print_member(FILE *f, const char *name, const char *label, int64_t v)
{
    if (v < 0)
        fprintf(f, "\"%s_%s_us\":null,", name, label);
    else
        fprintf(f, "\"%s_%s_us\":%lld,", name, label, (long long)v);
}

void
hist_print_json(const struct hist *h, const char *name, FILE *f)
{
    print_member(f, name, "p50", hist_quantile(h, 0.50));
    print_member(f, name, "p99", hist_quantile(h, 0.99));
    print_member(f, name, "max", h->n ? h->max_us : -1);
    fprintf(f, "\"%s_n\":%llu", name, (unsigned long long)h->n);
}
