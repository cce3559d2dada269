/*
 * tools: the file tools a run's model may call (issue 15), confined to the
 * session's workspace. Upstream Kheish's names, input fields and results
 * (crates/kheish-coding-tools):
 *
 *   read_file    {path, start_line?, line_count?, include_base64?}
 *   write_file   {path, content? | content_base64?, expected_sha256?}
 *   edit_file    {path, old_text, new_text, replace_all?, expected_sha256?}
 *   apply_patch  {hunks: [{path, old_text, new_text, replace_all?, expected_sha256?}]}
 *   list_files   {base?, limit?}
 *   glob_search  {pattern, base?, limit?}
 *   grep_search  {pattern, base?, limit?}
 *
 * Every path is resolved beneath the workspace's directory descriptor by
 * openat2(2) (tool_fs.c; docs/security.md, "The file tools' workspace"), and
 * every tool's work is bounded (the TOOL_* limits below). A call is
 * synchronous and never blocks on anything but the filesystem: the runner's
 * loop may call it between transfers, or hand it to a thread.
 */
#ifndef KHEISH_RUNNER_TOOLS_H
#define KHEISH_RUNNER_TOOLS_H

#include <jansson.h>
#include <stddef.h>

/* Limits, each with its unit. Upstream's own numbers where it has one
 * (max_read_bytes, max_results, max_edit_bytes). */
#define TOOL_PATH_MAX              4095              /* bytes of a path the model gives */
#define TOOL_READ_WINDOW_BYTES     (4 * 1024 * 1024) /* read_file reads at most this of a file */
#define TOOL_READ_CONTENT_BYTES    (128 * 1024)      /* ... and returns at most this of it */
#define TOOL_EDIT_MAX_BYTES        (4 * 1024 * 1024) /* a file edit_file/apply_patch changes */
#define TOOL_WRITE_MAX_BYTES       (4 * 1024 * 1024) /* what write_file writes */
#define TOOL_PATCH_MAX_HUNKS       256
#define TOOL_PATCH_MAX_FILES       64
#define TOOL_PATCH_MAX_TOTAL_BYTES (16 * 1024 * 1024) /* of every file one apply_patch changes */
#define TOOL_PATCH_MAX_REPLACED    (16 * 1024 * 1024) /* replacements of one apply_patch's hunks */
#define TOOL_MAX_RESULTS           200                /* paths listed, matches returned */
#define TOOL_WALK_MAX_ENTRIES      100000             /* directory entries one walk looks at */
#define TOOL_WALK_MAX_DEPTH        64                 /* directories below the base */
#define TOOL_WALK_MAX_BYTES        (16 * 1024 * 1024) /* of the paths one walk keeps */
#define TOOL_WALK_MAX_MS           5000               /* one list/glob/grep walk and scan */
#define TOOL_PATTERN_MAX_BYTES     1024               /* a glob or grep pattern */
#define TOOL_GREP_FILE_BYTES       (8 * 1024 * 1024)  /* grep reads at most this of a file */
#define TOOL_GREP_SCAN_BYTES       (64 * 1024 * 1024) /* ... and of every file together */
#define TOOL_GREP_TEXT_BYTES       1000               /* of a matching line, returned */
#define TOOL_GREP_LINE_BYTES       (8 * 1024) /* of a line, matched by a regular expression */

/* One tool as the model is told of it: its input schema is JSON Schema text
 * (an object with properties, required and additionalProperties false, as
 * upstream's ToolSchema::json_schema renders). mutates: the tool changes
 * files (upstream's WorkspaceWrite sandbox: write_file, edit_file,
 * apply_patch, which the permission modes treat apart). */
struct tool_spec {
    const char *name;
    const char *description;
    const char *schema_json;
    int mutates;
};

/* The file tools, in their one table: tool_files_spec(i) for i below
 * tool_files_count(), or NULL past it. */
size_t tool_files_count(void);
const struct tool_spec *tool_files_spec(size_t i);
/* The tool named name, or NULL when it is no file tool. */
const struct tool_spec *tool_files_find(const char *name);

/* Runs file tool `name` with `input` in the workspace whose directory fd is
 * ws: 0 and *out = the tool's result JSON, or -1 and *out = {"error": "..."}
 * for the model (an unknown name, an input its schema refuses, a path
 * outside the workspace, a limit, a failed system call). *out is the
 * caller's to json_decref; it is NULL only when memory ran out. */
int tool_files_run(int ws, const char *name, const json_t *input, json_t **out);

/* The workspace directory at path opened for tool_files_run (O_DIRECTORY,
 * close-on-exec): a descriptor, or -1 with errno. */
int tool_files_open_workspace(const char *path);

#endif
