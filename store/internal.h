/* Helpers shared by the files of store/; not part of its interface. */
#ifndef KHEISH_STORE_INTERNAL_H
#define KHEISH_STORE_INTERNAL_H

#include <libpq-fe.h>

#include "store.h"

#define STORE_TX_MAX_ATTEMPTS   5
#define STORE_CONNECT_BUDGET_MS 2000
#define STORE_MAX_PREPARED      96 /* statements prepared per connection */

struct store {
    PGconn *conn;
    char *conninfo;
    char *state_root;
    char *workspace_root;
    char *routes; /* JSON object (store_host) */
    int connect_budget_ms;
    int in_tx;
    /* Statements prepared on this connection, by the address of their text
     * (every statement is a string constant); forgotten on reconnect. */
    const char *prepared[STORE_MAX_PREPARED];
    int nprepared;
    /* The server changed what a prepared statement returns (a functions file
     * replaced a view): the statements are dropped before the next one. */
    int replan;
    char err[512];
};

/* A transaction of several statements (migrations). fn runs between BEGIN and COMMIT; a STORE_RETRY
 * from any statement (serialization failure, deadlock) rolls back and runs fn again, up to
 * STORE_TX_MAX_ATTEMPTS times. Any other non-OK return rolls back. */
typedef enum store_rc (*store_tx_fn)(struct store *s, void *ctx);
enum store_rc store_tx(struct store *s, store_tx_fn fn, void *ctx);

/* Runs sql as its own transaction, outside any other, and returns its
 * result (as db_exec) once the WAL holds everything it committed or saw. */
PGresult *db_exec_durable(struct store *s, enum store_rc *rc, const char *sql, int nparams,
                          const char *const *params);

/* Runs one parameterised statement. On success returns the result (caller
 * PQclear()s it); on failure returns NULL and sets *rc. Outside a transaction a
 * lost connection is reset and the statement retried once: callers use it
 * outside transactions only for idempotent reads. */
PGresult *db_exec(struct store *s, enum store_rc *rc, const char *sql, int nparams,
                  const char *const *params);

/* db_exec for a statement whose result is not read. */
enum store_rc db_command(struct store *s, const char *sql, int nparams, const char *const *params);

/* One statement that is a whole transaction (a function of sql/functions/),
 * tried again on a serialization failure or deadlock; its JSON result, once
 * durable (db_exec_durable). */
enum store_rc db_call(struct store *s, json_t **out, const char *sql, int nparams,
                      const char *const *params);
/* db_call for a function answering {"result": R, ...}: the store_rc that R
 * names ("ok", or an error's name: "session_not_found"...), or STORE_OK for
 * created, reused and replayed (*result tells). *res is the whole answer
 * (caller decrefs). */
enum store_rc db_call_result(struct store *s, json_t **res, const char **result, const char *sql,
                             int nparams, const char *const *params);
/* db_call_result keeping one member of the answer: *out receives the value
 * of key (a new reference, NULL when absent or on error). */
enum store_rc db_call_get(struct store *s, const char *key, json_t **out, const char *sql,
                          int nparams, const char *const *params);
/* db_exec for a statement returning one json/jsonb column in one row:
 * *out receives the parsed value; STORE_OK with *out NULL when no row. */
enum store_rc db_json(struct store *s, json_t **out, const char *sql, int nparams,
                      const char *const *params);

/* db_exec for one text column in one row: *out receives a malloc'd copy
 * (caller frees); STORE_OK with *out NULL when no row. */
enum store_rc db_text(struct store *s, char **out, const char *sql, int nparams,
                      const char *const *params);

/* Same as db_json, collecting column 0 of every row into a JSON array. */
enum store_rc db_json_rows(struct store *s, json_t **out, const char *sql, int nparams,
                           const char *const *params);

/* Column 0 of a row as JSON (json_exact_load: never fails on a number);
 * NULL for SQL NULL, or, logged and in store_last_error, for text that is
 * not JSON. */
json_t *db_decode(struct store *s, const PGresult *r, int row);

/* Serialises a jansson value for a jsonb parameter (caller frees). */
char *db_json_param(const json_t *v);

/* Keyset pagination: sql returns (item jsonb, key_ms bigint, key_id text) rows,
 * already ordered and limited to page->limit + 1. */
enum store_rc db_page_fetch(struct store *s, const char *sql, int nparams,
                            const char *const *params, int limit, struct store_page_result *out);
/* Splits a decoded cursor "<ms>:<id>" into its two parameters (ms must fit in
 * buf). Returns -1 when malformed. */
int db_cursor_split(const char *cursor, char *ms, size_t mssz, const char **id);

#endif
