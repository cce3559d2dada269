/*
 * tool_shell: the `bash` tool's execution, driven by the runner's event loop
 * without blocking it (docs/security.md, "The bash tool's sandbox").
 *
 * Upstream's shape (graniet/kheish, the daemon's `bash` tool): input
 * {command, workdir?, run_in_background?, description?}; the command runs as
 * `bash -c` in the workspace, stdout and stderr merged into "stdout" (so
 * "stderr" is ""), the result {command, workdir, exit_code, success, stdout,
 * stderr, output_truncated}; a timeout is {"error": "tool execution timed
 * out"}, a cancel {"error": "run interrupted", "interrupted": true}; any
 * process the command left behind is killed when it ends. Here the result
 * keeps that shape and adds timed_out, output_bytes and duration_ms (a
 * timeout or cancel also keeps the output so far). run_in_background is
 * refused (background tasks are a later issue); description is accepted
 * and unused (upstream titles background tasks with it).
 *
 * Each command: fork + exec, its own session and process group, stdin
 * /dev/null, stdout and stderr one non-blocking pipe, every other fd closed,
 * signals back to their defaults, an environment built from scratch (PATH,
 * HOME = the workspace, LANG, TERM, USER, LOGNAME, SHELL, TMPDIR: nothing
 * of the runner's), setrlimit (CPU, AS, NPROC, FSIZE, NOFILE, CORE = 0),
 * PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS; as the tool user (kheish-tool)
 * when the runner is root; inside bubblewrap when it is there and works
 * (the probe of shell_host_init). Output past the cap is read and dropped,
 * so the command never blocks on a full pipe: the first half of the cap and
 * the last half are kept, output_truncated says so.
 *
 * The loop's part:
 *
 *     struct shell_proc *p = shell_start(&host, &limits, ws, &in, now, err, sizeof err);
 *     ... curl_waitfd {shell_fd(p), CURL_WAIT_POLLIN}, timeout <= shell_deadline_ms(p) - now
 *     if (shell_step(p, now))      // readable, or the deadline passed: 1 when finished
 *         result = shell_result(p), shell_free(p);
 *     shell_kill(p) + shell_free(p) on cancel (or shell_free alone: it kills).
 *
 * shell_start blocks only until the child has exec'd (or failed to);
 * shell_step reads at most SHELL_STEP_READ_MAX bytes a call.
 */
#ifndef KHEISH_RUNNER_TOOL_SHELL_H
#define KHEISH_RUNNER_TOOL_SHELL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHELL_DEFAULT_TIMEOUT_MS   180000 /* upstream's effective limit (max_timeout_ms) */
#define SHELL_MAX_TIMEOUT_MS       3600000
#define SHELL_DEFAULT_OUTPUT_BYTES 65536 /* upstream truncates at 64 KiB */
#define SHELL_DEFAULT_CPU_S        600
#define SHELL_DEFAULT_AS_BYTES     (4LL << 30)
#define SHELL_DEFAULT_NPROC        512 /* counts every process of the user the command runs as */
#define SHELL_DEFAULT_FSIZE_BYTES  (1LL << 30)
#define SHELL_DEFAULT_NOFILE       1024
#define SHELL_DEFAULT_TMP_BYTES    (512LL << 20) /* the sandbox's /tmp (tmpfs) */
#define SHELL_COMMAND_MAX_BYTES    131071        /* one execve argument (MAX_ARG_STRLEN - 1) */
#define SHELL_STEP_READ_MAX        (1 << 20)
#define SHELL_DEFAULT_USER         "kheish-tool"
#define SHELL_BWRAP_PATH           "/usr/bin/bwrap"
#define SHELL_BASH_PATH            "/bin/bash"

enum shell_sandbox {
    SHELL_SANDBOX_AUTO,    /* bwrap when it is there and works, else a warning and none */
    SHELL_SANDBOX_REQUIRE, /* bwrap or no bash tool at all */
    SHELL_SANDBOX_OFF,     /* never bwrap (the user switch, rlimits and clean env stay) */
};

/* What the operator chose (shell_options_from_env: KHEISH_SHELL_*). */
struct shell_options {
    enum shell_sandbox sandbox; /* KHEISH_SHELL_SANDBOX=auto|require|off */
    const char *user;           /* KHEISH_SHELL_USER, when the runner is root */
    int network;                /* KHEISH_SHELL_NETWORK=on|off (1: shared with the host) */
};

