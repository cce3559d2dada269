/* questions: ask_user_question's request, its answers and its results (see questions.h). */
#include "questions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define QUESTION_EXAMPLE                                                                           \
    "{\"questions\":[{\"id\":\"focus\",\"header\":\"Focus\",\"question\":\"Which area should I "   \
    "look at first?\",\"options\":[{\"id\":\"memory\",\"label\":\"Memory\"},{\"id\":\"disk\","     \
    "\"label\":\"Disk\"}],\"multi_select\":false}]}"

const char questions_tool_description[] =
    "Ask the user one structured clarification request and wait for the answer. Use it only when "
    "you genuinely need the user's input before you can go on. Ask 1 to 4 questions, each with 2 "
    "to 4 options; the user picks one option (several when multi_select is true) and may add "
    "free text. Input example: " QUESTION_EXAMPLE ".";

/* Objects refuse unknown fields, as the runner's other tools. */
const char questions_tool_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"questions\":{\"type\":\"array\",\"description\":\"1 to 4 questions.\",\"items\":"
    "{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"string\",\"description\":"
    "\"Optional stable id, unique in the request; default question-N.\"},"
    "\"header\":{\"type\":\"string\",\"description\":"
    "\"Optional short label shown above the question; default Question N.\"},"
    "\"question\":{\"type\":\"string\",\"description\":\"The question, unique in the request.\"},"
    "\"options\":{\"type\":\"array\",\"description\":\"2 to 4 options.\",\"items\":"
    "{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"string\",\"description\":"
    "\"Optional stable id, unique in the question; default option-N.\"},"
    "\"label\":{\"type\":\"string\",\"description\":"
    "\"Short text of the option, unique in the question.\"},"
    "\"description\":{\"type\":\"string\",\"description\":"
    "\"Optional explanation shown with the label.\"},"
    "\"preview\":{\"type\":\"string\",\"description\":"
    "\"Optional content a capable client shows when the option is chosen.\"}"
    "},\"required\":[\"label\"],\"additionalProperties\":false}},"
    "\"multi_select\":{\"type\":\"boolean\",\"description\":"
    "\"Whether several options may be chosen; default false.\"}"
    "},\"required\":[\"question\",\"options\"],\"additionalProperties\":false}},"
    "\"expires_at_ms\":{\"type\":\"integer\",\"description\":"
    "\"Optional Unix time in milliseconds after which the request expires.\"},"
    "\"expires_after_ms\":{\"type\":\"integer\",\"description\":"
    "\"Optional timeout in milliseconds from the request's creation. "
    "Do not combine with expires_at_ms.\"}"
    "},\"required\":[\"questions\"],\"additionalProperties\":false}";

static const struct outcome_row {
    int status;
    const char *domain, *code;
} outcome_rows[] = {{200, NULL, NULL},
#define ROW(id, status, domain, code) {status, domain, code},
                    QUESTION_OUTCOMES(ROW)
#undef ROW
};

int
questions_verdict(struct question_verdict *v, enum question_outcome o, const char *fmt, ...)
{
    va_list ap;
    v->outcome = o;
    v->status = outcome_rows[o].status;
    v->domain = outcome_rows[o].domain;
    v->code = outcome_rows[o].code;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    return o == QUESTION_OK ? 0 : -1;
}

static int
is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* A string value, as the caller reads it: the bytes and their length. */
struct text {
    const char *s;
    size_t n;
};

/* obj's optional string field, trimmed of ASCII white space: 0 with t the
 * text (t->s NULL when absent, null or blank), or -1 with err saying what is
 * wrong with "<where><field>". */
