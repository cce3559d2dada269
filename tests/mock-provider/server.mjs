#!/usr/bin/env node
// A mock model provider for the runner's tests: one HTTP server on 127.0.0.1
// that speaks the real wire formats of OpenAI Responses (POST /v1/responses),
// OpenAI-compatible chat completions (POST /v1/chat/completions, and
// OpenRouter's POST /api/v1/chat/completions) and Anthropic Messages
// (POST /v1/messages), each as one JSON body or as a server-sent event stream.
// Tests script each reply through directives in the last user message (see
// script.mjs and README.md) and read back what the runner sent through
// GET /_mock/requests. Zero npm dependencies.
//
//   node server.mjs [--port N] [--ready-file PATH] [--api-key KEY]
//
// --port 0 (the default) picks a free port; once listening, the port number is
// written to --ready-file (a temporary file renamed into place). --api-key
// makes every endpoint demand exactly that key; without it any non-empty key
// passes. One JSON line per request goes to stderr; credentials and bodies
// are never logged.
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chat, encodeFrame, garble, messages, replyContext, responses } from './providers.mjs';
import { chunkText, parseScript, replyText, resetCounters, statusApplies } from './script.mjs';

const MAX_BODY_BYTES = 8 * 1024 * 1024;          // larger bodies get 413
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;        // past this the connection is dropped unanswered
const MAX_RECORDED_REQUESTS = 256;               // oldest dropped first
const MAX_RECORDED_BODY_BYTES = 1024 * 1024;     // larger bodies are recorded as null
const HANG_MAX_MS = 10 * 60 * 1000;              // a [[mock:hang]] ends here at the latest
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie']);

const ROUTES = new Map([
    ['/v1/responses', { dialect: responses }],
    ['/v1/chat/completions', { dialect: chat }],
    ['/api/v1/chat/completions', { dialect: chat, variant: 'openrouter' }],
    ['/v1/messages', { dialect: messages }],
]);

const opt = parseArgs(process.argv.slice(2));
let recorded = [];
let dropped = 0;
let seq = 0;

const server = http.createServer((req, res) => handle(req, res));
server.on('error', (e) => {
    process.stderr.write(`mock-provider: ${e.message}\n`);
    process.exit(1);
});
server.listen(opt.port, '127.0.0.1', () => {
    const port = server.address().port;
    if (opt.readyFile) {
        const tmp = `${opt.readyFile}.tmp.${process.pid}`;
        writeFileSync(tmp, `${port}\n`);
        renameSync(tmp, opt.readyFile);
    }
    process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), listening: `127.0.0.1:${port}` })}\n`);
});
// Closing every connection aborts hung and delayed replies; their log lines
// are written as they close (after server.close's callback would run), then
// nothing holds the event loop and node exits by itself.
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        server.close();
        server.closeAllConnections();
        setTimeout(() => process.exit(0), 2000).unref();
    });
}

function parseArgs(argv) {
    const o = { port: 0, readyFile: null, apiKey: null };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const next = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
        if (a === '--port') o.port = Number(next());
        else if (a === '--ready-file') o.readyFile = next();
        else if (a === '--api-key') o.apiKey = next();
        else usage(a === '--help' ? null : `unknown argument ${a}`);
    }
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('--port must be an integer in [0, 65535]');
    if (o.apiKey === '') usage('--api-key must not be empty');
    return o;
}

function usage(msg) {
    if (msg) process.stderr.write(`server.mjs: ${msg}\n`);
    process.stderr.write('usage: node server.mjs [--port N] [--ready-file PATH] [--api-key KEY]\n');
    process.exit(msg ? 2 : 0);
}

/*
 * Every request starts here. Logs one line when the response closes, with an
 * outcome: complete, client_closed (the client left first), cut, hang,
 * hang_timeout, malformed, body_dropped or server_error.
 */
async function handle(req, res) {
    const started = Date.now();
    const path = req.url.split('?')[0];
    const log = { method: req.method, path, status: 0, api: null, stream: null, script: null, outcome: 'complete' };
    const entry = path.startsWith('/_mock/') ? null : record(req, path);
    const abort = new AbortController();
    res.on('close', () => {
        abort.abort();
        if (!res.writableFinished && log.outcome === 'complete') log.outcome = 'client_closed';
        log.status = res.headersSent ? res.statusCode : 0;
        if (entry) Object.assign(entry, { status: log.status, outcome: log.outcome });
        process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), ...log, ms: Date.now() - started })}\n`);
    });
    try {
        if (entry === null) control(req, res, path);
        else await provider(req, res, path, entry, log, abort.signal);
    } catch (e) {
        if (abort.signal.aborted) return; // the client left mid-way; nothing to answer
        log.outcome = 'server_error';
        process.stderr.write(`mock-provider: ${e.stack}\n`);
        if (!res.headersSent) sendJson(res, 500, { error: { message: `mock-provider bug: ${e.message}` } });
        else res.destroy();
    }
}

