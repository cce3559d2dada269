# Kheish control plane. `make` builds bin/; `make up` installs, builds and
# starts the stack; `make test` runs every test. See README.md.

CC      ?= cc
O       ?= .
BIN     := $(O)/bin
OBJ     := $(O)/build/obj
CFLAGS  ?= -O2 -g
# Build flags are expanded only in recipes, never while the Makefile is read:
# `make up` installs the -dev packages pkg-config asks about (deps) before the
# first compile needs them. .ci/run checks it with a pkg-config that fails.
PKG_CONFIG ?= pkg-config
PKG_LIBS    = $(shell $(PKG_CONFIG) --libs $(1))
# Asked once, on first use (the deferred, then memoised, form of :=).
PKG_INCLUDE = $(eval PKG_INCLUDE := $(shell $(PKG_CONFIG) --cflags libpq libcurl))$(PKG_INCLUDE)
# The project's own flags stay even when CFLAGS is given on the command line.
# Each module sees common/, store/ and its own directory ($(<D)), never
# another binary's headers; the tests and fuzz harnesses also see fcgi/.
KH_CFLAGS = $(CFLAGS) -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Icommon -Istore \
            -I$(<D) $(TEST_INCLUDE) -MMD -MP $(PKG_INCLUDE)

FCGI_PKGS  := fcgi jansson libpq libsodium
CLI_PKGS   := libcurl jansson libpq libsodium