static int
tool_text(const json_t *obj, const char *where, const char *field, size_t max, struct text *t,
          char *err, size_t errsz)
{
    const json_t *v = json_object_get(obj, field);
    t->s = NULL;
    t->n = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return util_fail(err, errsz, "%s%s must be a string", where, field);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, '\0', n))
        return util_fail(err, errsz, "%s%s must not contain NUL characters", where, field);
    while (n > 0 && is_space((unsigned char)*s))
        s++, n--;
    while (n > 0 && is_space((unsigned char)s[n - 1]))
        n--;
    if (n > max)
        return util_fail(err, errsz, "%s%s is longer than %zu bytes", where, field, max);
    if (n > 0)
        t->s = s, t->n = n;
    return 0;
}

/* The text t, or the default "<prefix><i + 1>" when t is empty. */
static json_t *
text_or_default(const struct text *t, const char *prefix, size_t i)
{
    char def[32];
    if (t->s)
        return json_stringn(t->s, t->n);
    snprintf(def, sizeof def, "%s%zu", prefix, i + 1);
    return json_string(def);
}

/* 1 when an object of list has a string field equal to t (ignoring ASCII
 * case when fold). */
static int
listed(const json_t *list, const char *field, const struct text *t, int fold)
{
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const json_t *f = json_object_get(e, field);
        if (json_string_length(f) == t->n && (fold ? !strncasecmp(json_string_value(f), t->s, t->n)
                                                   : !memcmp(json_string_value(f), t->s, t->n)))
            return 1;
    }
    return 0;
}

/* Appends option oi of question qi to options, or fails, in upstream's order:
 * label, id, unique id, unique label, description, preview. */
static int
parse_option(const json_t *o, size_t qi, size_t oi, json_t *options, char *err, size_t errsz)
{
    char where[64];
    struct text label, id, description, preview;
    snprintf(where, sizeof where, "questions[%zu].options[%zu].", qi, oi);
    if (!json_is_object(o))
        return util_fail(err, errsz, "questions[%zu].options[%zu] must be an object", qi, oi);
    if (tool_text(o, where, "label", QUESTION_LABEL_MAX_BYTES, &label, err, errsz) != 0)
        return -1;
    if (label.s == NULL)
        return util_fail(err, errsz, "%slabel is required (a non-blank string)", where);
    if (tool_text(o, where, "id", QUESTION_ID_MAX_BYTES, &id, err, errsz) != 0)
        return -1;
    json_t *idv = text_or_default(&id, "option-", oi);
    struct text idt = {json_string_value(idv), json_string_length(idv)};
    int rc = -1;
    if (listed(options, "id", &idt, 0))
        util_fail(err, errsz, "question %zu has two options with the id \"%s\"", qi + 1, idt.s);
    else if (listed(options, "label", &label, 1))
        util_fail(err, errsz, "question %zu has two options with the label \"%.*s\"", qi + 1,
                  (int)label.n, label.s);
    else if (tool_text(o, where, "description", QUESTION_DESCRIPTION_MAX_BYTES, &description, err,
                       errsz) == 0 &&
             tool_text(o, where, "preview", QUESTION_PREVIEW_MAX_BYTES, &preview, err, errsz) ==
                 0) {
        json_t *opt = json_pack("{s:O, s:s%}", "id", idv, "label", label.s, label.n);
        if (description.s)
            json_object_set_new(opt, "description", json_stringn(description.s, description.n));
        if (preview.s)
            json_object_set_new(opt, "preview", json_stringn(preview.s, preview.n));
        json_array_append_new(options, opt);
        rc = 0;
    }
    json_decref(idv);
    return rc;
}

/* Appends question qi to questions, or fails, in upstream's order: header,
 * the text and its uniqueness, the options, the id and its uniqueness,
 * multi_select. */
