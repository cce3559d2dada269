/*
 * backup: `kheish backup`, `kheish backup verify` and `kheish restore`
 * (backup.c, restore.c), and the archive they share (backup_tar.c).
 *
 * A backup is one ustar file, mode 0600:
 *
 *   database/kheish.dump   pg_dump, custom format, uncompressed (pg_restore
 *                          can list and restore it; grep can audit it)
 *   database/roles.sql     pg_dumpall --roles-only --no-role-passwords
 *   state/<path>           the state root's files that no tool rebuilds
 *                          (tokens/ only with --include-tokens)
 *   keys/<name>            the key files, only with --include-keys
 *   manifest.json          last: every other member with its size and
 *                          SHA-256, what is included, the schema level
 */
#ifndef KHEISH_CLI_BACKUP_H
#define KHEISH_CLI_BACKUP_H

#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cli.h"
#include "stack.h"

#define BACKUP_FORMAT         "kheish-backup"
#define BACKUP_FORMAT_VERSION 1
#define BACKUP_MANIFEST       "manifest.json"
#define BACKUP_DUMP           "database/kheish.dump"
#define BACKUP_ROLES          "database/roles.sql"
#define BACKUP_STATE_PREFIX   "state/"
#define BACKUP_KEYS_PREFIX    "keys/"
#define BACKUP_NAME_MAX       99       /* ustar's name field, without a prefix */
#define BACKUP_MANIFEST_MAX   16777216 /* bytes: a manifest is read whole */
#define BACKUP_MEMBERS_MAX    100000
#define BACKUP_SHA256_HEX     (2 * crypto_hash_sha256_BYTES + 1)

/* backup_tar.c */
/* 1 when name is a member name we write and accept: relative, at most
 * BACKUP_NAME_MAX bytes of a portable charset, no empty, . or .. part. */
int backup_name_ok(const char *name);
/* Appends a member of exactly size bytes read from in, its digest into
 * sha256. Returns 0 or -1 with errno set (EIO: in ended early). */
int backup_tar_put_fd(int out, const char *name, int in, uint64_t size, mode_t mode, time_t mtime,
                      char sha256[BACKUP_SHA256_HEX]);
/* The same from memory (mode 0600); sha256 may be NULL. */
int backup_tar_put_mem(int out, const char *name, const void *data, size_t len, time_t mtime,
                       char sha256[BACKUP_SHA256_HEX]);
int backup_tar_finish(int out);

/* A reader: backup_tar_next, then backup_tar_read until it returns 0. */
struct backup_tar {
    int fd;
    char name[BACKUP_NAME_MAX + 2];
    uint64_t size, left;
};
/* 1 and the next member's name and size, 0 at the end of the archive, -1
 * with a one-line reason in err (truncated, damaged header, odd member). */
int backup_tar_next(struct backup_tar *t, char *err, size_t errsz);
/* Up to n bytes of the current member: their count, 0 at its end, -1 when
 * the file ends first. */
ssize_t backup_tar_read(struct backup_tar *t, void *buf, size_t n);

/* backup.c */
/* Where a verified backup's database members were put (restore.c loads
 * them); dir is removed by backup_extract_free. */
struct backup_extract {
    char dir[PATH_MAX];
    char dump[PATH_MAX];
    char roles[PATH_MAX];
};
/* Checks the backup at path (every member against the manifest, the dump
 * through pg_restore --list) and prints why it is not sound, naming the
 * first bad member. With x, keeps the database members in x (a new 0700
 * temporary directory). *manifest receives the parsed manifest (caller
 * frees) when not NULL. Returns an exit code. */
int backup_check(const char *path, struct backup_extract *x, json_t **manifest);
void backup_extract_free(struct backup_extract *x);

/* The verbs (main.c's table). */
int cmd_backup(const struct cli *c, int argc, char **argv);
int cmd_backup_verify(const struct cli *c, int argc, char **argv);
int cmd_restore(const struct cli *c, int argc, char **argv);

#endif
