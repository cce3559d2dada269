/* The migrations of sql/, embedded at build time by store/embed-sql.sh. */
#ifndef KHEISH_STORE_MIGRATIONS_H
#define KHEISH_STORE_MIGRATIONS_H

#include <stddef.h>

struct store_migration {
    int version;
    const char *name;
    const char *sql;
    size_t len;
};

extern const struct store_migration store_migrations[];
extern const int store_migration_count;

#endif
