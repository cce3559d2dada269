/*
 * The closed lists (issue 12, point 7): the database's copies cannot drift
 * from common/names.h, common/routes.h and store/store.h. Compared here:
 * the CHECK constraints of runs.status and auth_slots' provider and mode;
 * the permission mode of every runtime revision;
 * the run state machine's table; every list of three or more run statuses
 * in a function, trigger or partial index, which must be the active, the
 * non-terminal or the terminal set; the stream events and run events the
 * functions make; and the results functions answer with, which must be
 * store errors or the successes db_call_result knows.
 */
#include <ctype.h>
#include <sodium.h>

#include "check_pg.h"
#include "names.h"
#include "routes.h"
#include "store.h"
#include "util.h"

#define MAX_LIST 32

struct list {
    char v[MAX_LIST][64];
    int n;
};

static int
has(const struct list *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 1;
    return 0;
}

static void
add(struct list *l, const char *s, size_t len)
{
    if (l->n < MAX_LIST && len < sizeof l->v[0]) {
        memcpy(l->v[l->n], s, len);
        l->v[l->n++][len] = '\0';
    }
}

static int
same(const struct list *a, const char *const *names)
{
    int n = 0;
    for (; names[n]; n++)
        if (!has(a, names[n]))
            return 0;
    return n == a->n;
}

/* The quoted literals of text, in order, as one list. */
static void
literals(const char *text, struct list *out)
{
    out->n = 0;
    for (const char *p = strchr(text, '\''); p; p = strchr(p, '\'')) {
        const char *end = strchr(p + 1, '\'');
        if (end == NULL)
            break;
        add(out, p + 1, (size_t)(end - p - 1));
        p = end + 1;
    }
}

/* Calls fn on each run of quoted literals separated only by commas, blanks
 * and ::text casts (an IN list, an ARRAY[...]). */
static void
each_group(const char *text, void (*fn)(const struct list *, void *), void *arg)
{
    const char *p = text;
    struct list g = {.n = 0};
    while ((p = strchr(p, '\'')) != NULL) {
        const char *end = strchr(p + 1, '\'');
        if (end == NULL)
            break;
        add(&g, p + 1, (size_t)(end - p - 1));
        p = end + 1;
        const char *q = p;
        while (*q == ' ' || *q == ',' || *q == '\n' || !strncmp(q, "::text", 6))
            q += !strncmp(q, "::text", 6) ? 6 : 1;
        if (*q != '\'' || memchr(p, ',', (size_t)(q - p)) == NULL) {
            fn(&g, arg);
            g.n = 0;
        }
    }
}

struct sets {
    const char *const *lists[3];
    int bad;
};

static void
status_group(const struct list *g, void *arg)
{
    struct sets *s = arg;
    int statuses = 0;
    for (int i = 0; i < g->n; i++)
        statuses += util_in_list(g->v[i], names_run_statuses);
    if (g->n < 3 || statuses < g->n)
        return;
    for (int i = 0; i < 3; i++)
        if (same(g, s->lists[i]))
            return;
    s->bad++;
    fprintf(stderr, "  a list of %d run statuses is none of the named sets:", g->n);
    for (int i = 0; i < g->n; i++)
        fprintf(stderr, " %s", g->v[i]);
    fprintf(stderr, "\n");
}

/* Each name that follows marker in text (marker ends with a quote). */
static int
names_after(const char *text, const char *marker, const char *const *known, const char *what)
{
    int unknown = 0, found = 0;
    for (const char *p = strstr(text, marker); p; p = strstr(p, marker)) {
        p += strlen(marker);
        const char *end = strchr(p, '\'');
        char name[64];
        if (end == NULL || (size_t)(end - p) >= sizeof name)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(end - p), p);
        found++;
        if (!util_in_list(name, known)) {
            fprintf(stderr, "  the database makes %s '%s', not in the C list\n", what, name);
            unknown++;
        }
    }
    if (found == 0)
        fprintf(stderr, "  no %s found after %s\n", what, marker);
    return unknown + (found == 0);
}

static const char *const stream_events[] = {
#define NAME(n) n,
    NAMES_STREAM_EVENTS(NAME) NULL};
static const char *const run_events[] = {NAMES_RUN_EVENTS(NAME) NULL};
static const char *const slot_providers[] = {NAMES_SLOT_PROVIDERS(NAME) NULL};
#undef NAME
#define IF_0(name)
#define IF_1(name)     name,
#define UNLESS_0(name) name,
#define UNLESS_1(name)
#define ACTIVE(name, terminal, active)       IF_##active(name)
#define NOT_TERMINAL(name, terminal, active) UNLESS_##terminal(name)
static const char *const active_statuses[] = {NAMES_RUN_STATUSES(ACTIVE) NULL};
static const char *const live_statuses[] = {NAMES_RUN_STATUSES(NOT_TERMINAL) NULL};

