/*
 * questions: structured user questions (contract §1.8 and §8, issue 15).
 *
 * Pure: no database, no I/O, no clock. The time that decides anything is the
 * database's now_ms, which the caller passes. Three callers share it:
 *
 * - the runner, when the model calls ask_user_question: the tool's schema
 *   (questions_tool_schema), and questions_request_parse(), which turns the
 *   tool input into the request the run waits on (waiting_for_user_question)
 *   or into an error text that is the tool's result;
 * - the API, when an operator answers (POST /v1/sessions/{id}/questions,
 *   POST /v1/runs/{id}/questions: questions_resolve) or cancels
 *   (POST /v1/runs/{id}/questions/{request_id}/cancel: questions_cancel);
 *   each answers ok or exactly one of the contract's codes;
 * - the runner again, when the run resumes: the tool result the model reads
 *   (what questions_resolve and questions_cancel return, and
 *   questions_expired_result for the expiry loop).
 *
 * Every code of the contract's question errors is decided here, in
 * upstream's order of checks (docs/api.md, "Questions"). The caller passes
 * the run's pending request, or NULL when the run waits for none
 * (question_state_conflict, decided after the body's shape as upstream).
 * Whether a retry conflicts with a resolution already claimed
 * (question_resolution_conflict) is the caller's, from the run's state; it
 * builds that verdict through questions_verdict() so that the list of codes
 * stays one list.
 */
#ifndef KHEISH_QUESTIONS_H
#define KHEISH_QUESTIONS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define QUESTIONS_TOOL_NAME "ask_user_question"

/* Limits, each with its unit. The counts are upstream's; upstream has no
 * length limits, these are ours. */
#define QUESTIONS_MIN                      1
#define QUESTIONS_MAX                      4
#define QUESTION_OPTIONS_MIN               2
#define QUESTION_OPTIONS_MAX               4
#define QUESTION_ID_MAX_BYTES              128 /* a question's or an option's id */
#define QUESTION_REQUEST_ID_MAX_BYTES      256 /* a request's id, a tool call's id */
#define QUESTION_HEADER_MAX_BYTES          256
#define QUESTION_TEXT_MAX_BYTES            4096  /* the question itself */
#define QUESTION_LABEL_MAX_BYTES           256   /* an option's label */
#define QUESTION_DESCRIPTION_MAX_BYTES     2048  /* an option's description */
#define QUESTION_PREVIEW_MAX_BYTES         4096  /* an option's preview */
#define QUESTION_ANSWERS_MAX               16    /* answers in one resolution */
#define QUESTION_SELECTED_MAX              16    /* option ids one answer selects */
#define QUESTION_FREEFORM_MAX_BYTES        16384 /* a freeform answer */
#define QUESTION_JUSTIFICATION_MAX_BYTES   4096
#define QUESTION_IDEMPOTENCY_KEY_MAX_BYTES 256
#define QUESTION_BODY_MAX_BYTES            (128 * 1024) /* what the endpoints read of a body */
#define QUESTION_DETAIL_MAX_BYTES          512          /* a verdict's detail, with its NUL */

/* The tool as the model is told of it: a description, and its input schema
 * as JSON Schema text. */
extern const char questions_tool_description[];
extern const char questions_tool_schema[];

/* Turns ask_user_question's input into the request a run waits on:
 *   {id, tool_call_id, questions: [{id, header, question,
 *    options: [{id, label, description?, preview?}], multi_select}],
 *    created_at_ms, expires_at_ms?}
 * as upstream: 1-4 questions (or the single-question shorthand {question |
 * text, options, ...}), 2-4 options each; ids, headers and option ids
 * default to question-N, "Question N" and option-N; strings are trimmed;
 * question texts and option labels are unique ignoring ASCII case, ids
 * unique; expires_at_ms (absolute) or expires_after_ms (from now_ms, > 0),
 * never both. Unknown fields are ignored, as upstream. request_id is
 * upstream's "question-request-<tool_call_id>" by convention. Returns the
 * request (the caller's reference), or NULL with err holding a message for
 * the model (the tool's result). */
json_t *questions_request_parse(const json_t *input, const char *request_id,
                                const char *tool_call_id, int64_t now_ms, char *err, size_t errsz);