static int
parse_question(const json_t *q, size_t qi, json_t *questions, char *err, size_t errsz)
{
    char where[48];
    struct text header, text, id;
    snprintf(where, sizeof where, "questions[%zu].", qi);
    if (!json_is_object(q))
        return util_fail(err, errsz, "questions[%zu] must be an object", qi);
    if (tool_text(q, where, "header", QUESTION_HEADER_MAX_BYTES, &header, err, errsz) != 0)
        return -1;
    /* "text" is upstream's other name of the question, read only when
     * "question" is absent. */
    const char *field = json_object_get(q, "question") ? "question" : "text";
    if (tool_text(q, where, field, QUESTION_TEXT_MAX_BYTES, &text, err, errsz) != 0)
        return -1;
    if (text.s == NULL)
        return util_fail(err, errsz, "%squestion is required (a non-blank string)", where);
    if (listed(questions, "question", &text, 1))
        return util_fail(err, errsz, "two questions ask \"%.*s\"", (int)text.n, text.s);
    const json_t *opts = json_object_get(q, "options");
    if (!json_is_array(opts))
        return util_fail(err, errsz, "%soptions must be an array", where);
    if (json_array_size(opts) < QUESTION_OPTIONS_MIN ||
        json_array_size(opts) > QUESTION_OPTIONS_MAX)
        return util_fail(err, errsz, "question %zu needs between %d and %d options", qi + 1,
                         QUESTION_OPTIONS_MIN, QUESTION_OPTIONS_MAX);
    json_t *options = json_array();
    size_t oi;
    const json_t *o;
    json_array_foreach(opts, oi, o)
    {
        if (parse_option(o, qi, oi, options, err, errsz) != 0)
            goto err;
    }
    if (tool_text(q, where, "id", QUESTION_ID_MAX_BYTES, &id, err, errsz) != 0)
        goto err;
    json_t *idv = text_or_default(&id, "question-", qi);
    struct text idt = {json_string_value(idv), json_string_length(idv)};
    const json_t *multi = json_object_get(q, "multi_select");
    if (listed(questions, "id", &idt, 0))
        util_fail(err, errsz, "two questions have the id \"%s\"", idt.s);
    else if (multi && !json_is_null(multi) && !json_is_boolean(multi))
        util_fail(err, errsz, "%smulti_select must be a boolean", where);
    else {
        json_t *hv = text_or_default(&header, "Question ", qi);
        json_array_append_new(questions,
                              json_pack("{s:o, s:o, s:s%, s:O, s:b}", "id", idv, "header", hv,
                                        "question", text.s, text.n, "options", options,
                                        "multi_select", json_is_true(multi)));
        json_decref(options);
        return 0;
    }
    json_decref(idv);
err:
    json_decref(options);
    return -1;
}

/* The questions of the input: its "questions" array, or the input itself in
 * upstream's single-question shorthand (no "questions"; "question" or
 * "text", and a non-empty "options" array). NULL with err when neither. */
static const json_t *
question_list(const json_t *input, json_t **single, char *err, size_t errsz)
{
    const json_t *list = json_object_get(input, "questions");
    int shorthand = json_object_get(input, "question") || json_object_get(input, "text");
    *single = NULL;
    if (list) {
        if (!json_is_array(list))
            return util_fail(err, errsz, "questions must be an array"), NULL;
        if (shorthand)
            return util_fail(err, errsz,
                             "questions cannot be combined with a single question's "
                             "question or text field"),
                   NULL;
        return list;
    }
    const json_t *opts = json_object_get(input, "options");
    if (!shorthand || json_array_size(opts) == 0)
        return util_fail(err, errsz, "questions must be an array"), NULL;
    *single = json_pack("[O]", (json_t *)input);
    return *single;
}

/* An optional time field: absent or null, or a non-negative integer. */
static int
ms_field(const json_t *input, const char *field, int *present, int64_t *ms, char *err, size_t errsz)
{
    const json_t *v = json_object_get(input, field);
    *present = v != NULL && !json_is_null(v);
    if (!*present)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return util_fail(err, errsz, "%s must be a non-negative integer (milliseconds)", field);
    *ms = json_integer_value(v);
    return 0;
}

/* The request's expiry from expires_at_ms or expires_after_ms: 0 with *has
 * set when one is given, or -1 with err. */
