// The three wire dialects the mock provider speaks: OpenAI Responses, OpenAI
// chat completions (also OpenRouter's /api/v1 variant and any compatible
// base_url) and Anthropic Messages. Each dialect knows its credential header,
// its error shape, how to read a conversation out of a request body, and how
// to render a reply as one JSON body or as SSE frames.
//
// A frame is { event, data } (data an object, or a raw string such as
// `[DONE]`) or { comment }. frames() returns { head, deltas, tail }: the
// frames before the first text delta, one frame per delta (and, when the
// reply makes tool calls, the frames of the calls: item/block starts,
// argument fragments, ends), and the closing frames, so the server can cut
// or garble a stream at a known place.
//
// A reply may make tool calls (ctx.calls: {id, itemId, name, args, chunks},
// args being the raw arguments text and chunks its fragments). Each
// dialect's conversation() reads a request into turns {role, text, calls?,
// results?}: role user, assistant (calls: [{id, name, args}]), tool
// (results: [{id, content, is_error}]: one round of results) or system.
import { randomBytes } from 'node:crypto';
import { chunkText } from './script.mjs';
import { chatToolProblem, messagesToolProblem, responsesToolProblem } from './shapes.mjs';

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

/* The per-call frame lists in order: one call after the other, or (interleave) their fragments alternating. */
function weave(lists, interleave) {
    if (!interleave) return lists.flat();
    const out = [];
    for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) out.push(l[i]);
    return out;
}

/* A call's arguments as an object, for a non-streamed Messages reply ({} when they do not parse). */
function argsObject(args) {
    try {
        const v = JSON.parse(args);
        return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {};
    } catch {
        return {};
    }
}

/* Adds a tool turn's result, in one round with the results right before it. */
function addResult(turns, r) {
    const last = turns.at(-1);
    if (last?.role === 'tool') {
        last.results.push(r);
        last.text += r.content;
    } else turns.push({ role: 'tool', text: r.content, results: [r] });
}

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
        model: ctx.model, output, parallel_tool_calls: r.parallel_tool_calls ?? true, previous_response_id: r.previous_response_id ?? null,
        reasoning: { effort: null, summary: null }, store: r.store ?? true, temperature: r.temperature ?? 1,
        text: { format: { type: 'text' } }, tool_choice: r.tool_choice ?? 'auto', tools: r.tools ?? [], top_p: r.top_p ?? 1,
        truncation: 'disabled', usage, user: null, metadata: r.metadata ?? {},
    };
}

const outputText = (text) => ({ type: 'output_text', annotations: [], logprobs: [], text });
const messageItem = (ctx, status, content) => ({ id: ctx.itemId, type: 'message', status, content, role: 'assistant' });
const callItem = (c, status, args) => ({ id: c.itemId, type: 'function_call', status, arguments: args, call_id: c.id, name: c.name });
/* A reply without calls always has its message; one with calls only when it has text. */
const hasMessage = (ctx) => ctx.text !== '' || ctx.calls.length === 0;

function responsesOutput(ctx) {
    return [
        ...(hasMessage(ctx) ? [messageItem(ctx, 'completed', [outputText(ctx.text)])] : []),
        ...ctx.calls.map((c) => callItem(c, 'completed', c.args)),
    ];
}

