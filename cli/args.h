/*
 * args: the command line. Global flags are taken out of argv wherever they
 * appear; each verb then parses its own flags and positionals through one
 * declarative parser, so every verb reports bad usage the same way.
 */
#ifndef KHEISH_CLI_ARGS_H
#define KHEISH_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* Returned by a verb whose arguments are wrong: the dispatcher prints the
 * verb's usage line and exits with EXIT_BAD_REQUEST. Never an exit status. */
#define ARGS_USAGE (-1)

/* Value of an integer flag that was not given (every integer flag has min >= 0). */
#define ARGS_UNSET (-1)

#define ARGS_TOKEN_FILE_MAX_BYTES 4096

struct args_global {
    struct cli cli;
    char *token_buf; /* token read from a token file, owned here */
    int help;        /* -h or --help appeared anywhere */
};

/* Removes the global flags from argv (compacting it and updating *argc),
 * then fills in the rest from the environment and the defaults. Returns
 * EXIT_OK, or EXIT_BAD_REQUEST after printing the reason. Flags win over the
 * environment; --token and --token-file together are refused, and so are
 * both environment variables when no flag is given. */
int args_global_parse(int *argc, char **argv, struct args_global *g);
void args_global_free(struct args_global *g);

/*
 * One flag of a verb, written `--name VALUE` or `--name=VALUE`. Exactly one
 * destination is set: str (takes a string, checked against choices when
 * given), num (takes an integer in [min, max], parsed strictly) or flag
 * (takes no value, set to 1). Arrays end with an entry whose name is NULL.
 */
struct args_opt {
    const char *name;
    const char **str;
    const char *const *choices;
    int64_t *num;
    int64_t min, max;
    int *flag;
};

/* Parses argv (the words after the verb) against opts, storing up to max_pos
 * positionals in pos. "--" ends the flags. Returns 0, or ARGS_USAGE after
 * printing what is wrong (unknown or repeated flag, missing value, bad
 * number, wrong number of positionals). */
int args_parse(int argc, char **argv, const struct args_opt *opts, const char **pos, int min_pos,
               int max_pos);

/* Reads a whole file (path "-" = stdin) of at most max bytes into a
 * NUL-terminated buffer the caller frees. Returns 0, or -1 after printing
 * the reason. */
int args_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