static int
expiry(const json_t *input, int64_t now_ms, int *has, int64_t *at, char *err, size_t errsz)
{
    int has_after;
    int64_t after = 0;
    if (ms_field(input, "expires_at_ms", has, at, err, errsz) != 0 ||
        ms_field(input, "expires_after_ms", &has_after, &after, err, errsz) != 0)
        return -1;
    if (*has && has_after)
        return util_fail(err, errsz, "expires_at_ms and expires_after_ms cannot be combined");
    if (!has_after)
        return 0;
    if (after == 0)
        return util_fail(err, errsz, "expires_after_ms must be greater than zero");
    if (after > INT64_MAX - now_ms)
        return util_fail(err, errsz, "expires_after_ms is too large");
    *has = 1;
    *at = now_ms + after;
    return 0;
}

static int
id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= QUESTION_REQUEST_ID_MAX_BYTES && util_utf8_printable(s, n);
}

json_t *
questions_request_parse(const json_t *input, const char *request_id, const char *tool_call_id,
                        int64_t now_ms, char *err, size_t errsz)
{
    json_t *single = NULL, *questions = NULL, *req = NULL;
    int has_expiry = 0;
    int64_t expires_at = 0;
    if (!id_ok(request_id) || !id_ok(tool_call_id) || now_ms < 0) {
        util_fail(err, errsz,
                  "internal error: no request id, tool call id or time for the question");
        goto done;
    }
    if (!json_is_object(input)) {
        util_fail(err, errsz, "the input must be a JSON object");
        goto done;
    }
    const json_t *list = question_list(input, &single, err, errsz);
    if (list == NULL)
        goto done;
    if (json_array_size(list) < QUESTIONS_MIN || json_array_size(list) > QUESTIONS_MAX) {
        util_fail(err, errsz, "ask between %d and %d questions", QUESTIONS_MIN, QUESTIONS_MAX);
        goto done;
    }
    questions = json_array();
    size_t qi;
    const json_t *q;
    json_array_foreach(list, qi, q)
    {
        if (parse_question(q, qi, questions, err, errsz) != 0)
            goto done;
    }
    if (expiry(input, now_ms, &has_expiry, &expires_at, err, errsz) != 0)
        goto done;
    req = json_pack("{s:s, s:s, s:O, s:I}", "id", request_id, "tool_call_id", tool_call_id,
                    "questions", questions, "created_at_ms", (json_int_t)now_ms);
    if (has_expiry)
        json_object_set_new(req, "expires_at_ms", json_integer(expires_at));
done:
    json_decref(questions);
    json_decref(single);
    return req;
}

/* ---- the stored request, as the answers see it ---- */

struct stored_question {
    const char *id, *header, *text;
    const json_t *options; /* [{id, label, description?, preview?}] */
    int multi_select;
};

struct stored {
    const char *id;
    int has_expiry;
    int64_t expires_at_ms;
    size_t n;
    struct stored_question q[QUESTIONS_MAX];
};

static int
options_ok(const json_t *options)
{
    size_t i;
    const json_t *o;
    if (!json_is_array(options) || json_array_size(options) > QUESTION_OPTIONS_MAX)
        return 0;
    json_array_foreach(options, i, o)
    {
        if (!json_is_string(json_object_get(o, "id")) ||
            !json_is_string(json_object_get(o, "label")))
            return 0;
    }
    return 1;
}

/* Reads a request questions_request_parse made. -1 when it is not one. */
static int
stored_read(const json_t *request, struct stored *s)
{
    const json_t *questions = json_object_get(request, "questions");
    const json_t *exp = json_object_get(request, "expires_at_ms");
    s->id = json_string_value(json_object_get(request, "id"));
    s->n = json_array_size(questions);
    s->has_expiry = exp != NULL && !json_is_null(exp);
    s->expires_at_ms = json_integer_value(exp);
    if (s->id == NULL || s->n < QUESTIONS_MIN || s->n > QUESTIONS_MAX ||
        (s->has_expiry && !json_is_integer(exp)))
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        const json_t *q = json_array_get(questions, i);
        const json_t *multi = json_object_get(q, "multi_select");
        struct stored_question *sq = &s->q[i];
        sq->id = json_string_value(json_object_get(q, "id"));
        sq->header = json_string_value(json_object_get(q, "header"));
        sq->text = json_string_value(json_object_get(q, "question"));
        sq->options = json_object_get(q, "options");
        sq->multi_select = json_is_true(multi);
        if (!sq->id || !sq->header || !sq->text || !options_ok(sq->options) ||
            (multi && !json_is_boolean(multi)))
            return -1;
    }
    return 0;
}

