/* Keyset pagination shared by every list of the store. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
db_cursor_split(const char *cursor, char *ms, size_t mssz, const char **id)
{
    const char *colon = strchr(cursor, ':');
    size_t n = colon ? (size_t)(colon - cursor) : 0;
    if (n != 20 || n >= mssz || colon[1] == '\0')
        return -1;
    for (size_t i = 0; i < n; i++)
        if (cursor[i] < '0' || cursor[i] > '9')
            return -1;
    memcpy(ms, cursor, n);
    ms[n] = '\0';
    *id = colon + 1;
    return 0;
}

enum store_rc
db_page_fetch(struct store *s, const char *sql, int nparams, const char *const *params, int limit,
              struct store_page_result *out)
{
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc, sql, nparams, params);
    if (r == NULL)
        return rc;
    int rows = PQntuples(r);
    out->items = json_array();
    out->has_more = rows > limit;
    out->next_key[0] = '\0';
    for (int i = 0; i < rows && i < limit && rc == STORE_OK; i++)
        if (json_array_append_new(out->items, db_decode(s, r, i)) != 0)
            rc = STORE_ERROR;
    if (rc != STORE_OK) {
        json_decref(out->items);
        out->items = NULL;
    } else if (out->has_more)
        snprintf(out->next_key, sizeof out->next_key, "%020lld:%s",
                 strtoll(PQgetvalue(r, limit - 1, 1), NULL, 10), PQgetvalue(r, limit - 1, 2));
    PQclear(r);
    return rc;
}
