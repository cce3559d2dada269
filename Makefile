# Kheish control plane. `make` builds bin/; `make up` installs, builds and
# starts the stack; `make test` runs every test. See README.md.

CC      ?= cc
O       ?= .
BIN     := $(O)/bin
OBJ     := $(O)/build/obj
CFLAGS  ?= -O2 -g
PKG_CFLAGS = $(shell pkg-config --cflags $(1))
PKG_LIBS   = $(shell pkg-config --libs $(1))
# The project's own flags stay even when CFLAGS is given on the command line.
KH_CFLAGS := $(CFLAGS) -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Icommon -Istore \
             -Ifcgi -MMD -MP $(call PKG_CFLAGS,libpq libcurl)

FCGI_PKGS  := fcgi jansson libpq libsodium
CLI_PKGS   := libcurl jansson libpq libsodium

COMMON_SRC := $(wildcard common/*.c)
STORE_SRC  := $(wildcard store/*.c)
FCGI_SRC   := $(wildcard fcgi/*.c)
CLI_SRC    := $(wildcard cli/*.c)
MIGRATIONS := $(sort $(wildcard sql/[0-9]*.sql))

obj = $(patsubst %.c,$(OBJ)/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
STORE_OBJ  := $(call obj,$(STORE_SRC)) $(OBJ)/store/migrations.o
FCGI_OBJ   := $(call obj,$(FCGI_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
TEST_BINS  := $(patsubst tests/unit/%.c,$(BIN)/test-%,$(wildcard tests/unit/*.c))

.PHONY: all deps up down test asan format format-check bench clean
all: $(BIN)/kheish-fcgi $(BIN)/kheish $(TEST_BINS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -c -o $@ $<

$(OBJ)/store/migrations.c: store/embed-sql.sh $(MIGRATIONS)
	@mkdir -p $(dir $@)
	sh store/embed-sql.sh $(MIGRATIONS) > $@

$(OBJ)/store/migrations.o: $(OBJ)/store/migrations.c
	$(CC) $(KH_CFLAGS) -c -o $@ $<

$(BIN)/kheish-fcgi: $(FCGI_OBJ) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,$(FCGI_PKGS))

$(BIN)/kheish: $(CLI_OBJ) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,$(CLI_PKGS))

# Unit and store tests: each tests/unit/NAME.c is a program linked with the
# modules it exercises (fcgi's request parsing included, never its main).
$(BIN)/test-%: $(OBJ)/tests/unit/%.o $(filter-out $(OBJ)/fcgi/main.o,$(FCGI_OBJ)) $(STORE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $^ $(LDFLAGS) $(call PKG_LIBS,$(FCGI_PKGS))

# Installs the Debian packages the project builds, runs and tests with.
# Idempotent: a second run only checks that they are present.
DEB_PKGS := build-essential pkg-config libfcgi-dev libfcgi-bin libjansson-dev libpq-dev \
            libsodium-dev libcurl4-openssl-dev libssl-dev nginx postgresql postgresql-contrib \
            curl jq wrk clang clang-format libclang-rt-14-dev
deps:
	@if dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | grep -qv 'install ok installed' \
	    || [ $$(dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | wc -l) -ne $(words $(DEB_PKGS)) ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEB_PKGS); \
	else echo "deps: all $(words $(DEB_PKGS)) packages present"; fi

up: deps all
	$(BIN)/kheish up

down:
	$(BIN)/kheish down

test: all
	BIN_DIR=$(abspath $(BIN)) KHEISH_NGINX_TEMPLATE_DIR=$(CURDIR)/nginx tests/run.sh

asan:
	$(MAKE) O=build/asan CC=clang \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" test

FORMAT_SRC = $(wildcard common/*.[ch] store/*.[ch] fcgi/*.[ch] cli/*.[ch] tests/unit/*.[ch] bench/*.[ch])
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

$(BIN)/bench-select1: bench/select1.c
	@mkdir -p $(dir $@)
	$(CC) $(KH_CFLAGS) -o $@ $< $(LDFLAGS) $(call PKG_LIBS,fcgi libpq)

bench: all $(BIN)/bench-select1
	BIN_DIR=$(abspath $(BIN)) bench/run.sh

clean:
	rm -rf $(O)/bin $(O)/build

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
