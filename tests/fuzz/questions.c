/*
 * fuzz-questions: a time byte, then ask_user_question's input (JSON),
 * optionally followed by a NUL and an answer's body (JSON), through
 * common/questions.c. The input is parsed at 1000 ms; an accepted request
 * holds 1-4 questions of 2-4 options, ids unique, texts trimmed and within
 * their limits, and answering each question with its first option before
 * the expiry is ok. The body is decided at 999 to 1002 ms (the time byte):
 * its verdict is the outcome table's row, a result comes with ok only, an
 * ok answer renders every question once, an expired request is never
 * answered nor cancelled, and a cancel without a body is ok exactly when the
 * request has not expired; with no pending request, a body is refused for
 * its shape or for the run's state. A refused input gets a message.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "questions.h"

#define NOW 1000

static int
trimmed(const json_t *s, size_t max)
{
    const char *t = json_string_value(s);
    size_t n = json_string_length(s);
    return t && n > 0 && n <= max && strchr(" \t\n\v\f\r", t[0]) == NULL &&
           strchr(" \t\n\v\f\r", t[n - 1]) == NULL;
}

static int
unique_ids(const json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_object_get(json_array_get(list, i), "id"),
                           json_object_get(json_array_get(list, j), "id")))
                return 0;
    return 1;
}

static void
check_request(const json_t *req)
{
    const json_t *questions = json_object_get(req, "questions");
    size_t nq = json_array_size(questions);
    FUZZ_CHECK(nq >= QUESTIONS_MIN && nq <= QUESTIONS_MAX && unique_ids(questions));
    FUZZ_CHECK(json_integer_value(json_object_get(req, "created_at_ms")) == NOW);
    for (size_t i = 0; i < nq; i++) {
        const json_t *q = json_array_get(questions, i), *opts = json_object_get(q, "options");
        FUZZ_CHECK(trimmed(json_object_get(q, "id"), QUESTION_ID_MAX_BYTES));
        FUZZ_CHECK(trimmed(json_object_get(q, "header"), QUESTION_HEADER_MAX_BYTES));
        FUZZ_CHECK(trimmed(json_object_get(q, "question"), QUESTION_TEXT_MAX_BYTES));
        FUZZ_CHECK(json_is_boolean(json_object_get(q, "multi_select")));
        FUZZ_CHECK(json_array_size(opts) >= QUESTION_OPTIONS_MIN &&
                   json_array_size(opts) <= QUESTION_OPTIONS_MAX && unique_ids(opts));
        for (size_t j = 0; j < json_array_size(opts); j++) {
            const json_t *o = json_array_get(opts, j);
            FUZZ_CHECK(trimmed(json_object_get(o, "label"), QUESTION_LABEL_MAX_BYTES));
            FUZZ_CHECK(trimmed(json_object_get(o, "id"), QUESTION_ID_MAX_BYTES));
        }
    }
}

/* Answers every question with its first option, one millisecond before the
 * expiry (or at NOW without one): ok. */
static void
check_first_options(const json_t *req)
{
    const json_t *exp = json_object_get(req, "expires_at_ms");
    if (exp && json_integer_value(exp) == 0)
        return;
    json_t *answers = json_array();
    size_t i;
    const json_t *q;
    json_array_foreach(json_object_get(req, "questions"), i, q)
    {
        const json_t *opt = json_array_get(json_object_get(q, "options"), 0);
        json_array_append_new(answers,
                              json_pack("{s:O, s:[O]}", "question_id", json_object_get(q, "id"),
                                        "selected_option_ids", json_object_get(opt, "id")));
    }
    json_t *body = json_pack("{s:{s:O, s:o}}", "resolution", "request_id",
                             json_object_get(req, "id"), "answers", answers);
    struct question_verdict v;
    json_t *out = NULL;
    int64_t at = exp ? json_integer_value(exp) - 1 : NOW;
    FUZZ_CHECK(questions_resolve(req, body, at, &out, &v) == 0 && v.outcome == QUESTION_OK);
    FUZZ_CHECK(json_array_size(json_object_get(out, "answers")) ==
               json_array_size(json_object_get(req, "questions")));
    json_decref(out);
    json_decref(body);
}

static void
check_verdict(const struct question_verdict *v, int rc, const json_t *out)
{
    struct question_verdict row;
    FUZZ_CHECK((rc == 0) == (v->outcome == QUESTION_OK) && (out != NULL) == (rc == 0));
    FUZZ_CHECK(v->outcome >= QUESTION_OK && v->outcome < QUESTION_OUTCOME_COUNT);
    questions_verdict(&row, v->outcome, "x");
    FUZZ_CHECK(row.status == v->status && row.code == v->code && row.domain == v->domain);
    FUZZ_CHECK(strlen(v->detail) < sizeof v->detail);
}

static void
check_body(const json_t *req, const json_t *body, int64_t at)
{
    const json_t *exp = json_object_get(req, "expires_at_ms");
    int expired = exp && json_integer_value(exp) <= at;
    struct question_verdict v;
    json_t *out = NULL;
    int rc = questions_resolve(req, body, at, &out, &v);
    check_verdict(&v, rc, out);
    FUZZ_CHECK(!(expired && rc == 0));
    FUZZ_CHECK(v.outcome != QUESTION_STORED_INVALID);
    if (rc == 0) {
        FUZZ_CHECK(json_equal(json_object_get(out, "request_id"), json_object_get(req, "id")));
        if (json_is_false(json_object_get(out, "declined")))
            FUZZ_CHECK(json_array_size(json_object_get(out, "answers")) ==
                       json_array_size(json_object_get(req, "questions")));
    }
    json_decref(out);
    questions_resolve(NULL, body, at, NULL, &v);
    FUZZ_CHECK(v.outcome == QUESTION_BAD_BODY || v.outcome == QUESTION_STATE_CONFLICT);

    out = NULL;
    rc = questions_cancel(req, json_string_value(json_object_get(req, "id")), body, at, &out, &v);
    check_verdict(&v, rc, out);
    FUZZ_CHECK(!(expired && rc == 0));
    json_decref(out);
    rc = questions_cancel(req, json_string_value(json_object_get(req, "id")), NULL, at, NULL, &v);
    FUZZ_CHECK((rc == 0) == !expired);
    out = questions_expired_result(req);
    FUZZ_CHECK((out != NULL) == (exp != NULL));
    json_decref(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t at = NOW - 1 + data[0] % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *nul = memchr(text, '\0', len);
    size_t input_len = nul ? (size_t)(nul - text) : len;
    json_t *input = json_loadb(text, input_len,
                               JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (input == NULL)
        return 0;
    char err[256] = "";
    json_t *req =
        questions_request_parse(input, "question-request-call-1", "call-1", NOW, err, sizeof err);
    if (req == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        json_decref(input);
        return 0;
    }
    check_request(req);
    check_first_options(req);
    if (nul) {
        json_t *body = json_loadb(nul + 1, len - input_len - 1,
                                  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
        if (body)
            check_body(req, body, at);
        json_decref(body);
    }
    json_decref(req);
    json_decref(input);
    return 0;
}
