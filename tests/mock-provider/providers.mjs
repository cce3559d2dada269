// The three wire dialects the mock provider speaks: OpenAI Responses, OpenAI
// chat completions (also OpenRouter's /api/v1 variant and any compatible
// base_url) and Anthropic Messages. Each dialect knows its credential header,
// its error shape, how to read a conversation out of a request body, and how
// to render a reply as one JSON body or as SSE frames.
//
// A frame is { event, data } (data an object, or a raw string such as
// `[DONE]`) or { comment }. frames() returns { head, deltas, tail }: the
// frames before the first text delta, one frame per delta, and the closing
// frames, so the server can cut or garble a stream at a known place.
import { randomBytes } from 'node:crypto';

const hex = (n) => randomBytes(n).toString('hex');
const tokens = (s) => Math.max(1, Math.ceil(s.length / 4));

/*
 * The text of a message `content`: a string, or an array of parts of which
 * the text-like ones (`text`, `input_text`, `output_text`, a tool result's
 * string content) are joined.
 */
export function textOf(content) {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    return content
        .map((p) => (typeof p === 'string' ? p : typeof p?.text === 'string' ? p.text : typeof p?.content === 'string' ? p.content : ''))
        .join('');
}

function missing(body, field, check) {
    return check(body[field]) ? null : { message: `Missing required parameter: '${field}'.`, param: field };
}
const isStr = (v) => typeof v === 'string' && v.length > 0;
const isList = (v) => Array.isArray(v) && v.length > 0;

// ---- OpenAI (Responses and chat completions share errors and auth) ----

const OPENAI_TYPES = { 401: 'invalid_request_error', 403: 'permission_error', 429: 'requests' };

function openaiError(status, message, { code = null, param = null, variant } = {}) {
    if (variant === 'openrouter') return { error: { code: status, message, metadata: null } };
    const type = OPENAI_TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
    if (status === 429 && code === null) code = 'rate_limit_exceeded';
    return { error: { message, type, param, code } };
}

function bearer(headers) {
    const m = /^Bearer\s+(\S.*)$/i.exec(headers.authorization ?? '');
    return m ? m[1].trim() : null;
}

const openaiBase = {
    requestIdHeader: 'x-request-id',
    credential: bearer,
    authFailure: (key) =>
        key === null
            ? ["You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", {}]
            : ['Incorrect API key provided.', { code: 'invalid_api_key' }],
    error: openaiError,
    checkHeaders: () => null,
};

function responsesUsage(ctx) {
    return {
        input_tokens: ctx.inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: ctx.outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: ctx.inputTokens + ctx.outputTokens,
    };
}

function responseObject(ctx, status, output, usage) {
    const r = ctx.req;
    return {
        id: ctx.id, object: 'response', created_at: ctx.created, status, background: false, error: null,
        incomplete_details: null, instructions: r.instructions ?? null, max_output_tokens: r.max_output_tokens ?? null,
        model: ctx.model, output, parallel_tool_calls: true, previous_response_id: r.previous_response_id ?? null,
        reasoning: { effort: null, summary: null }, store: r.store ?? true, temperature: r.temperature ?? 1,
        text: { format: { type: 'text' } }, tool_choice: 'auto', tools: [], top_p: r.top_p ?? 1,
        truncation: 'disabled', usage, user: null, metadata: r.metadata ?? {},
    };
}

const outputText = (text) => ({ type: 'output_text', annotations: [], logprobs: [], text });
const messageItem = (ctx, status, content) => ({ id: ctx.itemId, type: 'message', status, content, role: 'assistant' });

export const responses = {
    ...openaiBase,
    name: 'openai-responses',
    newIds: () => ({ id: `resp_${hex(24)}`, itemId: `msg_${hex(24)}` }),
    validate: (b) => missing(b, 'model', isStr) ?? missing(b, 'input', (v) => isStr(v) || isList(v)),
    conversation(b) {
        const items = typeof b.input === 'string' ? [{ role: 'user', content: b.input }] : b.input;
        const turns = items.map((it) => ({
            role: String(it?.role ?? it?.type ?? 'unknown'),
            text: it?.role ? textOf(it.content) : typeof it?.output === 'string' ? it.output : '',
        }));
        return { system: typeof b.instructions === 'string' ? b.instructions : '', turns };
    },
    complete: (ctx) => responseObject(ctx, 'completed', [messageItem(ctx, 'completed', [outputText(ctx.text)])], responsesUsage(ctx)),
    frames(ctx) {
        let seq = 0;
        const ev = (type, fields) => ({ event: type, data: { type, sequence_number: seq++, ...fields } });
        const at = { item_id: ctx.itemId, output_index: 0, content_index: 0 };
        const done = messageItem(ctx, 'completed', [outputText(ctx.text)]);
        return {
            head: [
                ev('response.created', { response: responseObject(ctx, 'in_progress', [], null) }),
                ev('response.in_progress', { response: responseObject(ctx, 'in_progress', [], null) }),
                ev('response.output_item.added', { output_index: 0, item: messageItem(ctx, 'in_progress', []) }),
                ev('response.content_part.added', { ...at, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } }),
            ],
            deltas: ctx.chunks.map((delta) => ev('response.output_text.delta', { ...at, delta, logprobs: [] })),
            tail: [
                ev('response.output_text.done', { ...at, text: ctx.text, logprobs: [] }),
                ev('response.content_part.done', { ...at, part: outputText(ctx.text) }),
                ev('response.output_item.done', { output_index: 0, item: done }),
                ev('response.completed', { response: responseObject(ctx, 'completed', [done], responsesUsage(ctx)) }),
            ],
        };
    },
};

function chatUsage(ctx) {
    return {
        prompt_tokens: ctx.inputTokens, completion_tokens: ctx.outputTokens,
        total_tokens: ctx.inputTokens + ctx.outputTokens,
        prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 },
    };
}

