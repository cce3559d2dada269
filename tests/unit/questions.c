/*
 * test-questions: common/questions.c. ask_user_question's input (defaults,
 * the shorthand, counts, uniqueness, expiry, limits), the answers (each code
 * with a minimal case, the codes' precedence, declined, expiry at its
 * boundary, multi-select, freeform, the body's limits) and cancels, and the
 * tool results the model reads.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "questions.h"

static json_t *
J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (v == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", e.text, text);
        exit(2);
    }
    return v;
}

static json_t *
parse(const char *input, int64_t now, char *err, size_t errsz)
{
    json_t *in = J(input);
    json_t *r = questions_request_parse(in, "question-request-call-1", "call-1", now, err, errsz);
    json_decref(in);
    return r;
}

/* The input is refused with a message holding want. */
#define CHECK_REFUSED(input, want)                                                                 \
    do {                                                                                           \
        char err_[256] = "";                                                                       \
        json_t *r_ = parse(input, 100, err_, sizeof err_);                                         \
        CHECK(r_ == NULL);                                                                         \
        if (strstr(err_, want) == NULL)                                                            \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, err_,      \
                    want);                                                                         \
        CHECK(strstr(err_, want) != NULL);                                                         \
        json_decref(r_);                                                                           \
    } while (0)

static void
check_equal(int line, const json_t *got, const char *want)
{
    json_t *w = J(want);
    check_count++;
    if (!json_equal((json_t *)got, w)) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "questions.c:%d: got %s\n  expected %s\n", line, g ? g : "NULL", want);
        free(g);
        check_failures++;
    }
    json_decref(w);
}
#define CHECK_JSON(got, want) check_equal(__LINE__, got, want)

/* Two questions: focus (single-select) and areas (multi-select), created at
 * 100, expiring at 1000. */
#define INPUT                                                                                      \
    "{\"questions\":[{\"id\":\"focus\",\"header\":\"Focus\",\"question\":\"Which focus?\","        \
    "\"options\":[{\"id\":\"memory\",\"label\":\"Memory\",\"description\":\"RAM\"},"               \
    "{\"id\":\"kernel\",\"label\":\"Kernel\"}]},"                                                  \
    "{\"id\":\"areas\",\"header\":\"Areas\",\"question\":\"Which areas?\",\"multi_select\":true,"  \
    "\"options\":[{\"id\":\"a\",\"label\":\"A\"},{\"id\":\"b\",\"label\":\"B\"},"                  \
    "{\"id\":\"c\",\"label\":\"C\"}]}],\"expires_at_ms\":1000}"

static json_t *
stored(void)
{
    char err[256];
    json_t *r = parse(INPUT, 100, err, sizeof err);
    if (r == NULL) {
        fprintf(stderr, "the test request does not parse: %s\n", err);
        exit(2);
    }
    return r;
}

/* A body resolving request "question-request-call-1" with these answers. */
#define BODY(answers)                                                                              \
    "{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":[" answers "]}}"
#define FOCUS(ids) "{\"question_id\":\"focus\",\"selected_option_ids\":[" ids "]}"
#define AREAS(ids) "{\"question_id\":\"areas\",\"selected_option_ids\":[" ids "]}"
#define GOOD       FOCUS("\"memory\"") "," AREAS("\"a\"")

static enum question_outcome
resolve_at(const char *body, int64_t now, json_t **result)
{
    json_t *req = stored(), *b = J(body);
    struct question_verdict v;
    int rc = questions_resolve(req, b, now, result, &v);
    CHECK((rc == 0) == (v.outcome == QUESTION_OK));
    CHECK(result == NULL || (*result != NULL) == (rc == 0));
    json_decref(req);
    json_decref(b);
    return v.outcome;
}

static enum question_outcome
resolve(const char *body)
{
    return resolve_at(body, 500, NULL);
}