/* The outcomes other than ok: X(ID, HTTP status, domain, code). */
#define QUESTION_OUTCOMES(X)                                                                       \
    X(BAD_BODY, 400, NULL, "bad_request")                                                          \
    X(REQUEST_MISMATCH, 400, "questions", "question_request_mismatch")                             \
    X(OPTION_NOT_FOUND, 400, "questions", "question_option_not_found")                             \
    X(ANSWER_MISSING, 400, "questions", "question_answer_missing")                                 \
    X(DUPLICATE_ANSWER, 400, "questions", "question_duplicate_answer")                             \
    X(DUPLICATE_OPTION, 400, "questions", "question_duplicate_option")                             \
    X(DECLINED_WITH_ANSWERS, 400, "questions", "question_declined_with_answers")                   \
    X(SINGLE_SELECT_VIOLATION, 400, "questions", "question_single_select_violation")               \
    X(ANSWER_EMPTY, 400, "questions", "question_answer_empty")                                     \
    X(UNKNOWN_ANSWER, 400, "questions", "question_unknown_answer")                                 \
    X(STATE_CONFLICT, 409, "questions", "question_state_conflict")                                 \
    X(EXPIRED, 409, "questions", "question_expired")                                               \
    X(RESOLUTION_CONFLICT, 409, "questions", "question_resolution_conflict")                       \
    X(STORED_INVALID, 500, NULL, "internal_error") /* the stored request is not one we made */

#define QUESTION_OUTCOME_ENUM(id, status, domain, code) QUESTION_##id,
enum question_outcome {
    QUESTION_OK,
    QUESTION_OUTCOMES(QUESTION_OUTCOME_ENUM) QUESTION_OUTCOME_COUNT
};
#undef QUESTION_OUTCOME_ENUM

/* One decision: ok (status 200, domain and code NULL), or one outcome with
 * its status, domain (NULL: none), code and a detail for the problem
 * document. */
struct question_verdict {
    enum question_outcome outcome;
    int status;
    const char *domain;
    const char *code;
    char detail[QUESTION_DETAIL_MAX_BYTES];
};

/* Fills v with outcome o and a detail from fmt. Returns 0 for QUESTION_OK,
 * else -1. */
int questions_verdict(struct question_verdict *v, enum question_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decides an answer to the stored request (one questions_request_parse
 * made; NULL: the run waits for no question) at now_ms. body is the
 * endpoint's JSON:
 *   {idempotency_key?, resolution: {request_id, answers?: [{question_id,
 *    selected_option_ids?, freeform_answer?}], declined?, justification?}}
 * Unknown fields, wrong types and strings over their limits are
 * QUESTION_BAD_BODY. Then, in upstream's order: a run waiting for no
 * question (state_conflict), the request id
 * (request_mismatch), the expiry (expired once now_ms >= expires_at_ms),
 * declined with answers, a question answered twice, then question by
 * question in the request's order: missing, more than one option for a
 * single-select question, an option selected twice, an option the question
 * does not have, no option and no freeform text (blank counts as none);
 * last, answers to questions the request does not have.
 * Returns 0 with *result (if result is not NULL) the tool result the model
 * reads, or -1 with *result NULL; v always holds the verdict. */
int questions_resolve(const json_t *request, const json_t *body, int64_t now_ms, json_t **result,
                      struct question_verdict *v);

/* Decides a cancel of the stored request (NULL: none pending): request_id
 * is the path's, body the endpoint's JSON {idempotency_key?, justification?}
 * (NULL: none). After the body: state_conflict without a request,
 * request_mismatch when the ids differ, expired once now_ms >=
 * expires_at_ms. Returns 0 with *result the tool result for a cancelled
 * question, or -1 as questions_resolve. */
int questions_cancel(const json_t *request, const char *request_id, const json_t *body,
                     int64_t now_ms, json_t **result, struct question_verdict *v);

/* The tool result for a request that expired unanswered at expires_at_ms
 * (the expiry loop's). NULL when request is not one questions_request_parse
 * made. Its "message" is also the run's end reason. */
json_t *questions_expired_result(const json_t *request);

#endif