/* The request is the one pending, and not expired: upstream finds the
 * pending request by its id first, then compares its expiry with the time
 * (expired from expires_at_ms on). */
static int
check_pending(const struct stored *s, const char *request_id, int64_t now_ms,
              struct question_verdict *v)
{
    if (strcmp(request_id, s->id) != 0)
        return questions_verdict(v, QUESTION_REQUEST_MISMATCH,
                                 "question request %s is not the pending request %s", request_id,
                                 s->id);
    if (s->has_expiry && s->expires_at_ms <= now_ms)
        return questions_verdict(v, QUESTION_EXPIRED, "question request %s expired at %lld", s->id,
                                 (long long)s->expires_at_ms);
    return 0;
}

/* ---- the bodies ---- */

/* Fails with QUESTION_BAD_BODY unless every field of obj is named. */
static int
only_fields(const json_t *obj, const char *path, const char *const *names,
            struct question_verdict *v)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        if (!util_in_list(key, names))
            return questions_verdict(v, QUESTION_BAD_BODY, "unknown field '%s%.64s'", path, key);
    }
    return 0;
}

/* obj's string field: 0 with *out its value (NULL when absent or null and
 * not required), or -1 with QUESTION_BAD_BODY. */
static int
body_string(const json_t *obj, const char *path, const char *field, size_t max, int required,
            const char **out, struct question_verdict *v)
{
    const json_t *f = json_object_get(obj, field);
    *out = NULL;
    if (f == NULL || json_is_null(f))
        return required ? questions_verdict(v, QUESTION_BAD_BODY, "field '%s%s' is required", path,
                                            field)
                        : 0;
    if (!json_is_string(f))
        return questions_verdict(v, QUESTION_BAD_BODY, "field '%s%s' must be a string", path,
                                 field);
    if (json_string_length(f) > max || memchr(json_string_value(f), '\0', json_string_length(f)))
        return questions_verdict(v, QUESTION_BAD_BODY,
                                 "field '%s%s' must be at most %zu bytes, without NUL", path, field,
                                 max);
    *out = json_string_value(f);
    return 0;
}

static const char *const body_fields[] = {"idempotency_key", "resolution", NULL};
static const char *const cancel_fields[] = {"idempotency_key", "justification", NULL};
static const char *const resolution_fields[] = {"request_id", "answers", "declined",
                                                "justification", NULL};
static const char *const answer_fields[] = {"question_id", "selected_option_ids", "freeform_answer",
                                            NULL};

/* The body's idempotency key, which the caller compares: 1 to
 * QUESTION_IDEMPOTENCY_KEY_MAX_BYTES printable bytes when present. */
static int
idempotency_key_ok(const json_t *body, struct question_verdict *v)
{
    const char *key;
    if (body_string(body, "", "idempotency_key", QUESTION_IDEMPOTENCY_KEY_MAX_BYTES, 0, &key, v) !=
        0)
        return -1;
    if (key && (*key == '\0' || !util_utf8_printable(key, strlen(key))))
        return questions_verdict(v, QUESTION_BAD_BODY,
                                 "field 'idempotency_key' must be printable and not empty");
    return 0;
}

struct answer {
    const char *question_id;
    const json_t *selected; /* an array of strings; NULL: none */
    const char *freeform;   /* NULL: none */
};

