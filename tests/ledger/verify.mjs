// An independent check of signed external-action records (contract §9),
// written from the contract alone with Node's crypto (SHA-256, Ed25519):
// it shares no code with the C implementation it checks.
//
//   node tests/ledger/verify.mjs PUBLIC_KEY_HEX < records.json
//   node tests/ledger/verify.mjs --key-file audit-signing.key < records.json
//
// (--key-file: the public key derived here from the key document's seed.)
// records.json is what `kheish runs external-actions RUN --output json`
// prints: one bucket's records, oldest first. Prints "ok N" or exits 1
// naming the first record that does not verify.
import crypto from 'node:crypto';
import fs from 'node:fs';

const FIELDS = ['session_id', 'agent_id', 'run_id', 'tool_call_id', 'principal_id',
    'parent_principal_id', 'grant_id', 'phase', 'kind', 'target', 'request_digest',
    'response_digest', 'outcome', 'prev_hash'];

export function unsignedRecord(r) {
    const u = { timestamp_ms: r.timestamp_ms };
    for (const f of FIELDS) {
        if (f === 'grant_id' && r[f] == null) continue; // left out when null
        u[f] = r[f] ?? null;
    }
    return u;
}

export function recordHash(r) {
    return crypto.createHash('sha256').update(JSON.stringify(unsignedRecord(r))).digest('hex');
}

export function verifyRecord(r, pkHex) {
    const signable = { action_id: r.action_id, signature_alg: r.signature_alg, key_id: r.key_id,
        record_hash: r.record_hash, ...unsignedRecord(r) };
    const key = crypto.createPublicKey({
        key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(pkHex, 'hex')]),
        format: 'der', type: 'spki' });
    return crypto.verify(null, Buffer.from(JSON.stringify(signable)), key,
        Buffer.from(r.signature, 'hex'));
}

export function publicKeyOfSeed(seedHex) {
    const sk = crypto.createPrivateKey({
        key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedHex, 'hex')]),
        format: 'der', type: 'pkcs8' });
    return crypto.createPublicKey(sk).export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
}

if (process.argv[1] && process.argv[1].endsWith('verify.mjs')) {
    const pk = process.argv[2] === '--key-file'
        ? publicKeyOfSeed(JSON.parse(fs.readFileSync(process.argv[3], 'utf8')).secret_key_hex)
        : process.argv[2];
    const records = JSON.parse(fs.readFileSync(0, 'utf8'));
    let prev = null;
    records.forEach((r, i) => {
        const bad = recordHash(r) !== r.record_hash ? 'record_hash'
            : r.action_id !== r.record_hash ? 'action_id'
            : (r.prev_hash ?? null) !== prev ? 'prev_hash (chain)'
            : r.key_id !== pk ? 'key_id'
            : !verifyRecord(r, pk) ? 'signature' : null;
        if (bad) {
            console.error(`record ${i + 1} (${r.action_id}): ${bad} does not verify`);
            process.exit(1);
        }
        prev = r.record_hash;
    });
    console.log(`ok ${records.length}`);
}
