// An independent SSE client for the integration tests: the WHATWG-compliant
// `eventsource` package from npm, which reconnects by itself (after the
// stream's `retry:` delay) and resends the last id it saw as Last-Event-ID.
//
//   node client.mjs URL [--token-file FILE] [--cursor N] [--burst TAG]
//                   [--expect N] [--final EVENT] [--timeout SECONDS] [--ready-file FILE]
//
// The bearer token comes from --token-file, else $KHEISH_DAEMON_TOKEN (never
// argv, so it does not show in ps). --cursor N adds `cursor=N` to the URL.
// --ready-file FILE is created when the stream first opens.
// Every `burst` event ({"type":"burst","burst":TAG,"seq":N}) of the given
// burst is recorded; the client exits on the first --final event (default
// `burst_end`) of that burst, on a permanent failure (the spec's "fail the
// connection": a non-200 answer or a wrong content type), or at the timeout,
// and prints one JSON summary on stdout:
//   count, unique, first_seq, last_seq, duplicates, out_of_order, missing
//   (against 1..--expect), reconnects (opens after the first), errors, the
//   requests it made (time, Last-Event-ID sent, status), ids_increasing,
//   gaps (stream_gap events), final_seen, failed, elapsed_ms.
// Times are milliseconds since the client started. Exit status 0 when the
// final event was seen, 1 otherwise.
import { readFileSync, writeFileSync } from 'node:fs';
import { EventSource } from 'eventsource';

const args = process.argv.slice(2);
const opt = { cursor: null, burst: null, expect: 0, final: 'burst_end', timeout: 60, tokenFile: null, readyFile: null };
let url = null;
for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
        if (i + 1 >= args.length) usage(`${a} needs a value`);
        return args[++i];
    };
    if (a === '--token-file') opt.tokenFile = next();
    else if (a === '--cursor') opt.cursor = next();
    else if (a === '--burst') opt.burst = next();
    else if (a === '--expect') opt.expect = Number(next());
    else if (a === '--final') opt.final = next();
    else if (a === '--timeout') opt.timeout = Number(next());
    else if (a === '--ready-file') opt.readyFile = next();
    else if (url === null && !a.startsWith('--')) url = a;
    else usage(`unknown argument ${a}`);
}
if (url === null) usage('no URL');

function usage(msg) {
    process.stderr.write(`client.mjs: ${msg}\nusage: node client.mjs URL [--token-file FILE] [--cursor N] ` +
        '[--burst TAG] [--expect N] [--final EVENT] [--timeout SECONDS] [--ready-file FILE]\n');
    process.exit(2);
}

const token = (opt.tokenFile ? readFileSync(opt.tokenFile, 'utf8') : process.env.KHEISH_DAEMON_TOKEN || '').trim();
const target = new URL(url);
if (opt.cursor !== null) target.searchParams.set('cursor', opt.cursor);

const t0 = performance.now();
const now = () => Math.round(performance.now() - t0);

// What the client asked and was answered, one entry per request.
const requests = [];
// The package lets the caller supply fetch: add the bearer token, and record
// the Last-Event-ID it resends and what came back.
async function authFetch(input, init = {}) {
    const headers = { ...(init.headers || {}), Authorization: `Bearer ${token}` };
    const req = { t: now(), last_event_id: headers['Last-Event-ID'] ?? null };
    requests.push(req);
    try {
        const res = await fetch(input, { ...init, headers });
        req.status = res.status;
        req.content_type = res.headers.get('content-type');
        if (res.status !== 200) {
            // Keep what nginx or the relay said; the package only sees the status.
            const body = await res.clone().text().catch(() => '');
            req.body = body.slice(0, 300);
        }
        return res;
    } catch (err) {
        req.error = String(err?.cause?.code || err?.message || err);
        throw err;
    }
}

const seqs = [];          // burst seqs in arrival order
const seen = new Set();
let duplicates = 0, outOfOrder = 0, lastSeq = 0, lastId = -1, idsIncreasing = true;
const duplicateSample = [], outOfOrderSample = [];
const errors = [], opens = [], gaps = [], other = {};
let finalSeen = null, failed = null, done = false;