struct resolution {
    const char *request_id;
    int declined;
    const char *justification; /* NULL: none */
    size_t n;
    struct answer a[QUESTION_ANSWERS_MAX];
};

static int
read_answer(const json_t *obj, size_t i, struct answer *a, struct question_verdict *v)
{
    char path[48];
    snprintf(path, sizeof path, "resolution.answers[%zu].", i);
    if (!json_is_object(obj))
        return questions_verdict(v, QUESTION_BAD_BODY,
                                 "field 'resolution.answers[%zu]' must be an object", i);
    if (only_fields(obj, path, answer_fields, v) != 0 ||
        body_string(obj, path, "question_id", QUESTION_ID_MAX_BYTES, 1, &a->question_id, v) != 0 ||
        body_string(obj, path, "freeform_answer", QUESTION_FREEFORM_MAX_BYTES, 0, &a->freeform,
                    v) != 0)
        return -1;
    a->selected = json_object_get(obj, "selected_option_ids");
    if (json_is_null(a->selected))
        a->selected = NULL;
    if (a->selected == NULL)
        return 0;
    if (!json_is_array(a->selected) || json_array_size(a->selected) > QUESTION_SELECTED_MAX)
        return questions_verdict(v, QUESTION_BAD_BODY,
                                 "field '%sselected_option_ids' must be an array of at most %d "
                                 "strings",
                                 path, QUESTION_SELECTED_MAX);
    size_t j;
    const json_t *id;
    json_array_foreach(a->selected, j, id)
    {
        if (!json_is_string(id) || json_string_length(id) > QUESTION_ID_MAX_BYTES ||
            memchr(json_string_value(id), '\0', json_string_length(id)))
            return questions_verdict(v, QUESTION_BAD_BODY,
                                     "field '%sselected_option_ids[%zu]' must be a string of at "
                                     "most %d bytes",
                                     path, j, QUESTION_ID_MAX_BYTES);
    }
    return 0;
}

static int
read_resolution(const json_t *body, struct resolution *r, struct question_verdict *v)
{
    static const char path[] = "resolution.";
    if (!json_is_object(body))
        return questions_verdict(v, QUESTION_BAD_BODY, "the body must be a JSON object");
    const json_t *res = json_object_get(body, "resolution");
    if (only_fields(body, "", body_fields, v) != 0 || idempotency_key_ok(body, v) != 0)
        return -1;
    if (!json_is_object(res))
        return questions_verdict(v, QUESTION_BAD_BODY, "field 'resolution' must be an object");
    const json_t *answers = json_object_get(res, "answers");
    const json_t *declined = json_object_get(res, "declined");
    if (only_fields(res, path, resolution_fields, v) != 0 ||
        body_string(res, path, "request_id", QUESTION_REQUEST_ID_MAX_BYTES, 1, &r->request_id, v) !=
            0 ||
        body_string(res, path, "justification", QUESTION_JUSTIFICATION_MAX_BYTES, 0,
                    &r->justification, v) != 0)
        return -1;
    if (declined && !json_is_null(declined) && !json_is_boolean(declined))
        return questions_verdict(v, QUESTION_BAD_BODY,
                                 "field 'resolution.declined' must be a boolean");
    r->declined = json_is_true(declined);
    if (json_is_null(answers))
        answers = NULL;
    if (answers && (!json_is_array(answers) || json_array_size(answers) > QUESTION_ANSWERS_MAX))
        return questions_verdict(v, QUESTION_BAD_BODY,
                                 "field 'resolution.answers' must be an array of at most %d "
                                 "answers",
                                 QUESTION_ANSWERS_MAX);
    r->n = json_array_size(answers);
    for (size_t i = 0; i < r->n; i++)
        if (read_answer(json_array_get(answers, i), i, &r->a[i], v) != 0)
            return -1;
    return 0;
}

/* ---- the results ---- */

/* {request_id, declined, justification, message}, and reason when given:
 * what the model reads when the request ends without answers. */
