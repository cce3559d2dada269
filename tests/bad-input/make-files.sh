#!/usr/bin/env bash
# Regenerates the binary request bodies of the bad-input corpus (the @file:NAME
# bodies of cases.tsv) in this directory. The files are kept in the tree; run
# this only to re-create or change them. Deterministic (gzip -n, no dates).
set -eu
cd "$(dirname "$0")"
out() { printf '%b' "$2" >"$1"; }

# NUL bytes, raw (not the \u0000 escape, which cases.tsv spells inline).
out nul-in-string.bin '{"content":"a\0b"}'
out nul-in-key.bin '{"sess\0ion_id":"x"}'
out nul-before-body.bin '\0{"level":"on"}'
out nul-after-body.bin '{"mode":"plan"}\0'
out nul-only.bin '\0\0\0\0'
# Encodings other than UTF-8, and a BOM.
out utf8-bom.bin '\xef\xbb\xbf{"level":"on"}'
out latin1.bin '{"reason":"caf\xe9"}'
printf '{"content":"x"}' | iconv -f UTF-8 -t UTF-16LE | { printf '\xff\xfe'; cat; } >utf16le-bom.bin
printf '{"mode":"plan"}' | iconv -f UTF-8 -t UTF-16BE >utf16be.bin
printf '{"content":"x"}' | iconv -f UTF-8 -t UTF-32LE >utf32le.bin
# CESU-8: an astral character as two encoded surrogate halves.
out cesu8.bin '{"content":"\xed\xa0\xbd\xed\xb8\x80"}'
# Not JSON at all: a PNG header, a gzip of a valid body, a multipart form.
out png-header.bin '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89'
printf '{"content":"x"}' | gzip -n -9 >gzip.bin
out multipart.bin '--XyZ\r\nContent-Disposition: form-data; name="content"\r\n\r\nhello\r\n--XyZ--\r\n'