const es = new EventSource(target, { fetch: authFetch });

es.onopen = () => {
    opens.push({ t: now(), last_event_id: requests.at(-1)?.last_event_id ?? null });
    if (opens.length === 1 && opt.readyFile) writeFileSync(opt.readyFile, `${now()}\n`);
};
es.onerror = (ev) => {
    const e = { t: now(), code: ev.code ?? null, message: ev.message ?? null, ready_state: es.readyState };
    errors.push(e);
    // readyState CLOSED after an error: the connection failed for good, the
    // package will not reconnect (WHATWG "fail the connection").
    if (es.readyState === EventSource.CLOSED) {
        failed = e;
        finish();
    }
};

function checkId(ev) {
    const id = Number(ev.lastEventId);
    if (ev.lastEventId !== '' && !(id > lastId)) idsIncreasing = false;
    if (ev.lastEventId !== '') lastId = id;
}

function parse(ev) {
    try {
        return JSON.parse(ev.data);
    } catch {
        return null;
    }
}

es.addEventListener('burst', (ev) => {
    const d = parse(ev);
    if (!d || (opt.burst !== null && d.burst !== opt.burst)) {
        other.foreign_burst = (other.foreign_burst || 0) + 1;
        return;
    }
    checkId(ev);
    const s = d.seq;
    seqs.push(s);
    if (seen.has(s)) {
        duplicates++;
        if (duplicateSample.length < 10) duplicateSample.push({ seq: s, id: ev.lastEventId, t: now() });
    } else {
        seen.add(s);
    }
    if (s <= lastSeq) {
        outOfOrder++;
        if (outOfOrderSample.length < 10) outOfOrderSample.push({ seq: s, after: lastSeq, id: ev.lastEventId, t: now() });
    }
    lastSeq = Math.max(lastSeq, s);
});
es.addEventListener(opt.final, (ev) => {
    const d = parse(ev);
    if (!d || (opt.burst !== null && d.burst !== opt.burst)) return;
    checkId(ev);
    finalSeen = { t: now(), id: ev.lastEventId, data: d };
    finish();
});
es.addEventListener('stream_gap', (ev) => gaps.push({ t: now(), data: parse(ev) }));
for (const type of ['heartbeat', 'message']) {
    es.addEventListener(type, () => { other[type] = (other[type] || 0) + 1; });
}

const timer = setTimeout(() => finish(), opt.timeout * 1000);

// Missing seqs of 1..expect, as ranges "a-b" (at most 20 shown).
function missingRanges() {
    const ranges = [];
    let count = 0;
    for (let s = 1; s <= opt.expect; s++) {
        if (seen.has(s)) continue;
        let e = s;
        while (e + 1 <= opt.expect && !seen.has(e + 1)) e++;
        count += e - s + 1;
        if (ranges.length < 20) ranges.push(s === e ? `${s}` : `${s}-${e}`);
        s = e;
    }
    return { count, ranges };
}

function finish() {
    if (done) return;
    done = true;
    clearTimeout(timer);
    es.close();
    const missing = missingRanges();
    const summary = {
        url: target.href,
        count: seqs.length,
        unique: seen.size,
        first_seq: seqs.length ? seqs[0] : null,
        last_seq: seqs.length ? seqs.at(-1) : null,
        duplicates,
        duplicate_sample: duplicateSample,
        out_of_order: outOfOrder,
        out_of_order_sample: outOfOrderSample,
        missing: missing.count,
        missing_ranges: missing.ranges,
        ids_increasing: idsIncreasing,
        last_event_id: lastId,
        reconnects: Math.max(0, opens.length - 1),
        opens,
        errors,
        requests,
        gaps,
        other,
        final_seen: finalSeen,
        failed,
        timed_out: finalSeen === null && failed === null,
        elapsed_ms: now(),
    };
    process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(finalSeen ? 0 : 1));
}