static json_t *
closed_result(const char *request_id, const char *reason, const char *justification,
              const char *message)
{
    json_t *out = json_pack("{s:s, s:b, s:s?, s:s}", "request_id", request_id, "declined", 1,
                            "justification", justification, "message", message);
    if (out && reason)
        json_object_set_new(out, "reason", json_string(reason));
    return out;
}

/* The option of q with this id, or NULL. */
static const json_t *
find_option(const struct stored_question *q, const char *id)
{
    size_t i;
    const json_t *o;
    json_array_foreach(q->options, i, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "id")), id))
            return o;
    }
    return NULL;
}

static const struct answer *
find_answer(const struct resolution *r, const char *question_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->a[i].question_id, question_id))
            return &r->a[i];
    return NULL;
}

static int
blank(const char *s)
{
    while (s && is_space((unsigned char)*s))
        s++;
    return s == NULL || *s == '\0';
}

/* Checks one question's answer (upstream's order: present, one option for a
 * single-select question, each option once and the question's) and renders
 * it into answers, with its line of the summary. */
static int
render_answer(const struct stored_question *q, const struct resolution *r, json_t *answers,
              FILE *summary, struct question_verdict *v)
{
    const struct answer *a = find_answer(r, q->id);
    if (a == NULL)
        return questions_verdict(v, QUESTION_ANSWER_MISSING, "question %s has no answer", q->id);
    size_t nsel = json_array_size(a->selected);
    if (!q->multi_select && nsel > 1)
        return questions_verdict(v, QUESTION_SINGLE_SELECT_VIOLATION,
                                 "question %s allows one option only", q->id);
    json_t *selected = json_array();
    fprintf(summary, "%s%s: ", json_array_size(answers) ? "\n" : "", q->text);
    for (size_t i = 0; i < nsel; i++) {
        const char *id = json_string_value(json_array_get(a->selected, i));
        const json_t *opt = find_option(q, id);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(id, json_string_value(json_array_get(a->selected, j)))) {
                json_decref(selected);
                return questions_verdict(v, QUESTION_DUPLICATE_OPTION,
                                         "option %s is selected twice for question %s", id, q->id);
            }
        if (opt == NULL) {
            json_decref(selected);
            return questions_verdict(v, QUESTION_OPTION_NOT_FOUND, "question %s has no option %s",
                                     q->id, id);
        }
        const char *label = json_string_value(json_object_get(opt, "label"));
        fprintf(summary, "%s%s", i ? ", " : "", label);
        json_array_append_new(selected,
                              json_pack("{s:s, s:s, s:O?}", "id", id, "label", label, "description",
                                        json_object_get(opt, "description")));
    }
    if (nsel == 0 && blank(a->freeform)) {
        json_decref(selected);
        return questions_verdict(v, QUESTION_ANSWER_EMPTY,
                                 "the answer to question %s selects no option and has no text",
                                 q->id);
    }
    if (nsel == 0)
        fputs(a->freeform, summary);
    json_array_append_new(answers,
                          json_pack("{s:s, s:s, s:s, s:o, s:o, s:s?}", "question_id", q->id,
                                    "header", q->header, "question", q->text, "selected_option_ids",
                                    a->selected ? json_deep_copy(a->selected) : json_array(),
                                    "selected_options", selected, "freeform_answer", a->freeform));
    return 0;
}

/* The answers' tool result, {request_id, declined: false, summary, answers,
 * justification, message}, or NULL with v set. */