export const chat = {
    ...openaiBase,
    name: 'openai-chat',
    newIds: () => ({ id: `chatcmpl-${hex(14)}` }),
    validate: (b) => missing(b, 'model', isStr) ?? missing(b, 'messages', isList),
    conversation(b) {
        const turns = b.messages.map((m) => ({ role: String(m?.role ?? 'unknown'), text: textOf(m?.content) }));
        const system = turns.filter((t) => t.role === 'system' || t.role === 'developer').map((t) => t.text).join('\n');
        return { system, turns };
    },
    complete: (ctx) => ({
        id: ctx.id, object: 'chat.completion', created: ctx.created, model: ctx.model,
        choices: [{
            index: 0, message: { role: 'assistant', content: ctx.text, refusal: null, annotations: [] },
            logprobs: null, finish_reason: 'stop',
        }],
        usage: chatUsage(ctx), service_tier: 'default', system_fingerprint: null,
    }),
    /*
     * OpenAI sends the usage chunk (empty `choices`) only when asked with
     * stream_options.include_usage, and then `usage: null` on every other
     * chunk; OpenRouter always sends usage last and keeps the connection
     * warm with `: OPENROUTER PROCESSING` comments.
     */
    frames(ctx) {
        const openrouter = ctx.variant === 'openrouter';
        const withUsage = openrouter || ctx.req.stream_options?.include_usage === true;
        const chunk = (choices, usage) => ({
            data: {
                id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model,
                system_fingerprint: null, choices, ...(withUsage ? { usage } : {}),
            },
        });
        const choice = (delta, finish) => [{ index: 0, delta, logprobs: null, finish_reason: finish }];
        return {
            head: [
                ...(openrouter ? [{ comment: 'OPENROUTER PROCESSING' }] : []),
                chunk(choice({ role: 'assistant', content: '', refusal: null }, null), null),
            ],
            deltas: ctx.chunks.map((content) => chunk(choice({ content }, null), null)),
            tail: [
                chunk(choice({}, 'stop'), null),
                ...(withUsage ? [chunk([], chatUsage(ctx))] : []),
                { data: '[DONE]' },
            ],
        };
    },
};

// ---- Anthropic Messages ----

const ANTHROPIC_TYPES = {
    400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error',
    413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 529: 'overloaded_error',
};

export const messages = {
    name: 'anthropic-messages',
    requestIdHeader: 'request-id',
    credential: (h) => (typeof h['x-api-key'] === 'string' && h['x-api-key'] !== '' ? h['x-api-key'] : null),
    authFailure: (key) => [key === null ? 'x-api-key header is required' : 'invalid x-api-key', {}],
    error: (status, message) => ({
        type: 'error',
        error: { type: ANTHROPIC_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message },
        request_id: `req_${hex(12)}`,
    }),
    checkHeaders: (h) => (h['anthropic-version'] ? null : 'anthropic-version: header is required'),
    newIds: () => ({ id: `msg_${hex(12)}` }),
    validate(b) {
        const m = missing(b, 'model', isStr) ?? missing(b, 'messages', isList);
        if (m) return { message: `${m.param}: Field required` };
        return Number.isInteger(b.max_tokens) && b.max_tokens > 0 ? null : { message: 'max_tokens: Field required' };
    },
    conversation(b) {
        const turns = b.messages.map((m) => ({ role: String(m?.role ?? 'unknown'), text: textOf(m?.content) }));
        return { system: textOf(b.system), turns };
    },
    complete: (ctx) => ({
        id: ctx.id, type: 'message', role: 'assistant', model: ctx.model,
        content: [{ type: 'text', text: ctx.text }], stop_reason: 'end_turn', stop_sequence: null,
        usage: anthropicUsage(ctx.inputTokens, ctx.outputTokens),
    }),
    frames(ctx) {
        const ev = (type, fields) => ({ event: type, data: { type, ...fields } });
        return {
            head: [
                ev('message_start', {
                    message: {
                        id: ctx.id, type: 'message', role: 'assistant', model: ctx.model, content: [],
                        stop_reason: null, stop_sequence: null, usage: anthropicUsage(ctx.inputTokens, 1),
                    },
                }),
                ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
                ev('ping', {}),
            ],
            deltas: ctx.chunks.map((text) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } })),
            tail: [
                ev('content_block_stop', { index: 0 }),
                ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: ctx.outputTokens } }),
                ev('message_stop', {}),
            ],
        };
    },
};

function anthropicUsage(input, output) {
    return { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output };
}

/*
 * The reply context the renderers share: ids, the model echoed from the
 * request, the text and its deltas, rough token counts (4 characters each).
 */
export function replyContext(dialect, req, variant, conversation, text, chunks) {
    const input = conversation.system + conversation.turns.map((t) => t.text).join('');
    return {
        ...dialect.newIds(), created: Math.floor(Date.now() / 1000), model: req.model, req, variant,
        text, chunks, inputTokens: tokens(input), outputTokens: tokens(text),
    };
}

/* One SSE frame on the wire. */
export function encodeFrame(f) {
    if (f.comment !== undefined) return `: ${f.comment}\n\n`;
    const data = typeof f.data === 'string' ? f.data : JSON.stringify(f.data);
    return `${f.event ? `event: ${f.event}\n` : ''}data: ${data}\n\n`;
}

/*
 * `frame` garbled for [[mock:malformed]]: same framing (event name kept),
 * but the data is its JSON cut in half followed by bytes that are no JSON.
 */
export function garble(f) {
    const json = JSON.stringify(f.data ?? {});
    return { event: f.event, data: `${json.slice(0, Math.floor(json.length / 2))}\u0001}{"garbage` };
}
