/*
 * validate: request bodies checked against declared field tables before they
 * reach the store. Unknown fields, wrong types, out-of-range numbers, overlong
 * strings and unknown enum values are 400s naming the field.
 */
#ifndef KHEISH_FCGI_VALIDATE_H
#define KHEISH_FCGI_VALIDATE_H

#include <jansson.h>
#include <stdint.h>

#include "http.h"

enum field_type { F_STRING, F_ID, F_BOOL, F_INT, F_NUMBER, F_OBJECT, F_ARRAY, F_ANY };

struct field {
    const char *name;
    enum field_type type;
    int64_t min, max;            /* F_INT/F_NUMBER range; F_STRING length; F_ARRAY max items */
    const char *const *values;   /* F_STRING: allowed values, NULL-terminated */
    const struct field *members; /* F_OBJECT: its fields; F_ARRAY: each item's */
    int required;                /* REQUIRED: absent or null is a 400 */
};
#define REQUIRED 1
#define OPTIONAL 0

#define FIELDS_END                                                                                 \
    {                                                                                              \
        NULL, 0, 0, 0, NULL, NULL, 0                                                               \
    }

/* Checks obj against fields (terminated by FIELDS_END). Returns 0, or -1 with
 * a 400 problem in resp. */
int validate_object(const json_t *obj, const struct field *fields, struct http_resp *resp);

/* validate_object, its 400 problem carrying domain and code (with the
 * detail prefixed by "<what>: "), for bodies whose contract names its own
 * error (runtime/invalid_tool_runtime_limits). */
int validate_object_as(const json_t *obj, const struct field *fields, const char *what,
                       const char *domain, const char *code, struct http_resp *resp);

/* Parses the body (empty means {}) and validates it. Returns 0 with *out set,
 * or -1 with a 400 problem in resp. */
int validate_body(const struct http_req *req, const struct field *fields, json_t **out,
                  struct http_resp *resp);

/* Body schemas. */
extern const struct field validate_session_create[];
extern const struct field validate_submit_input[];
extern const struct field validate_session_end[];
extern const struct field validate_empty[];
extern const struct field validate_permission_mode[];
extern const struct field validate_debug_level[];
extern const struct field validate_rollback[];
extern const struct field validate_tool_limits_request[]; /* {limits, expected_revision?} */
extern const struct field validate_tool_limits[];         /* ToolRuntimeLimits itself */
extern const struct field validate_permission_rules[];
extern const struct field validate_permission_check[];
extern const struct field validate_permission_matrix[];

/* Extra rules of SubmitInputRequest that a field table cannot say. */
int validate_submit_rules(const json_t *obj, struct http_resp *resp);

#endif