static json_t *
render_answers(const struct stored *s, const struct resolution *r, struct question_verdict *v)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(r->a[i].question_id, r->a[j].question_id)) {
                questions_verdict(v, QUESTION_DUPLICATE_ANSWER, "question %s is answered twice",
                                  r->a[i].question_id);
                return NULL;
            }
    char *text = NULL;
    size_t len = 0;
    FILE *summary = open_memstream(&text, &len);
    json_t *answers = json_array(), *out = NULL;
    if (summary == NULL) {
        questions_verdict(v, QUESTION_STORED_INVALID, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < s->n; i++)
        if (render_answer(&s->q[i], r, answers, summary, v) != 0)
            goto done;
    /* Every question has one answer now, and no question two: any answer
     * beyond one per question is to a question the request does not have. */
    if (r->n > s->n) {
        questions_verdict(v, QUESTION_UNKNOWN_ANSWER,
                          "the resolution answers questions request %s does not have", s->id);
        goto done;
    }
    fclose(summary);
    summary = NULL;
    out = json_pack("{s:s, s:b, s:s, s:O, s:s?, s:s}", "request_id", s->id, "declined", 0,
                    "summary", text, "answers", answers, "justification", r->justification,
                    "message", "The user answered your clarification request.");
    questions_verdict(v, QUESTION_OK, "ok");
done:
    if (summary)
        fclose(summary);
    free(text);
    json_decref(answers);
    return out;
}

/* Reads the stored request (NULL: the run waits for none), then checks that
 * it is the one pending and not expired. */
static int
pending(const json_t *request, const char *request_id, int64_t now_ms, struct stored *s,
        struct question_verdict *v)
{
    if (request == NULL)
        return questions_verdict(v, QUESTION_STATE_CONFLICT,
                                 "the run is not waiting for a user question");
    if (stored_read(request, s) != 0)
        return questions_verdict(v, QUESTION_STORED_INVALID,
                                 "the pending question request is malformed");
    return check_pending(s, request_id, now_ms, v);
}

int
questions_resolve(const json_t *request, const json_t *body, int64_t now_ms, json_t **result,
                  struct question_verdict *v)
{
    struct stored s;
    struct resolution r;
    json_t *out = NULL;
    if (result)
        *result = NULL;
    if (read_resolution(body, &r, v) != 0 || pending(request, r.request_id, now_ms, &s, v) != 0)
        return -1;
    if (r.declined && r.n > 0)
        return questions_verdict(v, QUESTION_DECLINED_WITH_ANSWERS,
                                 "a declined resolution must not have answers");
    if (r.declined) {
        out = closed_result(s.id, NULL, r.justification,
                            "The user declined to answer your clarification request.");
        questions_verdict(v, QUESTION_OK, "ok");
    } else if ((out = render_answers(&s, &r, v)) == NULL)
        return -1;
    if (result)
        *result = out;
    else
        json_decref(out);
    return 0;
}

int
questions_cancel(const json_t *request, const char *request_id, const json_t *body, int64_t now_ms,
                 json_t **result, struct question_verdict *v)
{
    struct stored s;
    const char *justification = NULL;
    if (result)
        *result = NULL;
    if (body && !json_is_object(body))
        return questions_verdict(v, QUESTION_BAD_BODY, "the body must be a JSON object");
    if (body && (only_fields(body, "", cancel_fields, v) != 0 || idempotency_key_ok(body, v) != 0 ||
                 body_string(body, "", "justification", QUESTION_JUSTIFICATION_MAX_BYTES, 0,
                             &justification, v) != 0))
        return -1;
    if (pending(request, request_id ? request_id : "", now_ms, &s, v) != 0)
        return -1;
    questions_verdict(v, QUESTION_OK, "ok");
    json_t *out = closed_result(s.id, "cancelled", justification,
                                "The operator cancelled your clarification request; it has no "
                                "answer.");
    if (result)
        *result = out;
    else
        json_decref(out);
    return 0;
}

json_t *
questions_expired_result(const json_t *request)
{
    struct stored s;
    char message[QUESTION_REQUEST_ID_MAX_BYTES + 128];
    if (stored_read(request, &s) != 0 || !s.has_expiry)
        return NULL;
    snprintf(message, sizeof message,
             "Your clarification request %s expired at %lld with no answer.", s.id,
             (long long)s.expires_at_ms);
    return closed_result(s.id, "expired", NULL, message);
}