/* q's first value, whole (check_sql keeps 4 KiB); caller frees. */
static char *
text_of(PGconn *pg, const char *q)
{
    PGresult *r = PQexec(pg, q);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
    char *t = strdup(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0)
                                                                               : "");
    PQclear(r);
    return t;
}

int
main(void)
{
    struct store_migration_report report;
    if (sodium_init() < 0)
        return 1;
    struct store *s = store_open(check_database_url(), NULL);
    CHECK(store_migrate(s, &report) == STORE_OK);
    store_close(s);
    PGconn *pg = PQconnectdb(check_database_url());
    struct list l;

    literals(check_sql(pg, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE conrelid = 'runs'::regclass AND contype = 'c' "
                           "AND pg_get_constraintdef(oid) LIKE '%status%'"),
             &l);
    CHECK(same(&l, names_run_statuses));
    literals(check_sql(pg, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE conrelid = 'auth_slots'::regclass AND contype = 'c' "
                           "AND pg_get_constraintdef(oid) LIKE '%provider%'"),
             &l);
    CHECK(same(&l, names_slot_providers));
    literals(check_sql(pg, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE conrelid = 'auth_slots'::regclass AND contype = 'c' "
                           "AND pg_get_constraintdef(oid) LIKE '%mode%'"),
             &l);
    CHECK(same(&l, names_slot_modes));
    /* The permission modes the database keeps (no CHECK: the API validates
     * them): every revision's, the initial one's included, is a JSON name. */
    literals(check_sql(pg,
                       "SELECT string_agg(DISTINCT quote_literal(settings->>'permission_mode'), "
                       "' ') FROM runtime_revisions"),
             &l);
    CHECK(l.n > 0);
    for (int i = 0; i < l.n; i++)
        CHECK(util_in_list(l.v[i], names_permission_modes));
    for (int d = 0; d < ROUTE_DRIVER_COUNT; d++)
        CHECK(util_in_list(route_drivers[d].slot_provider, slot_providers));

    /* The state machine: known statuses only, and nothing leaves a terminal one. */
    literals(check_sql(pg, "SELECT string_agg(quote_literal(from_status) || ' ' || "
                           "quote_literal(to_status), ' ') FROM run_transitions"),
             &l);
    CHECK(l.n > 0);
    for (int i = 0; i < l.n; i++)
        CHECK(util_in_list(l.v[i], names_run_statuses));
    CHECK_STR(check_sql(pg, "SELECT count(*) FROM run_transitions WHERE from_status IN ("
                            "'completed', 'failed', 'interrupted', 'cancelled')"),
              "0");
    CHECK(same(&(struct list){.n = 4, .v = {"completed", "failed", "interrupted", "cancelled"}},
               names_terminal_statuses));

    /* Every status list of the functions, triggers and partial indexes. */
    char *all =
        text_of(pg, "SELECT string_agg(t, E'\\n') FROM ("
                    "SELECT prosrc AS t FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
                    "UNION ALL SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                    "WHERE indpred IS NOT NULL) x");
    struct sets sets = {{active_statuses, live_statuses, names_terminal_statuses}, 0};
    each_group(all, status_group, &sets);
    CHECK(sets.bad == 0);
    CHECK(names_after(all, "kheish_stream_event('", stream_events, "the stream event") == 0);
    free(all);
    all = text_of(pg, "SELECT string_agg(prosrc, E'\\n') FROM pg_proc WHERE proname "
                      "IN ('kheish_run_event', 'kheish_run_submit', 'kheish_approvals_settle')");
    CHECK(names_after(all, "'type', '", run_events, "the run event") == 0);
    free(all);

    /* What functions answer with: store errors, or the successes. */
    all = text_of(pg, "SELECT string_agg(prosrc, E'\\n') FROM pg_proc "
                      "WHERE pronamespace = 'public'::regnamespace");
    static const char *const results[] = {
#define RESULT(id, name, ...) name,
        STORE_ERRORS(RESULT)
#undef RESULT
            "created",
        "reused", "replayed", NULL};
    CHECK(names_after(all, "'result', '", results, "the result") == 0);
    free(all);
    PQfinish(pg);
    return check_report("names");
}
