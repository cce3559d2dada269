/* check: the assertion macros of the unit tests. A failed CHECK reports file
 * and line and makes the program exit 1 at the end. */
#ifndef KHEISH_TEST_CHECK_H
#define KHEISH_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        check_count++;                                                                             \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_)) {                                \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", __FILE__,  \
                    __LINE__, #a, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
        }                                                                                          \
    } while (0)

static inline int
check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* The owner connection string of a scratch database, from the test harness. */
static inline const char *
check_database_url(void)
{
    const char *url = getenv("KHEISH_TEST_DATABASE_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "KHEISH_TEST_DATABASE_URL is not set (run through tests/run.sh)\n");
        exit(1);
    }
    return url;
}

#endif
