/* fuzz: what every libFuzzer harness of tests/fuzz/ shares. */
#ifndef KHEISH_FUZZ_H
#define KHEISH_FUZZ_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken invariant is a finding, like a sanitizer report. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* One jansson hash seed for every run, so the same input dumps to the same
 * bytes and a crash reproduces. A harness with more to set up defines
 * FUZZ_OWN_INITIALIZE and its own LLVMFuzzerInitialize. */
#ifndef FUZZ_OWN_INITIALIZE
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    json_object_seed(1);
    return 0;
}
#endif

#endif
