// How a test scripts one reply of the mock provider: directives embedded in
// the last user message, e.g. `[[mock:status=429,retry_after=1,times=2]]`.
//
// A directive block is `[[mock:ITEM,ITEM,...]]`; an ITEM is `key=value` or a
// bare flag. `text=` takes the rest of its block verbatim (commas included),
// so it goes last: `[[mock:delay_ms=50,text=Hello, world]]`; so does
// `call=NAME:ARGS` (a tool call whose raw arguments are ARGS). Several
// blocks may appear; later keys override earlier ones, and calls add up in
// order (parallel calls). `[[mock@N:...]]` is a block for the Nth model turn
// of the same user message (turn 1 is the user message itself; turn N comes
// after N-1 rounds of tool results); plain blocks are turn 1's. An unknown
// key or an out-of-range value is an error the server answers with 400, so
// a typo in a test fails loudly instead of silently giving the default
// reply.
import { createHash } from 'node:crypto';

export const CANARY = 'KHEISH_ROUTE_CANARY_OK';
const DIRECTIVE_RE = /\[\[mock(?:@(\d+))?:(.*?)\]\]/gs;
const ECHO_MAX_CHARS = 200;
export const MAX_REPLY_CHARS = 4 * 1024 * 1024;
const MAX_COUNTERS = 10000;

// Numeric keys with their inclusive range; flags take no value.
const NUMBERS = {
    delay_ms: [0, 600000],       // before the first byte of the answer
    chunk_delay_ms: [0, 60000],  // between two stream frames
    chunk_size: [1, 1000000],    // characters per text delta (default 4)
    status: [400, 599],          // answer with this error status
    retry_after: [0, 86400],     // seconds, sent as Retry-After with `status`
    times: [1, 1000000],         // `status` only for the first N matching requests
    repeat: [1, 1000000],        // the reply text repeated N times
    args_chunk: [1, 1000000],    // characters per tool call arguments fragment (default 8)
    write_bytes: [1, 1000000],   // the stream written N bytes at a time (splits frames, UTF-8)
};
const FLAGS = new Set(['malformed', 'hang', 'cut', 'interleave']);
const CALL_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_CALLS = 128;

/*
 * Parses the directive blocks of `text` for model turn `turn` (1: plain
 * blocks; N: `[[mock@N:...]]` blocks). Returns { script } or { error } (a
 * sentence for the 400 answer). `script.source` is the directives' text,
 * part of the `times` counter key.
 */
export function parseScript(text, turn = 1) {
    const script = { chunk_size: 4, repeat: 1, args_chunk: 8, calls: [], source: '' };
    const sources = [];
    for (const m of text.matchAll(DIRECTIVE_RE)) {
        if (Number(m[1] ?? 1) !== turn) continue;
        sources.push(m[1] ? `@${m[1]}:${m[2]}` : m[2]);
        let rest = m[2];
        while (rest.length > 0) {
            if (rest.startsWith('text=')) {
                script.text = rest.slice(5);
                break;
            }
            if (rest.startsWith('call=')) {
                const err = addCall(script, rest.slice(5));
                if (err) return { error: `mock directive: ${err}` };
                break;
            }
            const comma = rest.indexOf(',');
            const item = (comma < 0 ? rest : rest.slice(0, comma)).trim();
            rest = comma < 0 ? '' : rest.slice(comma + 1);
            if (item === '') continue;
            const err = applyItem(script, item);
            if (err) return { error: `mock directive: ${err}` };
        }
    }
    script.source = sources.join('|');
    if (script.times !== undefined && script.status === undefined)
        return { error: 'mock directive: times needs status' };
    return { script };
}

/* `call=NAME:ARGS`: a tool call whose arguments are ARGS, raw (malformed on purpose, if need be). */
function addCall(script, spec) {
    const colon = spec.indexOf(':');
    const name = colon < 0 ? spec : spec.slice(0, colon);
    if (!CALL_NAME_RE.test(name)) return `call=NAME:ARGS needs a tool name of 1-64 [A-Za-z0-9_-], got '${name}'`;
    if (script.calls.length >= MAX_CALLS) return `at most ${MAX_CALLS} calls`;
    script.calls.push({ name, args: colon < 0 ? '' : spec.slice(colon + 1) });
    return null;
}

function applyItem(script, item) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (FLAGS.has(key)) {
        if (eq >= 0) return `${key} takes no value`;
        script[key] = true;
        return null;
    }
    const range = NUMBERS[key];
    if (!range) return `unknown key '${key}'`;
    const value = eq < 0 ? NaN : Number(item.slice(eq + 1));
    if (!Number.isInteger(value) || value < range[0] || value > range[1])
        return `${key} must be an integer in [${range[0]}, ${range[1]}]`;
    script[key] = value;
    return null;
}

/*
 * The reply text: the scripted `text`, else none when the turn makes tool
 * calls, else `got: ...` when the request ends with tool results (each
 * result's content, `[error] ` before one marked is_error, joined by ` | `),
 * else the canary marker when the request asks for it, else an echo of the
 * last user message (directives removed, at most ECHO_MAX_CHARS characters).
 * `repeat` is capped at MAX_REPLY_CHARS in all.
 */
export function replyText(script, lastUser, system, results = null) {
    let text;
    if (script.text !== undefined) text = script.text;
    else if (script.calls.length > 0) return '';
    else if (results) text = `got: ${results.map((r) => (r.is_error ? `[error] ${r.content}` : r.content)).join(' | ')}`;
    else if (lastUser.includes(CANARY) || system.includes(CANARY)) text = CANARY;
    else text = `mock reply to: ${Array.from(stripDirectives(lastUser)).slice(0, ECHO_MAX_CHARS).join('')}`;
    const times = Math.min(script.repeat, Math.floor(MAX_REPLY_CHARS / Math.max(1, text.length)));
    return text.repeat(Math.max(1, times));
}

export function stripDirectives(text) {
    return text.replace(DIRECTIVE_RE, '').trim();
}

/*
 * Splits text into deltas of `size` characters (code points, so a delta never
 * holds half a surrogate pair).
 */
export function chunkText(text, size) {
    const chars = Array.from(text);
    const out = [];
    for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
    return out;
}

// Requests seen per (directives, conversation), for `times`.
const counters = new Map();

/*
 * Decides whether this request gets the scripted error status. With `times`,
 * only the first N requests carrying the same directives and conversation do
 * (a retry of the same turn matches; another conversation does not).
 */
export function statusApplies(script, conversation) {
    if (script.status === undefined) return false;
    if (script.times === undefined) return true;
    const key = createHash('sha256').update(script.source).update('\0').update(JSON.stringify(conversation)).digest('hex');
    const seen = counters.get(key) ?? 0;
    if (seen >= script.times) return false;
    if (!counters.has(key) && counters.size >= MAX_COUNTERS) counters.delete(counters.keys().next().value);
    counters.set(key, seen + 1);
    return true;
}

export function resetCounters() {
    counters.clear();
}