static void
test_parse_defaults(void)
{
    char err[256];
    json_t *r = parse("{\"questions\":[{\"question\":\"  Which one? \",\"options\":["
                      "{\"label\":\" Yes \",\"description\":\" \"},{\"label\":\"No\",\"preview\":"
                      "\"p\"}],\"header\":\"\",\"unknown\":1}],\"other\":true}",
                      42, err, sizeof err);
    CHECK_JSON(r, "{\"id\":\"question-request-call-1\",\"tool_call_id\":\"call-1\","
                  "\"created_at_ms\":42,\"questions\":[{\"id\":\"question-1\",\"header\":"
                  "\"Question 1\",\"question\":\"Which one?\",\"multi_select\":false,\"options\":["
                  "{\"id\":\"option-1\",\"label\":\"Yes\"},{\"id\":\"option-2\",\"label\":\"No\","
                  "\"preview\":\"p\"}]}]}");
    json_decref(r);

    r = stored();
    CHECK_JSON(json_object_get(r, "expires_at_ms"), "1000");
    CHECK_JSON(json_object_get(json_array_get(json_object_get(r, "questions"), 0), "options"),
               "[{\"id\":\"memory\",\"label\":\"Memory\",\"description\":\"RAM\"},"
               "{\"id\":\"kernel\",\"label\":\"Kernel\"}]");
    json_decref(r);
}

static void
test_parse_shorthand(void)
{
    char err[256];
    json_t *r = parse("{\"text\":\"Go?\",\"options\":[{\"label\":\"y\"},{\"label\":\"n\"}]}", 1,
                      err, sizeof err);
    CHECK(r && json_array_size(json_object_get(r, "questions")) == 1);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(r, "questions"), 0), "question")),
              "Go?");
    json_decref(r);
    r = parse("{\"question\":\"Go?\",\"options\":[{\"label\":\"y\"},{\"label\":\"n\"}]}", 1, err,
              sizeof err);
    CHECK(r != NULL);
    json_decref(r);
    CHECK_REFUSED("{\"questions\":[],\"question\":\"Go?\"}", "cannot be combined");
    CHECK_REFUSED("{\"question\":\"Go?\",\"options\":[]}", "questions must be an array");
    CHECK_REFUSED("{\"options\":[{\"label\":\"y\"},{\"label\":\"n\"}]}",
                  "questions must be an array");
    CHECK_REFUSED("{\"questions\":{}}", "questions must be an array");
    CHECK_REFUSED("[]", "must be a JSON object");
    CHECK(questions_request_parse(NULL, "r", "c", 1, err, sizeof err) == NULL);
    json_t *in = J(INPUT);
    CHECK(questions_request_parse(in, NULL, "c", 1, err, sizeof err) == NULL);
    CHECK(questions_request_parse(in, "r", "", 1, err, sizeof err) == NULL);
    CHECK(strstr(err, "internal error") != NULL);
    json_decref(in);
}

#define Q(text)  "{\"question\":\"" text "\",\"options\":[{\"label\":\"y\"},{\"label\":\"n\"}]}"
#define OPT(lbl) "{\"label\":\"" lbl "\"}"

static void
test_parse_counts_and_fields(void)
{
    char err[256];
    CHECK_REFUSED("{\"questions\":[]}", "between 1 and 4 questions");
    CHECK_REFUSED("{\"questions\":[" Q("1") "," Q("2") "," Q("3") "," Q("4") "," Q("5") "]}",
                  "between 1 and 4 questions");
    json_t *r =
        parse("{\"questions\":[" Q("1") "," Q("2") "," Q("3") "," Q("4") "]}", 1, err, sizeof err);
    CHECK(r != NULL);
    json_decref(r);
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"options\":[" OPT("a") "]}]}",
                  "question 1 needs between 2 and 4 options");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"options\":[" OPT("a") "," OPT("b") "," OPT(
                      "c") "," OPT("d") "," OPT("e") "]}]}",
                  "between 2 and 4 options");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\"}]}",
                  "questions[0].options must be an array");
    CHECK_REFUSED("{\"questions\":[{\"options\":[" OPT("a") "," OPT("b") "]}]}",
                  "questions[0].question is required");
    CHECK_REFUSED(
        "{\"questions\":[{\"question\":\" \\n\",\"options\":[" OPT("a") "," OPT("b") "]}]}",
        "questions[0].question is required");
    /* "question" present but not a string: "text" is not read instead */
    CHECK_REFUSED(
        "{\"questions\":[{\"question\":1,\"text\":\"t\",\"options\":[" OPT("a") "," OPT("b") "]}]}",
        "questions[0].question must be a string");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"header\":7,\"options\":[" OPT("a") "," OPT(
                      "b") "]}]}",
                  "questions[0].header must be a string");
    CHECK_REFUSED(
        "{\"questions\":[{\"question\":\"q\",\"options\":[{\"label\":\" \"}," OPT("b") "]}]}",
        "questions[0].options[0].label is required");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"options\":[" OPT("a") ",3]}]}",
                  "questions[0].options[1] must be an object");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"options\":[" OPT(
                      "a") ",{\"label\":\"b\",\"description\":[]}]}]}",
                  "questions[0].options[1].description must be a string");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"multi_select\":\"yes\",\"options\":[" OPT(
                      "a") "," OPT("b") "]}]}",
                  "questions[0].multi_select must be a boolean");
    CHECK_REFUSED("{\"questions\":[7]}", "questions[0] must be an object");
}