COMMON_SRC := $(wildcard common/*.c)
STORE_SRC  := $(wildcard store/*.c)
FCGI_SRC   := $(wildcard fcgi/*.c)
CLI_SRC    := $(wildcard cli/*.c)
RELAY_SRC  := $(wildcard sse-relay/*.c)
RUNNER_SRC := $(wildcard runner/*.c)
MIGRATIONS := $(sort $(wildcard sql/migrations/[0-9]*.sql)) $(sort $(wildcard sql/functions/*.sql))

obj = $(patsubst %.c,$(OBJ)/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
STORE_OBJ  := $(call obj,$(STORE_SRC)) $(OBJ)/store/migrations.o
FCGI_OBJ   := $(call obj,$(FCGI_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
RELAY_OBJ  := $(call obj,$(RELAY_SRC))
RUNNER_OBJ := $(call obj,$(RUNNER_SRC))
TEST_BINS  := $(patsubst tests/unit/%.c,$(BIN)/test-%,$(wildcard tests/unit/*.c))

.PHONY: all deps up down test asan fuzz format format-check lint bench clean
all: $(BIN)/kheish-fcgi $(BIN)/kheish-sse-relay $(BIN)/kheish-runner $(BIN)/kheish $(TEST_BINS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -c -o $@ $<

$(OBJ)/tests/%.o: TEST_INCLUDE = -Ifcgi -Isse-relay
$(O)/build/fuzz/tests/%.o: TEST_INCLUDE = -Ifcgi -Isse-relay -Icli -Irunner

$(OBJ)/store/migrations.c: store/embed-sql.sh $(MIGRATIONS)
	@mkdir -p $(dir $@)
	sh store/embed-sql.sh $(MIGRATIONS) > $@

$(OBJ)/store/migrations.o: $(OBJ)/store/migrations.c
	$(CC) $(KH_CFLAGS) -c -o $@ $<

$(BIN)/kheish-fcgi: $(FCGI_OBJ) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,$(FCGI_PKGS))

$(BIN)/kheish-sse-relay: $(RELAY_OBJ) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,jansson libpq libsodium)

$(BIN)/kheish-runner: $(RUNNER_OBJ) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,libcurl jansson libpq libsodium)

$(BIN)/kheish: $(CLI_OBJ) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,$(CLI_PKGS))

# Unit and store tests: each tests/unit/NAME.c is a program linked with the
# modules it exercises (fcgi's request parsing included, never its main).
# The runner's modules are tested without its loop: its tools
# (runner/tool_*.c) and its provider calls (runner/provider*.c, driven against
# the mock provider, tests/mock-provider/, over HTTP).
TEST_PKGS       := $(FCGI_PKGS)
RUNNER_TOOL_OBJ := $(call obj,$(wildcard runner/tool_*.c))
$(OBJ)/tests/unit/tool_%.o $(OBJ)/tests/unit/provider_%.o: TEST_INCLUDE = -Ifcgi -Isse-relay -Irunner
$(BIN)/test-tool_files $(BIN)/test-tool_shell: $(RUNNER_TOOL_OBJ)
$(BIN)/test-provider_tools: $(call obj,$(wildcard runner/provider*.c))
$(BIN)/test-provider_tools: TEST_PKGS += libcurl

$(BIN)/test-%: $(OBJ)/tests/unit/%.o $(filter-out $(OBJ)/fcgi/main.o,$(FCGI_OBJ)) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,$(TEST_PKGS))

# Installs the Debian packages the project builds, runs and tests with, and
# (as root) the system user the runner's bash tool runs commands as
# (runner/tool_shell.h; bubblewrap is its sandbox, docs/security.md).
# Idempotent: a second run only checks that they are present.
DEB_PKGS := build-essential pkg-config libfcgi-dev libfcgi-bin libjansson-dev libpq-dev \
            libsodium-dev libcurl4-openssl-dev libssl-dev nginx postgresql postgresql-contrib \
            curl jq wrk clang clang-format libclang-rt-14-dev bubblewrap
TOOL_USER := kheish-tool
deps:
	@if dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | grep -qv 'install ok installed' \
	    || [ $$(dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | wc -l) -ne $(words $(DEB_PKGS)) ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEB_PKGS); \
	else echo "deps: all $(words $(DEB_PKGS)) packages present"; fi
	@if [ "$$(id -u)" = 0 ] && ! getent passwd $(TOOL_USER) >/dev/null; then \
	    useradd --system --user-group --no-create-home --home-dir /nonexistent \
	        --shell /usr/sbin/nologin $(TOOL_USER) && echo "deps: created the user $(TOOL_USER)"; \
	fi

# all in a second make, started once deps has run: nothing of the build is
# decided before the packages it needs are there, even under -j.
up: deps
	$(MAKE) all
	$(BIN)/kheish up

down:
	$(BIN)/kheish down

test: all
	BIN_DIR=$(abspath $(BIN)) KHEISH_NGINX_TEMPLATE_DIR=$(CURDIR)/nginx tests/run.sh

asan:
	$(MAKE) O=build/asan CC=clang \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" KHEISH_TEST_SANITIZED=1 test

# ---- fuzz -----------------------------------------------------------------
# libFuzzer harnesses of the parsers that see client bytes: tests/fuzz/NAME.c
# becomes $(BIN)/fuzz-NAME (see tests/fuzz/README.md). The project's objects are
# rebuilt with clang, ASan+UBSan and fuzzer-no-link into $(FUZZ_OBJ) (the normal
# build is untouched) and archived, so each harness links only the objects it
# needs; -fsanitize=fuzzer is for the final link only. `make fuzz` builds every
# harness and runs each for FUZZ_SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus/NAME/) in a temporary directory, and fails on any crash,
# leak, sanitizer report, timeout or broken invariant; the work directory
# (log, crashing input) is kept then. `make fuzz FUZZ_SECONDS=10` in CI.
FUZZ_SECONDS ?= 60
FUZZ_CC      := clang
FUZZ_OBJ     := $(O)/build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS   = $(KH_CFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))
FUZZ_BINS    := $(patsubst %,$(BIN)/fuzz-%,$(FUZZ_NAMES))
FUZZ_LIB_OBJ := $(patsubst $(OBJ)/%,$(FUZZ_OBJ)/%,$(filter-out $(OBJ)/fcgi/main.o,$(FCGI_OBJ)) \
                $(filter-out $(OBJ)/sse-relay/main.o,$(RELAY_OBJ)) $(STORE_OBJ) $(COMMON_OBJ) \
                $(OBJ)/cli/backup_tar.o $(RUNNER_TOOL_OBJ))
# Longest input per harness: a little over each parser's own limit, so the
# limit checks are exercised too.
FUZZ_MAX_LEN_query     := 4200
FUZZ_MAX_LEN_path_id   := 256
FUZZ_MAX_LEN_json_body := 65536
FUZZ_MAX_LEN_cursor    := 512
FUZZ_MAX_LEN_route     := 1024
FUZZ_MAX_LEN_auth      := 8192
FUZZ_MAX_LEN_token_file := 4200
FUZZ_MAX_LEN_relay_head := 8200
# routes: over its line limit (8 KiB); the 1 MiB file limit is a unit test.
FUZZ_MAX_LEN_routes := 9000
FUZZ_MAX_LEN_sse    := 16384
FUZZ_MAX_LEN_json_stored := 65536
FUZZ_MAX_LEN_ledger      := 8192
FUZZ_MAX_LEN_backup_tar  := 16384
FUZZ_MAX_LEN_tool_patch  := 8192
# perm_rules: room for a few dozen rules with long reasons; the rule-count
# limit (256) is a unit test.
FUZZ_MAX_LEN_perm_rules  := 16384
# questions: a tool input and an answer's body with room for long texts; the
# string and count limits are unit tests.
FUZZ_MAX_LEN_questions   := 16384

$(FUZZ_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_OBJ)/store/migrations.o: $(OBJ)/store/migrations.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_OBJ)/libkheish.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

.SECONDARY: $(patsubst %,$(FUZZ_OBJ)/tests/fuzz/%.o,$(FUZZ_NAMES))
$(BIN)/fuzz-%: $(FUZZ_OBJ)/tests/fuzz/%.o $(FUZZ_OBJ)/libkheish.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(call PKG_LIBS,$(FCGI_PKGS)) -lm

fuzz: $(FUZZ_BINS)
	@work=$$(mktemp -d "$${TMPDIR:-/tmp}/kheish-fuzz.XXXXXX"); failed=; \
	for spec in $(foreach n,$(FUZZ_NAMES),$(n):$(or $(FUZZ_MAX_LEN_$(n)),4096)); do \
	    n=$${spec%%:*}; d=$$work/$$n; mkdir -p $$d/corpus $$d/artifacts; \
	    cp tests/fuzz/corpus/$$n/* $$d/corpus/ 2>/dev/null || true; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS) s (max_len $${spec#*:})"; \
	    if UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1} \
	        $(BIN)/fuzz-$$n -max_total_time=$(FUZZ_SECONDS) -max_len=$${spec#*:} -timeout=10 \
	        -print_final_stats=1 -artifact_prefix=$$d/artifacts/ $$d/corpus >$$d/log 2>&1; then \
	        grep -h 'DONE' $$d/log | tail -n 1 | sed "s/^/fuzz: $$n: /"; \
	    else \
	        failed="$$failed $$n"; tail -n 80 $$d/log; \
	        for f in $$d/artifacts/*; do [ -f "$$f" ] || continue; \
	            echo "fuzz: $$n: input $$f:"; od -A x -t x1z "$$f" | head -n 32; done; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed (logs and inputs in $$work)"; exit 1; fi; \
	rm -rf "$$work"; echo "fuzz: all $(words $(FUZZ_NAMES)) harnesses passed"

-include $(shell find $(FUZZ_OBJ) -name '*.d' 2>/dev/null)
# ---- end fuzz -------------------------------------------------------------

FORMAT_SRC = $(wildcard common/*.[ch] store/*.[ch] fcgi/*.[ch] sse-relay/*.[ch] runner/*.[ch] \
                         cli/*.[ch] tests/unit/*.[ch] \
                         tests/fuzz/*.[ch] bench/*.[ch] bench/sse/*.[ch])
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

# The shape of the store (docs/architecture.md, "One way to write"), checked
# by grep: time that decides anything is the database's (no wall clock in
# store/ or runner/), events are built in SQL only, and every change is one
# statement (BEGIN ... COMMIT is kheish migrate's alone).
lint:
	@! grep -nE 'util_now_ms|CLOCK_REALTIME|gettimeofday|time\(NULL\)' store/*.c runner/*.c \
	    || { echo "lint: a wall clock in store/ or runner/ (use kheish_now_ms())"; exit 1; }
	@! grep -nE 'kheish_(append_events|stream_event|run_event)\(' store/*.c \
	    || { echo "lint: an event built in C (build it in sql/functions/)"; exit 1; }
	@! grep -n 'store_tx(' store/*.c | grep -v '^store/migrate.c:\|^store/db.c:' \
	    || { echo "lint: a multi-statement write (make it one function of sql/functions/)"; exit 1; }
	@echo "lint: ok"

$(BIN)/bench-select1: bench/select1.c
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $< $(LDFLAGS) $(call PKG_LIBS,fcgi libpq)

$(BIN)/bench-auth-check: $(OBJ)/bench/auth_check.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,jansson libsodium)

bench: all $(BIN)/bench-select1 $(BIN)/bench-auth-check
	BIN_DIR=$(abspath $(BIN)) bench/run.sh

# The runner benchmark of issue 5 (bench/runner/run.sh): runs/s with 2 and 4
# runners, queued -> running and cancel latency, against the mock provider.
.PHONY: bench-runner
bench-runner: all
	BIN_DIR=$(abspath $(BIN)) bench/runner/run.sh

# The backlog benchmark of issue 11 (bench/runner/backlog.sh): draining a
# queue on a table with a long history and stale statistics, against an
# empty table.
.PHONY: bench-backlog
bench-backlog: all
	BIN_DIR=$(abspath $(BIN)) bench/runner/backlog.sh

# The SSE benchmark of issue 4 (bench/sse/run.sh): its load client and its
# publisher share the HTTP bits and the latency histogram; the load client
# parses streams with the project's SSE parser (common/sse.c).
BENCH_SSE_OBJ := $(call obj,bench/sse/http_client.c bench/sse/hist.c) $(OBJ)/common/util.o

$(BIN)/bench-sse-load: $(OBJ)/bench/sse/load.o $(OBJ)/common/sse.o $(BENCH_SSE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,jansson libsodium)

$(BIN)/bench-sse-publish: $(OBJ)/bench/sse/publish.o $(BENCH_SSE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,jansson libpq libsodium)

.PHONY: bench-sse
bench-sse: all $(BIN)/bench-sse-load $(BIN)/bench-sse-publish
	BIN_DIR=$(abspath $(BIN)) bench/sse/run.sh

# Issue 11's acceptance benchmark (bench/sse/followers.sh): /healthz and
# GET /v1/status latency with 0 and 10,000 SSE followers through the
# embedded nginx of a `kheish up` stack.
.PHONY: bench-followers
bench-followers: all $(BIN)/bench-sse-load
	BIN_DIR=$(abspath $(BIN)) KHEISH_NGINX_TEMPLATE_DIR=$(CURDIR)/nginx bench/sse/followers.sh

# Recovery time per fault: tests/integration/95_faults.sh, ROUNDS times.
.PHONY: bench-faults
bench-faults: all
	BIN_DIR=$(abspath $(BIN)) bench/faults/run.sh

clean:
	rm -rf $(O)/bin $(O)/build

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
