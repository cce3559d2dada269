/*
 * output: what the CLI prints on stdout. `--output json` prints the API
 * document unchanged; pretty mode renders it through a view, a list of
 * sections (key/value blocks and column-aligned tables) described as data,
 * so every command shares one printer.
 */
#ifndef KHEISH_CLI_OUTPUT_H
#define KHEISH_CLI_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"

#define OUTPUT_CELL_MAX_BYTES   4096 /* one rendered value, after escaping */
#define OUTPUT_TABLE_CELL_CHARS 60   /* default width cap of a table column */

enum output_fmt {
    OUT_TEXT,  /* scalars as text, arrays of scalars comma-joined, the rest as compact JSON */
    OUT_TIME,  /* milliseconds since the epoch as UTC ISO 8601 */
    OUT_COUNT, /* the length of an array (an integer as itself) */
};

/* One table column or one key/value line. */
struct output_col {
    const char *title;
    const char *path; /* dotted path into the item, e.g. "request.text_preview" */
    enum output_fmt fmt;
    int max_chars; /* table cells are cut to this many characters; 0 = default */
};

enum output_kind { OUTPUT_FIELDS, OUTPUT_TABLE };

struct output_section {
    enum output_kind kind;
    /* The object (fields) or array (table) to render, as a dotted path into
     * the document. NULL means the document itself; for a table a paginated
     * envelope {items, pagination} is also accepted. A section whose target
     * is absent or of the wrong type is skipped. */
    const char *path;
    const char *heading; /* printed above the section; NULL = none */
    const struct output_col *cols;
    size_t ncols;
};

struct output_view {
    const struct output_section *sections;
    size_t nsections;
};

#define OUTPUT_COLS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define OUTPUT_VIEW(a)                                                                             \
    {                                                                                              \
        (a), sizeof(a) / sizeof((a)[0])                                                            \
    }

/* Prints doc: as indented JSON in json mode, else through view. */
void output_print(const struct cli *c, const json_t *doc, const struct output_view *view);

/* Indented JSON followed by a newline. */
void output_json(FILE *f, const json_t *doc);

/* doc as one compact line on stdout (the offline verbs' json mode), and
 * its reference released; nothing for NULL. */
void output_json_line(json_t *doc);

/* Writes s[0..len), cut to max_chars characters, with control characters
 * and invalid UTF-8 replaced so text from the daemon cannot drive the
 * terminal. */
void output_text(FILE *f, const char *s, size_t len, size_t max_chars);

/* The value at a dotted path ("a.b.c") below doc; doc itself for NULL. */
const json_t *output_lookup(const json_t *doc, const char *path);

#endif