static void
test_parse_uniqueness(void)
{
    CHECK_REFUSED("{\"questions\":[" Q("Why?") "," Q("why?") "]}", "two questions ask");
    CHECK_REFUSED(
        "{\"questions\":[{\"id\":\"x\",\"question\":\"1\",\"options\":[" OPT("a") "," OPT(
            "b") "]},{\"id\":\"x\",\"question\":\"2\",\"options\":[" OPT("a") "," OPT("b") "]}]}",
        "two questions have the id \"x\"");
    /* a given id may collide with a default one */
    CHECK_REFUSED("{\"questions\":[{\"question\":\"1\",\"id\":\"question-2\",\"options\":[" OPT(
                      "a") "," OPT("b") "]}," Q("2") "]}",
                  "two questions have the id \"question-2\"");
    CHECK_REFUSED(
        "{\"questions\":[{\"question\":\"q\",\"options\":[" OPT("Yes") "," OPT("YES") "]}]}",
        "question 1 has two options with the label \"YES\"");
    CHECK_REFUSED("{\"questions\":[{\"question\":\"q\",\"options\":[{\"label\":\"a\",\"id\":"
                  "\"option-2\"}," OPT("b") "]}]}",
                  "question 1 has two options with the id \"option-2\"");
}

static void
test_parse_expiry(void)
{
    char err[256];
    json_t *r =
        parse("{\"questions\":[" Q("q") "],\"expires_after_ms\":250}", 1000, err, sizeof err);
    CHECK_JSON(json_object_get(r, "expires_at_ms"), "1250");
    json_decref(r);
    /* upstream takes an absolute time as given, even a past one */
    r = parse("{\"questions\":[" Q("q") "],\"expires_at_ms\":5,\"expires_after_ms\":null}", 1000,
              err, sizeof err);
    CHECK_JSON(json_object_get(r, "expires_at_ms"), "5");
    json_decref(r);
    r = parse("{\"questions\":[" Q("q") "],\"expires_at_ms\":null}", 1000, err, sizeof err);
    CHECK(r && json_object_get(r, "expires_at_ms") == NULL);
    json_decref(r);
    CHECK_REFUSED("{\"questions\":[" Q("q") "],\"expires_at_ms\":5,\"expires_after_ms\":5}",
                  "cannot be combined");
    CHECK_REFUSED("{\"questions\":[" Q("q") "],\"expires_after_ms\":0}", "greater than zero");
    CHECK_REFUSED("{\"questions\":[" Q("q") "],\"expires_after_ms\":-1}", "non-negative integer");
    CHECK_REFUSED("{\"questions\":[" Q("q") "],\"expires_at_ms\":1.5}", "non-negative integer");
    CHECK_REFUSED("{\"questions\":[" Q("q") "],\"expires_at_ms\":\"5\"}", "non-negative integer");
    CHECK_REFUSED("{\"questions\":[" Q("q") "],\"expires_after_ms\":9223372036854775800}",
                  "too large");
}

/* A question whose field is n bytes of 'x' (the rest minimal). */
static json_t *
with_field(const char *field, size_t n, const char *in_option, char *err, size_t errsz)
{
    char *x = malloc(n + 1);
    memset(x, 'x', n);
    x[n] = '\0';
    json_t *opt = json_pack("{s:s}", "label", "b");
    json_t *q = json_pack("{s:s, s:[{s:s}, o]}", "question", "q", "options", "label", "a", opt);
    json_object_set_new(in_option ? opt : q, field, json_string(x));
    json_t *in = json_pack("{s:[o]}", "questions", q);
    json_t *r = questions_request_parse(in, "r", "c", 1, err, errsz);
    json_decref(in);
    free(x);
    return r;
}