/* The test-facing API: health, the recorded requests, reset. */
function control(req, res, path) {
    req.resume();
    const route = `${req.method} ${path}`;
    if (route === 'GET /_mock/health') return sendJson(res, 200, { status: 'ok' });
    if (route === 'GET /_mock/requests') return sendJson(res, 200, recorded, { 'x-mock-dropped': String(dropped) });
    if (route === 'POST /_mock/reset') {
        recorded = [];
        dropped = 0;
        resetCounters();
        return sendJson(res, 200, { reset: true });
    }
    return sendJson(res, 404, { error: { message: `no control endpoint ${route}` } });
}

/*
 * A provider endpoint: the checks the real APIs make, in their order (size,
 * route, credential, headers, JSON, required fields), each answered in the
 * dialect's error shape; then the scripted behaviour and the reply.
 */
async function provider(req, res, path, entry, log, signal) {
    const route = ROUTES.get(path);
    const dialect = route?.dialect ?? (path.startsWith('/v1/messages') ? messages : chat);
    const variant = route?.variant ?? (path.startsWith('/api/v1/') ? 'openrouter' : undefined);
    const fail = (status, message, extra = {}) => sendError(res, dialect, variant, status, message, extra);
    log.api = entry.api = route ? (variant ? `${dialect.name}/${variant}` : dialect.name) : null;

    const body = await readBody(req);
    entry.body_bytes = body.size;
    if (body.size > MAX_DRAIN_BYTES) {
        log.outcome = 'body_dropped';
        return req.destroy();
    }
    if (body.size > MAX_BODY_BYTES) return fail(413, `Request body exceeds ${MAX_BODY_BYTES} bytes.`);
    if (!route) return fail(404, `Invalid URL (${req.method} ${path})`);
    if (req.method !== 'POST') return fail(405, `Method ${req.method} not allowed on ${path}`, { allow: 'POST' });

    const key = dialect.credential(req.headers);
    if (key === null || (opt.apiKey !== null && key !== opt.apiKey)) {
        const [message, o] = dialect.authFailure(key);
        return fail(401, message, { error: o });
    }
    const headerProblem = dialect.checkHeaders(req.headers);
    if (headerProblem) return fail(400, headerProblem);

    let parsed;
    try {
        parsed = JSON.parse(body.buf.toString('utf8'));
    } catch {
        return fail(400, 'We could not parse the JSON body of your request.');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return fail(400, 'The request body must be a JSON object.');
    if (body.size <= MAX_RECORDED_BODY_BYTES) entry.body = parsed;
    const invalid = dialect.validate(parsed) ?? dialect.toolProblem(parsed);
    if (invalid) return fail(400, invalid.message, { error: { param: invalid.param ?? null } });

    // The directives are in the last user message; a request that ends with
    // tool results is turn 1 + the rounds of results since then.
    const conversation = dialect.conversation(parsed);
    const { turns } = conversation;
    const userAt = turns.findLastIndex((t) => t.role === 'user');
    const lastUser = turns[userAt]?.text ?? '';
    const turn = 1 + turns.slice(userAt + 1).filter((t) => t.role === 'tool').length;
    const results = turns.at(-1)?.role === 'tool' ? turns.at(-1).results : null;
    const { script, error } = parseScript(lastUser, turn);
    if (error) return fail(400, error);
    log.script = entry.script = script.source || null;
    log.stream = parsed.stream === true;

    if (script.delay_ms) await sleep(script.delay_ms, undefined, { signal });
    if (statusApplies(script, conversation)) {
        const headers = script.retry_after !== undefined ? { 'retry-after': String(script.retry_after) } : {};
        return fail(script.status, `mock: scripted status ${script.status}`, headers);
    }
    const text = replyText(script, lastUser, conversation.system, results);
    const ctx = replyContext(dialect, parsed, variant, conversation, text, chunkText(text, script.chunk_size), script);
    const headers = { [dialect.requestIdHeader]: `req_${randomBytes(12).toString('hex')}` };
    if (log.stream) await streamReply(res, dialect, ctx, script, headers, log, signal);
    else await jsonReply(res, dialect.complete(ctx), script, headers, log, signal);
}

/*
 * Sends the reply as SSE frames, with `chunk_delay_ms` between frames, and
 * with `write_bytes` each frame in pieces of that many bytes, 1 ms apart (a
 * piece may end inside a line or a UTF-8 character). hang stops after the
 * first delta and waits for the client to leave; cut drops the connection
 * after half the deltas; malformed sends one delta, then a frame whose data
 * is no JSON, then ends the response.
 */
async function streamReply(res, dialect, ctx, script, headers, log, signal) {
    const { head, deltas, tail } = dialect.frames(ctx);
    let frames = [...head, ...deltas, ...tail];
    if (script.hang) frames = [...head, ...deltas.slice(0, 1)];
    else if (script.cut) frames = [...head, ...deltas.slice(0, Math.ceil(deltas.length / 2))];
    else if (script.malformed) frames = [...head, ...deltas.slice(0, 1), garble(deltas[1] ?? deltas[0] ?? head.at(-1))];
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers });
    res.flushHeaders();
    for (let i = 0; i < frames.length; i++) {
        if (i > 0 && script.chunk_delay_ms) await sleep(script.chunk_delay_ms, undefined, { signal });
        const bytes = Buffer.from(encodeFrame(frames[i]));
        const step = script.write_bytes ?? bytes.length;
        for (let at = 0; at < bytes.length; at += step) {
            if (script.write_bytes && (i > 0 || at > 0)) await sleep(1, undefined, { signal });
            await write(res, bytes.subarray(at, at + step), signal);
        }
    }
    await finish(res, script, log, signal);
}

