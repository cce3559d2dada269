/*
 * problem: the contract's problem+json error document (§0), as every
 * client-facing binary answers errors.
 */
#ifndef KHEISH_PROBLEM_H
#define KHEISH_PROBLEM_H

#include <jansson.h>

/* {type: urn:kheish:problem:<code>, title, status, detail, code, domain?}.
 * code NULL: the status's default code; titles follow the contract. */
json_t *problem_doc(int status, const char *domain, const char *code, const char *detail);

#endif