static void
test_parse_limits(void)
{
    static const struct {
        const char *field;
        size_t max;
        int in_option;
    } limits[] = {
        {"header", QUESTION_HEADER_MAX_BYTES, 0},
        {"question", QUESTION_TEXT_MAX_BYTES, 0},
        {"id", QUESTION_ID_MAX_BYTES, 0},
        {"label", QUESTION_LABEL_MAX_BYTES, 1},
        {"id", QUESTION_ID_MAX_BYTES, 1},
        {"description", QUESTION_DESCRIPTION_MAX_BYTES, 1},
        {"preview", QUESTION_PREVIEW_MAX_BYTES, 1},
    };
    char err[256];
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        json_t *r = with_field(limits[i].field, limits[i].max, limits[i].in_option ? "" : NULL, err,
                               sizeof err);
        CHECK(r != NULL);
        json_decref(r);
        r = with_field(limits[i].field, limits[i].max + 1, limits[i].in_option ? "" : NULL, err,
                       sizeof err);
        CHECK(r == NULL && strstr(err, "is longer than") != NULL);
        json_decref(r);
    }
    CHECK_REFUSED(
        "{\"questions\":[{\"question\":\"q\",\"options\":[" OPT("a\\u0000b") "," OPT("b") "]}]}",
        "must not contain NUL");
}

static void
test_schema(void)
{
    json_t *s = J(questions_tool_schema);
    CHECK_STR(json_string_value(json_object_get(s, "type")), "object");
    CHECK_JSON(json_object_get(s, "required"), "[\"questions\"]");
    json_t *item =
        json_object_get(json_object_get(json_object_get(s, "properties"), "questions"), "items");
    CHECK_JSON(json_object_get(item, "required"), "[\"question\",\"options\"]");
    CHECK(json_object_get(json_object_get(item, "properties"), "multi_select") != NULL);
    CHECK(json_object_get(json_object_get(s, "properties"), "expires_after_ms") != NULL);
    json_decref(s);
    CHECK(strstr(questions_tool_description, "1 to 4 questions") != NULL);
    CHECK_STR(QUESTIONS_TOOL_NAME, "ask_user_question");
}

static void
test_each_code(void)
{
    CHECK(resolve(BODY(GOOD)) == QUESTION_OK);
    CHECK(resolve("{\"resolution\":{\"request_id\":\"other\",\"answers\":[" GOOD "]}}") ==
          QUESTION_REQUEST_MISMATCH);
    CHECK(resolve_at(BODY(GOOD), 1000, NULL) == QUESTION_EXPIRED);
    CHECK(resolve(BODY(FOCUS("\"disk\"") "," AREAS("\"a\""))) == QUESTION_OPTION_NOT_FOUND);
    CHECK(resolve(BODY(FOCUS("\"memory\""))) == QUESTION_ANSWER_MISSING);
    CHECK(resolve(BODY(GOOD "," FOCUS("\"kernel\""))) == QUESTION_DUPLICATE_ANSWER);
    CHECK(resolve(BODY(FOCUS("\"memory\"") "," AREAS("\"a\",\"a\""))) == QUESTION_DUPLICATE_OPTION);
    CHECK(resolve("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"declined\":true,"
                  "\"answers\":[" GOOD "]}}") == QUESTION_DECLINED_WITH_ANSWERS);
    CHECK(resolve(BODY(FOCUS("\"memory\",\"kernel\"") "," AREAS("\"a\""))) ==
          QUESTION_SINGLE_SELECT_VIOLATION);
    CHECK(resolve(BODY(FOCUS("") "," AREAS("\"a\""))) == QUESTION_ANSWER_EMPTY);
    CHECK(resolve(BODY(GOOD ",{\"question_id\":\"extra\",\"freeform_answer\":\"x\"}")) ==
          QUESTION_UNKNOWN_ANSWER);
    CHECK(resolve("{\"resolution\":{}}") == QUESTION_BAD_BODY);

    /* the verdict carries the contract's status, domain and code */
    json_t *req = stored(), *b = J(BODY(FOCUS("\"memory\"")));
    struct question_verdict v;
    CHECK(questions_resolve(req, b, 500, NULL, &v) == -1);
    CHECK(v.status == 400);
    CHECK_STR(v.domain, "questions");
    CHECK_STR(v.code, "question_answer_missing");
    CHECK_STR(v.detail, "question areas has no answer");
    json_decref(b);
    b = J(BODY(GOOD));
    CHECK(questions_resolve(req, b, 1000, NULL, &v) == -1);
    CHECK(v.status == 409);
    CHECK_STR(v.code, "question_expired");
    CHECK_STR(v.detail, "question request question-request-call-1 expired at 1000");
    CHECK(questions_resolve(req, b, 999, NULL, &v) == 0 && v.status == 200 && v.code == NULL);
    json_decref(b);
    json_decref(req);

    /* no pending request: the state conflict, after the body's shape */
    b = J(BODY(GOOD));
    CHECK(questions_resolve(NULL, b, 1, NULL, &v) == -1);
    CHECK(v.status == 409);
    CHECK_STR(v.code, "question_state_conflict");
    CHECK(questions_cancel(NULL, "question-request-call-1", NULL, 1, NULL, &v) == -1);
    CHECK_STR(v.code, "question_state_conflict");
    json_decref(b);
    b = J("{\"resolution\":{\"request_id\":7}}");
    CHECK(questions_resolve(NULL, b, 1, NULL, &v) == -1);
    CHECK_STR(v.code, "bad_request");
    json_decref(b);

    /* the caller's codes come from the same table */
    CHECK(questions_verdict(&v, QUESTION_STATE_CONFLICT, "run %s is not waiting", "run-1") == -1);
    CHECK(v.status == 409);
    CHECK_STR(v.domain, "questions");
    CHECK_STR(v.code, "question_state_conflict");
    CHECK_STR(v.detail, "run run-1 is not waiting");
    questions_verdict(&v, QUESTION_RESOLUTION_CONFLICT, "x");
    CHECK(v.status == 409);
    CHECK_STR(v.code, "question_resolution_conflict");
    questions_verdict(&v, QUESTION_BAD_BODY, "x");
    CHECK(v.status == 400 && v.domain == NULL);
    CHECK_STR(v.code, "bad_request");
    for (int i = 1; i < QUESTION_OUTCOME_COUNT; i++) {
        questions_verdict(&v, (enum question_outcome)i, "x");
        CHECK(v.code != NULL && (v.status == 400 || v.status == 409 || v.status == 500));
        for (int j = 1; j < i; j++) {
            struct question_verdict w;
            questions_verdict(&w, (enum question_outcome)j, "x");
            CHECK(strcmp(v.code, w.code) != 0);
        }
    }
}