/* The non-streaming reply, with the same hang / cut / malformed behaviours. */
async function jsonReply(res, obj, script, headers, log, signal) {
    let body = Buffer.from(JSON.stringify(obj));
    const half = Math.floor(body.length / 2);
    if (script.malformed) body = Buffer.concat([body.subarray(0, half), Buffer.from('\u0001}{"garbage')]);
    if (script.hang) {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.flushHeaders();
    } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, ...headers });
        await write(res, script.cut ? body.subarray(0, half) : body, signal);
    }
    await finish(res, script, log, signal);
}

async function finish(res, script, log, signal) {
    if (script.hang) {
        log.outcome = 'hang';
        await sleep(HANG_MAX_MS, undefined, { signal });
        log.outcome = 'hang_timeout';
        res.destroy();
    } else if (script.cut) {
        log.outcome = 'cut';
        res.destroy();
    } else {
        if (script.malformed) log.outcome = 'malformed';
        res.end();
    }
}

/* Writes and waits until the bytes are handed to the kernel, or the client leaves. */
function write(res, chunk, signal) {
    return new Promise((resolve, reject) => {
        const onAbort = () => reject(new Error('client closed'));
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        res.write(chunk, (err) => {
            signal.removeEventListener('abort', onAbort);
            if (err) reject(err);
            else resolve();
        });
    });
}

/*
 * Reads the body, keeping at most MAX_BODY_BYTES and discarding the rest so
 * the 413 can still be answered; stops reading past MAX_DRAIN_BYTES.
 */
async function readBody(req) {
    const parts = [];
    let size = Number(req.headers['content-length']) || 0;
    if (size > MAX_DRAIN_BYTES) return { size, buf: null };
    size = 0;
    for await (const chunk of req) {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) parts.push(chunk);
        else if (size > MAX_DRAIN_BYTES) break;
    }
    return { size, buf: size <= MAX_BODY_BYTES ? Buffer.concat(parts) : null };
}

function sendError(res, dialect, variant, status, message, { error = {}, ...headers } = {}) {
    const body = dialect.error(status, message, { ...error, variant });
    sendJson(res, status, body, { [dialect.requestIdHeader]: `req_${randomBytes(12).toString('hex')}`, ...headers });
}

function sendJson(res, status, obj, headers = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
}

/*
 * Adds the request to the list GET /_mock/requests returns. Credentials are
 * replaced by the SHA-256 hex of the secret (for `Authorization: Bearer K`,
 * `Bearer sha256(K)`), so a test can check which key was sent without the
 * key itself being stored.
 */
function record(req, path) {
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
        headers[name] = CREDENTIAL_HEADERS.has(name) ? redact(String(value), name) : value;
    }
    const entry = {
        seq: ++seq, time: new Date().toISOString(), method: req.method, path, api: null, headers,
        body: null, body_bytes: 0, script: null, status: null, outcome: null,
    };
    recorded.push(entry);
    if (recorded.length > MAX_RECORDED_REQUESTS) {
        recorded.shift();
        dropped++;
    }
    return entry;
}

function redact(value, name) {
    const sha = (s) => createHash('sha256').update(s).digest('hex');
    const m = /^(\S+)\s+(\S.*)$/.exec(value);
    return name.endsWith('authorization') && m ? `${m[1]} ${sha(m[2].trim())}` : sha(value);
}
