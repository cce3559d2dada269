/*
 * audit: the control-plane auth audit record (contract §4) and its JSONL
 * mirror, <state_root>/control-plane-auth/audit.jsonl (0600, one line per
 * event, written with a single append). The database copy is written by the
 * caller through the store. No token byte is ever part of a record.
 */
#ifndef KHEISH_AUDIT_H
#define KHEISH_AUDIT_H

#include <jansson.h>

#define AUDIT_DIR            "control-plane-auth"
#define AUDIT_FILE           "audit.jsonl"
#define AUDIT_ORIGIN_MAX_LEN 512

/* {timestamp_ms, event, method, path, reason, origin?, remote_addr?,
 * required_access?}; origin has control characters stripped and is cut at
 * AUDIT_ORIGIN_MAX_LEN. NULL arguments are left out. */
json_t *audit_record(const char *event, const char *method, const char *path, const char *reason,
                     const char *origin, const char *remote_addr, const char *required_access);

/* Appends the record as one line to path, creating it 0600 (and forcing
 * 0600 on an existing file). Returns 0 or -1 with errno set. */
int audit_append_file(const char *path, const json_t *record);

#endif