/* When several codes apply, the first in upstream's order of checks wins. */
static void
test_precedence(void)
{
    /* a bad body before anything the request decides */
    CHECK(resolve_at("{\"resolution\":{\"request_id\":\"other\",\"declined\":1}}", 2000, NULL) ==
          QUESTION_BAD_BODY);
    /* the request's id, then its expiry */
    CHECK(resolve_at("{\"resolution\":{\"request_id\":\"other\"}}", 2000, NULL) ==
          QUESTION_REQUEST_MISMATCH);
    CHECK(resolve_at("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"declined\":"
                     "true,\"answers\":[" GOOD "]}}",
                     2000, NULL) == QUESTION_EXPIRED);
    /* declined with answers before a question answered twice */
    CHECK(resolve("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"declined\":true,"
                  "\"answers\":[" GOOD "," GOOD "]}}") == QUESTION_DECLINED_WITH_ANSWERS);
    /* answered twice before anything question by question */
    CHECK(resolve(BODY(FOCUS("\"nope\"") "," FOCUS("\"nope\""))) == QUESTION_DUPLICATE_ANSWER);
    /* questions in the request's order, whatever the answers' order */
    CHECK(resolve(BODY(AREAS("\"zz\"") "," FOCUS("\"memory\",\"kernel\""))) ==
          QUESTION_SINGLE_SELECT_VIOLATION);
    CHECK(resolve(BODY(AREAS("\"a\""))) == QUESTION_ANSWER_MISSING);
    CHECK(resolve(BODY(FOCUS("\"nope\""))) == QUESTION_OPTION_NOT_FOUND);
    CHECK(resolve(BODY(FOCUS("") ",{\"question_id\":\"extra\"}")) == QUESTION_ANSWER_EMPTY);
    /* missing before an unknown answer */
    CHECK(resolve(BODY(FOCUS("\"memory\"") ",{\"question_id\":\"extra\"}")) ==
          QUESTION_ANSWER_MISSING);
    /* a single-select question's count before its options */
    CHECK(resolve(BODY(FOCUS("\"memory\",\"memory\"") "," AREAS("\"a\""))) ==
          QUESTION_SINGLE_SELECT_VIOLATION);
    /* option by option: the first failing one decides */
    CHECK(resolve(BODY(FOCUS("\"memory\"") "," AREAS("\"a\",\"zz\",\"a\""))) ==
          QUESTION_OPTION_NOT_FOUND);
    CHECK(resolve(BODY(FOCUS("\"memory\"") "," AREAS("\"a\",\"a\",\"zz\""))) ==
          QUESTION_DUPLICATE_OPTION);
    /* the unknown answer last */
    CHECK(resolve(BODY(GOOD ",{\"question_id\":\"extra\",\"selected_option_ids\":[\"zz\"]}")) ==
          QUESTION_UNKNOWN_ANSWER);
}