export const responses = {
    ...openaiBase,
    name: 'openai-responses',
    newIds: () => ({ id: `resp_${hex(24)}`, itemId: `msg_${hex(24)}` }),
    newCallIds: () => ({ id: `call_${hex(12)}`, itemId: `fc_${hex(24)}` }),
    validate: (b) => missing(b, 'model', isStr) ?? missing(b, 'input', (v) => isStr(v) || isList(v)),
    toolProblem: responsesToolProblem,
    conversation(b) {
        const items = typeof b.input === 'string' ? [{ role: 'user', content: b.input }] : b.input;
        const turns = [];
        for (const it of items) {
            const type = it?.type ?? (it?.role ? 'message' : 'unknown');
            if (type === 'function_call') {
                const call = { id: it.call_id, name: it.name, args: it.arguments };
                const last = turns.at(-1);
                if (last?.role === 'assistant') (last.calls ??= []).push(call);
                else turns.push({ role: 'assistant', text: '', calls: [call] });
            } else if (type === 'function_call_output') addResult(turns, { id: it.call_id, content: textOf(it.output), is_error: false });
            else turns.push({ role: String(it?.role ?? type), text: it?.role ? textOf(it.content) : '' });
        }
        return { system: typeof b.instructions === 'string' ? b.instructions : '', turns };
    },
    complete: (ctx) => responseObject(ctx, 'completed', responsesOutput(ctx), responsesUsage(ctx)),
    /*
     * Sequence numbers are given once the frames are in order (interleaved
     * calls are not in the order they are built).
     */
    frames(ctx) {
        const ev = (type, fields) => ({ event: type, data: { type, ...fields } });
        const at = { item_id: ctx.itemId, output_index: 0, content_index: 0 };
        const head = [
            ev('response.created', { response: responseObject(ctx, 'in_progress', [], null) }),
            ev('response.in_progress', { response: responseObject(ctx, 'in_progress', [], null) }),
        ];
        let deltas = [];
        let closing = [];
        if (hasMessage(ctx)) {
            head.push(ev('response.output_item.added', { output_index: 0, item: messageItem(ctx, 'in_progress', []) }));
            head.push(ev('response.content_part.added', { ...at, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } }));
            deltas = ctx.chunks.map((delta) => ev('response.output_text.delta', { ...at, delta, logprobs: [] }));
            closing = [
                ev('response.output_text.done', { ...at, text: ctx.text, logprobs: [] }),
                ev('response.content_part.done', { ...at, part: outputText(ctx.text) }),
                ev('response.output_item.done', { output_index: 0, item: messageItem(ctx, 'completed', [outputText(ctx.text)]) }),
            ];
        }
        const first = hasMessage(ctx) ? 1 : 0;
        const calls = ctx.calls.map((c, i) => {
            const where = { item_id: c.itemId, output_index: first + i };
            return {
                start: ev('response.output_item.added', { output_index: first + i, item: callItem(c, 'in_progress', '') }),
                parts: c.chunks.map((delta) => ev('response.function_call_arguments.delta', { ...where, delta })),
                end: [
                    ev('response.function_call_arguments.done', { ...where, name: c.name, arguments: c.args }),
                    ev('response.output_item.done', { output_index: first + i, item: callItem(c, 'completed', c.args) }),
                ],
            };
        });
        const completed = ev('response.completed', { response: responseObject(ctx, 'completed', responsesOutput(ctx), responsesUsage(ctx)) });
        let tail = [...closing, completed];
        if (calls.length > 0) {
            deltas = [...deltas, ...closing, ...(ctx.interleave
                ? [...calls.map((c) => c.start), ...weave(calls.map((c) => c.parts), true), ...calls.flatMap((c) => c.end)]
                : calls.flatMap((c) => [c.start, ...c.parts, ...c.end]))];
            tail = [completed];
        }
        [...head, ...deltas, ...tail].forEach((f, n) => {
            const { type, ...rest } = f.data;
            f.data = { type, sequence_number: n, ...rest };
        });
        return { head, deltas, tail };
    },
};

function chatUsage(ctx) {
    return {
        prompt_tokens: ctx.inputTokens, completion_tokens: ctx.outputTokens,
        total_tokens: ctx.inputTokens + ctx.outputTokens,
        prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 },
    };
}

const chatCall = (c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } });

export const chat = {
    ...openaiBase,
    name: 'openai-chat',
    newIds: () => ({ id: `chatcmpl-${hex(14)}` }),
    newCallIds: () => ({ id: `call_${hex(12)}` }),
    validate: (b) => missing(b, 'model', isStr) ?? missing(b, 'messages', isList),
    toolProblem: chatToolProblem,
    conversation(b) {
        const turns = [];
        for (const m of b.messages) {
            const role = String(m?.role ?? 'unknown');
            if (role === 'tool') {
                addResult(turns, { id: m.tool_call_id, content: textOf(m.content), is_error: false });
                continue;
            }
            const calls = Array.isArray(m?.tool_calls)
                ? m.tool_calls.map((c) => ({ id: c?.id, name: c?.function?.name, args: c?.function?.arguments }))
                : [];
            turns.push({ role, text: textOf(m?.content), ...(calls.length ? { calls } : {}) });
        }
        const system = turns.filter((t) => t.role === 'system' || t.role === 'developer').map((t) => t.text).join('\n');
        return { system, turns };
    },
    complete: (ctx) => ({
        id: ctx.id, object: 'chat.completion', created: ctx.created, model: ctx.model,
        choices: [{
            index: 0,
            message: {
                role: 'assistant', content: ctx.calls.length && ctx.text === '' ? null : ctx.text, refusal: null, annotations: [],
                ...(ctx.calls.length ? { tool_calls: ctx.calls.map(chatCall) } : {}),
            },
            logprobs: null, finish_reason: ctx.calls.length ? 'tool_calls' : 'stop',
        }],
        usage: chatUsage(ctx), service_tier: 'default', system_fingerprint: null,
    }),
    /*
     * OpenAI sends the usage chunk (empty `choices`) only when asked with
     * stream_options.include_usage, and then `usage: null` on every other
     * chunk; OpenRouter always sends usage last and keeps the connection
     * warm with `: OPENROUTER PROCESSING` comments. A call's first chunk
     * has its index, id, type and name (arguments ""); the next ones only
     * the index and a piece of the arguments.
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
        const calls = ctx.calls.map((c, index) => ({
            start: chunk(choice({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, null), null),
            parts: c.chunks.map((args) => chunk(choice({ tool_calls: [{ index, function: { arguments: args } }] }, null), null)),
        }));
        const callFrames = ctx.interleave
            ? [...calls.map((c) => c.start), ...weave(calls.map((c) => c.parts), true)]
            : calls.flatMap((c) => [c.start, ...c.parts]);
        return {
            head: [
                ...(openrouter ? [{ comment: 'OPENROUTER PROCESSING' }] : []),
                chunk(choice({ role: 'assistant', content: ctx.calls.length && ctx.text === '' ? null : '', refusal: null }, null), null),
            ],
            deltas: [...ctx.chunks.map((content) => chunk(choice({ content }, null), null)), ...callFrames],
            tail: [
                chunk(choice({}, ctx.calls.length ? 'tool_calls' : 'stop'), null),
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
    toolProblem: messagesToolProblem,
    newCallIds: () => ({ id: `toolu_${hex(12)}` }),
    /* A user message's tool_result blocks are a tool turn, its text a user turn after it. */
    conversation(b) {
        const turns = [];
        for (const m of b.messages) {
            const role = String(m?.role ?? 'unknown');
            if (!Array.isArray(m?.content)) {
                turns.push({ role, text: textOf(m?.content) });
                continue;
            }
            const of = (type) => m.content.filter((x) => x?.type === type);
            const text = of('text').map((x) => String(x.text ?? '')).join('');
            const calls = of('tool_use').map((x) => ({ id: x.id, name: x.name, args: JSON.stringify(x.input ?? {}) }));
            for (const x of of('tool_result')) addResult(turns, { id: x.tool_use_id, content: textOf(x.content), is_error: x.is_error === true });
            if (of('tool_result').length === 0 || text !== '') turns.push({ role, text, ...(calls.length ? { calls } : {}) });
        }
        return { system: textOf(b.system), turns };
    },
    complete: (ctx) => ({
        id: ctx.id, type: 'message', role: 'assistant', model: ctx.model,
        content: [
            ...(hasMessage(ctx) ? [{ type: 'text', text: ctx.text }] : []),
            ...ctx.calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: argsObject(c.args) })),
        ],
        stop_reason: ctx.calls.length ? 'tool_use' : 'end_turn', stop_sequence: null,
        usage: anthropicUsage(ctx.inputTokens, ctx.outputTokens),
    }),
    /*
     * Block 0 is the text (when there is any, or no call), then one
     * tool_use block per call, its input streamed as input_json_delta
     * pieces. `ping` follows the first block's start, as the API sends it.
     */
    frames(ctx) {
        const ev = (type, fields) => ({ event: type, data: { type, ...fields } });
        const start = ev('message_start', {
            message: {
                id: ctx.id, type: 'message', role: 'assistant', model: ctx.model, content: [],
                stop_reason: null, stop_sequence: null, usage: anthropicUsage(ctx.inputTokens, 1),
            },
        });
        const end = [
            ev('message_delta', { delta: { stop_reason: ctx.calls.length ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: ctx.outputTokens } }),
            ev('message_stop', {}),
        ];
        const textBlock = [
            ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
            ...ctx.chunks.map((text) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } })),
            ev('content_block_stop', { index: 0 }),
        ];
        if (ctx.calls.length === 0)
            return { head: [start, textBlock[0], ev('ping', {})], deltas: textBlock.slice(1, -1), tail: [textBlock.at(-1), ...end] };
        const first = hasMessage(ctx) ? 1 : 0;
        const calls = ctx.calls.map((c, i) => ({
            start: ev('content_block_start', { index: first + i, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } }),
            parts: c.chunks.map((partial_json) => ev('content_block_delta', { index: first + i, delta: { type: 'input_json_delta', partial_json } })),
            stop: ev('content_block_stop', { index: first + i }),
        }));
        const body = [
            ...(first ? textBlock : []),
            ...(ctx.interleave
                ? [...calls.map((c) => c.start), ...weave(calls.map((c) => c.parts), true), ...calls.map((c) => c.stop)]
                : calls.flatMap((c) => [c.start, ...c.parts, c.stop])),
        ];
        return { head: [start, body[0], ev('ping', {})], deltas: body.slice(1), tail: end };
    },
};

function anthropicUsage(input, output) {
    return { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output };
}

/*
 * The reply context the renderers share: ids, the model echoed from the
 * request, the text and its deltas, rough token counts (4 characters each).
 */
export function replyContext(dialect, req, variant, conversation, text, chunks, script) {
    const input = conversation.system + conversation.turns.map((t) => t.text).join('');
    const calls = script.calls.map((c) => ({ ...dialect.newCallIds(), name: c.name, args: c.args, chunks: chunkText(c.args, script.args_chunk) }));
    return {
        ...dialect.newIds(), created: Math.floor(Date.now() / 1000), model: req.model, req, variant,
        text, chunks, calls, interleave: script.interleave === true,
        inputTokens: tokens(input), outputTokens: tokens(text + calls.map((c) => c.name + c.args).join('')),
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
