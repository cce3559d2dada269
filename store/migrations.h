/* The SQL of sql/, embedded at build time by store/embed-sql.sh. */
#ifndef KHEISH_STORE_MIGRATIONS_H
#define KHEISH_STORE_MIGRATIONS_H

#include <stddef.h>

struct store_sql {
    int version; /* a migration's number; 0 for a functions file */
    const char *name;
    const char *sql;
    size_t len;
};

/* sql/migrations/, in order: applied once each, checksummed. */
extern const struct store_sql store_migrations[];
extern const int store_migrations_count;
/* sql/functions/: applied again whenever their text changes. */
extern const struct store_sql store_functions[];
extern const int store_functions_count;

#endif