static void
test_answered(void)
{
    json_t *out = NULL;
    CHECK(resolve_at(BODY(FOCUS("\"memory\"") ",{\"question_id\":\"areas\",\"selected_option_ids\":"
                                              "[\"c\",\"a\"],\"freeform_answer\":\"and more\"}"),
                     999, &out) == QUESTION_OK);
    CHECK_JSON(out, "{\"request_id\":\"question-request-call-1\",\"declined\":false,\"summary\":"
                    "\"Which focus?: Memory\\nWhich areas?: C, A\",\"justification\":null,"
                    "\"message\":\"The user answered your clarification request.\",\"answers\":["
                    "{\"question_id\":\"focus\",\"header\":\"Focus\",\"question\":\"Which focus?\","
                    "\"selected_option_ids\":[\"memory\"],\"selected_options\":[{\"id\":\"memory\","
                    "\"label\":\"Memory\",\"description\":\"RAM\"}],\"freeform_answer\":null},"
                    "{\"question_id\":\"areas\",\"header\":\"Areas\",\"question\":\"Which areas?\","
                    "\"selected_option_ids\":[\"c\",\"a\"],\"selected_options\":[{\"id\":\"c\","
                    "\"label\":\"C\",\"description\":null},{\"id\":\"a\",\"label\":\"A\","
                    "\"description\":null}],\"freeform_answer\":\"and more\"}]}");
    json_decref(out);

    /* freeform alone answers a question, as the summary says */
    out = NULL;
    CHECK(resolve_at("{\"idempotency_key\":\"k-1\",\"resolution\":{\"request_id\":"
                     "\"question-request-call-1\",\"justification\":\"by ops\",\"answers\":["
                     "{\"question_id\":\"focus\",\"freeform_answer\":\" neither \"},"
                     "{\"question_id\":\"areas\",\"selected_option_ids\":null,\"freeform_answer\":"
                     "\"x\"}],\"declined\":false}}",
                     0, &out) == QUESTION_OK);
    CHECK_STR(json_string_value(json_object_get(out, "summary")),
              "Which focus?:  neither \nWhich areas?: x");
    CHECK_STR(json_string_value(json_object_get(out, "justification")), "by ops");
    json_decref(out);
    /* blank freeform text is no answer */
    CHECK(resolve(BODY("{\"question_id\":\"focus\",\"freeform_answer\":\" \\t\"}," AREAS(
              "\"a\""))) == QUESTION_ANSWER_EMPTY);
    CHECK(resolve(BODY("{\"question_id\":\"focus\",\"freeform_answer\":null}," AREAS("\"a\""))) ==
          QUESTION_ANSWER_EMPTY);
    /* multi-select takes every option once */
    CHECK(resolve(BODY(FOCUS("\"kernel\"") "," AREAS("\"a\",\"b\",\"c\""))) == QUESTION_OK);
}

static void
test_declined(void)
{
    json_t *out = NULL;
    CHECK(resolve_at("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"declined\":"
                     "true,\"answers\":[],\"justification\":\"not now\"}}",
                     500, &out) == QUESTION_OK);
    CHECK_JSON(out, "{\"request_id\":\"question-request-call-1\",\"declined\":true,"
                    "\"justification\":\"not now\",\"message\":\"The user declined to answer your "
                    "clarification request.\"}");
    json_decref(out);
    CHECK(resolve(
              "{\"resolution\":{\"request_id\":\"question-request-call-1\",\"declined\":true}}") ==
          QUESTION_OK);
}