/* What every command of this runner runs with, decided once at start. */
struct shell_host {
    int bwrap;       /* 1: each command runs inside bubblewrap */
    int switch_user; /* 1: the runner is root; commands run as uid:gid */
    int network;
    uid_t uid;
    gid_t gid;
    char user[64];      /* the name commands run as (USER, LOGNAME) */
    char summary[512];  /* one line for logs and status: how commands run */
    char **bwrap_fixed; /* bwrap's arguments that do not depend on the command */
    size_t nfixed;
};

struct shell_limits {
    int64_t timeout_ms;
    size_t output_cap_bytes; /* of output returned (the rest is counted, dropped) */
    int64_t cpu_s;           /* RLIMIT_CPU (soft; hard is 5 s more) */
    int64_t as_bytes;        /* RLIMIT_AS, per process */
    int64_t nproc;           /* RLIMIT_NPROC */
    int64_t fsize_bytes;     /* RLIMIT_FSIZE */
    int64_t nofile;          /* RLIMIT_NOFILE */
    int64_t tmp_bytes;       /* size of the sandbox's /tmp (bwrap only) */
};

/* One call's input, pointing into the JSON it came from. */
struct shell_input {
    const char *command;
    const char *workdir; /* NULL: the workspace root */
};

struct shell_proc;

/* Defaults, then KHEISH_SHELL_SANDBOX, _USER, _NETWORK, _TIMEOUT_MS and
 * _OUTPUT_BYTES. Returns 0, or -1 with err for a value that is not valid. */
int shell_options_from_env(struct shell_options *o, struct shell_limits *l, char *err,
                           size_t errsz);
void shell_limits_default(struct shell_limits *l);

/* Decides how commands run: looks the tool user up (root only: a missing
 * user is an error, commands never run as root), finds bwrap and probes it
 * as that user (AUTO: a failed probe is a warning and no sandbox; REQUIRE:
 * an error). Logs one line saying what it decided (a warning when there is
 * no sandbox). When commands will run as the runner's own user outside
 * bwrap, makes the runner non-dumpable, so that its /proc/PID/environ and
 * memory are not readable by them. Blocks for the probe (a few ms): call
 * it at start. Returns 0, or -1 with err (no bash tool). */
int shell_host_init(struct shell_host *h, const struct shell_options *o, char *err, size_t errsz);
void shell_host_free(struct shell_host *h);

/* Makes path (an absolute directory; its parent must exist) the tool
 * user's own: created 0700 if missing, given to uid:gid when the user
 * switches. Its parents must be searchable by that user when bwrap is on. */
int shell_workspace_prepare(const struct shell_host *h, const char *path, char *err, size_t errsz);

/* The tool's input schema (JSON Schema, a new reference) and description. */
json_t *shell_tool_schema(void);
const char *shell_tool_description(void);

/* Checks a call's input: command a non-empty string without NUL of at most
 * SHELL_COMMAND_MAX_BYTES, workdir and description strings,
 * run_in_background absent or false. Returns 0, or -1 with err (the text
 * the model gets back). */
int shell_parse_input(const json_t *input, struct shell_input *in, char *err, size_t errsz);

/* Starts in->command in workspace (an absolute directory) under in->workdir
 * (relative to it, or absolute inside it; no "..", no symlink followed).
 * now_ms: the caller's monotonic clock, the timeout counts from it. Returns
 * the running command, or NULL with err (nothing runs then). */
struct shell_proc *shell_start(const struct shell_host *h, const struct shell_limits *l,
                               const char *workspace, const struct shell_input *in, int64_t now_ms,
                               char *err, size_t errsz);

/* Readable when there is output to read or the command has ended (an
 * epoll fd over both): poll it for reading. -1 once finished. */
int shell_fd(const struct shell_proc *p);
/* Reads what is ready, notices the end (then kills whatever the command
 * left in its group and reaps it), enforces the deadline (SIGKILL to the
 * whole group). Returns 1 when finished, 0 while running. */
int shell_step(struct shell_proc *p, int64_t now_ms);
/* When shell_step must run even if shell_fd stays quiet; INT64_MAX once
 * finished. */
int64_t shell_deadline_ms(const struct shell_proc *p);
/* The result once finished (a new reference), else NULL. */
json_t *shell_result(const struct shell_proc *p);
/* 1 when the result is an error for the model (timeout, cancel). */
int shell_result_is_error(const struct shell_proc *p);
/* Cancels: SIGKILL to the whole group, reaps; the result then says "run
 * interrupted". Nothing when already finished. */
void shell_kill(struct shell_proc *p);
/* Kills (if running) and frees. */
void shell_free(struct shell_proc *p);
/* The command's process (bwrap's when sandboxed): its group id too. */
pid_t shell_pid(const struct shell_proc *p);

#endif
