/*
 * The cost of one token check as a worker pays it per request: stat of both
 * token files, parsing the header, SHA-256 of the token, two constant-time
 * compares (common/auth.c, auth_check). Prints the median ns per check over
 * ROUNDS rounds of N checks, for an accepted admin token and a rejected one.
 *
 *   bench-auth-check [N] [ROUNDS]
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth.h"
#include "util.h"

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median_ns(struct auth *a, const char *header, enum auth_result want, int n, int rounds)
{
    double ns[64];
    for (int r = 0; r < rounds; r++) {
        int64_t t0 = util_monotonic_us();
        for (int i = 0; i < n; i++)
            if (auth_check(a, header, AUTH_ACCESS_ADMIN, NULL) != want) {
                fprintf(stderr, "bench-auth-check: unexpected result\n");
                exit(1);
            }
        ns[r] = (double)(util_monotonic_us() - t0) * 1000.0 / n;
    }
    qsort(ns, (size_t)rounds, sizeof ns[0], cmp);
    return ns[rounds / 2];
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    char dir[] = "/tmp/kheish-bench-auth.XXXXXX", admin[64], ro[64], err[256];
    if (n < 1 || rounds < 1 || rounds > 64 || sodium_init() < 0 || mkdtemp(dir) == NULL)
        return 2;
    snprintf(admin, sizeof admin, "%s/admin", dir);
    snprintf(ro, sizeof ro, "%s/ro", dir);
    FILE *f = fopen(admin, "w");
    fputs("V8kq2bX0tnJ3sKq1w9yL8mQe5rT7uZ4aC6dF1gH3jK0\n", f);
    fclose(f);
    f = fopen(ro, "w");
    fputs("rD5eW2qA9sZ7xC3vB1nM6kJ4hG8fL0pO2iU5yT7rE1w\n", f);
    fclose(f);
    struct auth a;
    struct auth_settings s = {"bearer", {NULL, NULL}, {admin, ro}, "127.0.0.1:4000"};
    if (auth_init(&a, &s, err, sizeof err) != 0) {
        fprintf(stderr, "bench-auth-check: %s\n", err);
        return 1;
    }
    double ok =
        median_ns(&a, "Bearer V8kq2bX0tnJ3sKq1w9yL8mQe5rT7uZ4aC6dF1gH3jK0", AUTH_OK, n, rounds);
    double bad = median_ns(&a, "Bearer not-the-token", AUTH_INVALID_TOKEN, n, rounds);
    printf("token check, admin token accepted: %.0f ns (median of %d x %d)\n", ok, rounds, n);
    printf("token check, wrong token refused:  %.0f ns\n", bad);
    unlink(admin);
    unlink(ro);
    rmdir(dir);
    return 0;
}