static void
test_expiry_boundary(void)
{
    CHECK(resolve_at(BODY(GOOD), 999, NULL) == QUESTION_OK);
    CHECK(resolve_at(BODY(GOOD), 1000, NULL) == QUESTION_EXPIRED);
    CHECK(resolve_at(BODY(GOOD), 1001, NULL) == QUESTION_EXPIRED);
    /* no expiry: never expired */
    char err[256];
    json_t *req = parse("{\"questions\":[{\"id\":\"q\",\"question\":\"q\",\"options\":[{\"id\":"
                        "\"y\",\"label\":\"y\"},{\"label\":\"n\"}]}]}",
                        1, err, sizeof err);
    json_t *b = J("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":["
                  "{\"question_id\":\"q\",\"selected_option_ids\":[\"y\"]}]}}");
    struct question_verdict v;
    CHECK(questions_resolve(req, b, INT64_MAX, NULL, &v) == 0);
    CHECK(questions_expired_result(req) == NULL);
    json_decref(b);
    json_decref(req);
}

static void
test_body_limits(void)
{
    CHECK(resolve("[]") == QUESTION_BAD_BODY);
    CHECK(resolve("{\"resolution\":[]}") == QUESTION_BAD_BODY);
    CHECK(resolve("{\"resolution\":{\"request_id\":\"question-request-call-1\"},\"x\":1}") ==
          QUESTION_BAD_BODY);
    CHECK(resolve("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"x\":1}}") ==
          QUESTION_BAD_BODY);
    CHECK(resolve(BODY("{\"question_id\":\"focus\",\"x\":1}")) == QUESTION_BAD_BODY);
    CHECK(resolve(BODY("{\"question_id\":7}")) == QUESTION_BAD_BODY);
    CHECK(resolve(BODY("{}")) == QUESTION_BAD_BODY);
    CHECK(resolve(BODY("7")) == QUESTION_BAD_BODY);
    CHECK(resolve(BODY(FOCUS("7"))) == QUESTION_BAD_BODY);
    CHECK(resolve(BODY("{\"question_id\":\"focus\",\"selected_option_ids\":\"memory\"}")) ==
          QUESTION_BAD_BODY);
    CHECK(resolve("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":{}}}") ==
          QUESTION_BAD_BODY);
    CHECK(resolve("{\"resolution\":{\"request_id\":\"question-request-call-1\",\"declined\":"
                  "\"no\"}}") == QUESTION_BAD_BODY);
    CHECK(resolve("{\"idempotency_key\":\"\",\"resolution\":{\"request_id\":\"r\"}}") ==
          QUESTION_BAD_BODY);
    CHECK(resolve("{\"idempotency_key\":\"a\\nb\",\"resolution\":{\"request_id\":\"r\"}}") ==
          QUESTION_BAD_BODY);
    CHECK(resolve(BODY("{\"question_id\":\"fo\\u0000cus\"}")) == QUESTION_BAD_BODY);

    /* counts: answers, selected ids */
    char body[4096];
    int n = snprintf(body, sizeof body,
                     "{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":[");
    for (int i = 0; i <= QUESTION_ANSWERS_MAX; i++)
        n += snprintf(body + n, sizeof body - n, "%s{\"question_id\":\"q%d\"}", i ? "," : "", i);
    snprintf(body + n, sizeof body - n, "]}}");
    CHECK(resolve(body) == QUESTION_BAD_BODY);
    n = snprintf(body, sizeof body,
                 "{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":["
                 "{\"question_id\":\"areas\",\"selected_option_ids\":[");
    for (int i = 0; i <= QUESTION_SELECTED_MAX; i++)
        n += snprintf(body + n, sizeof body - n, "%s\"o%d\"", i ? "," : "", i);
    snprintf(body + n, sizeof body - n, "]}]}}");
    CHECK(resolve(body) == QUESTION_BAD_BODY);

    /* string lengths: at the limit the body is read, one byte over it is not */
    static const struct {
        const char *fmt;
        size_t max;
    } strings[] = {
        {"{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":[" FOCUS(
             "\"memory\"") ",{\"question_id\":\"areas\",\"freeform_answer\":\"%s\"}]}}",
         QUESTION_FREEFORM_MAX_BYTES},
        {"{\"resolution\":{\"request_id\":\"question-request-call-1\",\"justification\":\"%s\","
         "\"declined\":true}}",
         QUESTION_JUSTIFICATION_MAX_BYTES},
        {"{\"idempotency_key\":\"%s\",\"resolution\":{\"request_id\":\"question-request-call-1\","
         "\"declined\":true}}",
         QUESTION_IDEMPOTENCY_KEY_MAX_BYTES},
        {"{\"resolution\":{\"request_id\":\"%s\"}}", QUESTION_REQUEST_ID_MAX_BYTES},
        {"{\"resolution\":{\"request_id\":\"question-request-call-1\",\"answers\":["
         "{\"question_id\":\"%s\"}]}}",
         QUESTION_ID_MAX_BYTES},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        for (size_t extra = 0; extra < 2; extra++) {
            char *text = malloc(strings[i].max + 2), *doc = malloc(strings[i].max + 512);
            memset(text, 'x', strings[i].max + extra);
            text[strings[i].max + extra] = '\0';
            snprintf(doc, strings[i].max + 512, strings[i].fmt, text);
            enum question_outcome o = resolve(doc);
            CHECK(extra ? o == QUESTION_BAD_BODY : o != QUESTION_BAD_BODY);
            free(text);
            free(doc);
        }
}

static void
test_stored_invalid(void)
{
    static const char *const bad[] = {
        "{}",
        "{\"id\":\"r\",\"questions\":[]}",
        "{\"id\":\"r\",\"questions\":[{\"id\":\"q\",\"header\":\"h\",\"question\":\"q\","
        "\"options\":[{\"id\":1,\"label\":\"l\"}]}]}",
        "{\"id\":\"r\",\"questions\":[{\"id\":\"q\",\"header\":\"h\",\"question\":\"q\","
        "\"options\":[]}],\"expires_at_ms\":\"soon\"}",
        "{\"id\":\"r\",\"questions\":[{\"id\":\"q\",\"question\":\"q\",\"options\":[]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *req = J(bad[i]), *b = J("{\"resolution\":{\"request_id\":\"r\"}}");
        struct question_verdict v;
        CHECK(questions_resolve(req, b, 1, NULL, &v) == -1);
        CHECK(v.outcome == QUESTION_STORED_INVALID && v.status == 500);
        CHECK(questions_cancel(req, "r", NULL, 1, NULL, &v) == -1);
        CHECK(v.outcome == QUESTION_STORED_INVALID);
        CHECK(questions_expired_result(req) == NULL);
        json_decref(req);
        json_decref(b);
    }
}

static enum question_outcome
cancel(const char *request_id, const char *body, int64_t now, json_t **out)
{
    json_t *req = stored(), *b = body ? J(body) : NULL;
    struct question_verdict v;
    int rc = questions_cancel(req, request_id, b, now, out, &v);
    CHECK((rc == 0) == (v.outcome == QUESTION_OK));
    json_decref(req);
    json_decref(b);
    return v.outcome;
}

static void
test_cancel(void)
{
    json_t *out = NULL;
    CHECK(cancel("question-request-call-1",
                 "{\"justification\":\"wrong question\","
                 "\"idempotency_key\":\"k\"}",
                 999, &out) == QUESTION_OK);
    CHECK_JSON(out, "{\"request_id\":\"question-request-call-1\",\"declined\":true,\"reason\":"
                    "\"cancelled\",\"justification\":\"wrong question\",\"message\":\"The "
                    "operator cancelled your clarification request; it has no answer.\"}");
    json_decref(out);
    CHECK(cancel("question-request-call-1", NULL, 999, NULL) == QUESTION_OK);
    CHECK(cancel("question-request-call-1", "{}", 999, NULL) == QUESTION_OK);
    CHECK(cancel("question-request-call-2", NULL, 999, NULL) == QUESTION_REQUEST_MISMATCH);
    CHECK(cancel(NULL, NULL, 999, NULL) == QUESTION_REQUEST_MISMATCH);
    CHECK(cancel("question-request-call-2", NULL, 1000, NULL) == QUESTION_REQUEST_MISMATCH);
    CHECK(cancel("question-request-call-1", NULL, 1000, NULL) == QUESTION_EXPIRED);
    CHECK(cancel("question-request-call-1", "{\"reason\":\"x\"}", 1, NULL) == QUESTION_BAD_BODY);
    CHECK(cancel("question-request-call-1", "[]", 1, NULL) == QUESTION_BAD_BODY);
    CHECK(cancel("question-request-call-1", "{\"justification\":3}", 1, NULL) == QUESTION_BAD_BODY);
}

static void
test_expired_result(void)
{
    json_t *req = stored(), *out = questions_expired_result(req);
    CHECK_JSON(out, "{\"request_id\":\"question-request-call-1\",\"declined\":true,\"reason\":"
                    "\"expired\",\"justification\":null,\"message\":\"Your clarification request "
                    "question-request-call-1 expired at 1000 with no answer.\"}");
    json_decref(out);
    json_decref(req);
}

int
main(void)
{
    test_parse_defaults();
    test_parse_shorthand();
    test_parse_counts_and_fields();
    test_parse_uniqueness();
    test_parse_expiry();
    test_parse_limits();
    test_schema();
    test_each_code();
    test_precedence();
    test_answered();
    test_declined();
    test_expiry_boundary();
    test_body_limits();
    test_stored_invalid();
    test_cancel();
    test_expired_result();
    return check_report("test-questions");
}
