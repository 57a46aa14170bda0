# Calderwood - plain GNU Makefile with pkg-config.
#
#   make run         install missing packages, build, serve the demo domain
#   make test        install, build, run every test, then again under ASan+UBSan
#   make bench-engine  in-process engine benchmark (no network); STORE=postgres://... (or
#                      STORE=postgres: a throwaway cluster) adds PostgreSQL, side by side with SQLite
#   make fmt         clang-format every C file
#   make install     binary, header, calderwood.pc, web files, man page, unit (PREFIX, DESTDIR)
#   make chaos       the crash harness, short form (SIGKILL/restart under load, < 60 s)
#   make soak        the crash harness, long form (SOAK_KILLS kills or SOAK_MINUTES)
#   make test-threads  tests/e2e/threads.test.mjs with 1 and 4 gateway threads
#                    (THREADS_ALL=1: the whole e2e suite with --gateway-threads 1 too)
#
# Variables: V=1 verbose, SANITIZE=address,undefined, BUILD=dir.

PKGS     := jansson sqlite3 libsodium libwebsockets libpq libnats
TEST_PKGS := cmocka
CC       ?= cc
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD    ?= build
SANFLAGS :=
else
BUILD    ?= build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

OPT      ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -Iinclude -Isrc -Itests -MMD -MP $(SANFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  += $(SANFLAGS) -rdynamic
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lpthread -ldl -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libcalderwood.a
BIN      := $(BUILD)/calderwood

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INT_SRC  := $(wildcard tests/integration/*.c)
INT_BIN  := $(INT_SRC:tests/integration/%.c=$(BUILD)/tests/%)
MODULES  := $(patsubst tests/modules/%.c,$(BUILD)/tests/%.so,$(wildcard tests/modules/*.c))
TOOLS    := $(BUILD)/bench-engine
MAN      := $(BUILD)/calderwood.1
# LD_PRELOAD shims for the fault tests (tests/faults/): never sanitized, as
# they sit in front of the sanitizer's runtime.
FAULTS   := $(patsubst tests/faults/%.c,$(BUILD)/tests/%.so,$(wildcard tests/faults/*.c))

.PHONY: all deps test-deps test-build run test test-all test-asan test-pg test-pg-browser test-pg-full test-bins test-threads bench-engine fmt clean check-fmt \
        chaos soak test-cluster test-cluster-faults test-cluster-browser cluster cluster-down bench-cluster

all: $(BIN) $(MAN)

deps:
	$(Q)tools/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(LIB)
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS) \
	    $(shell pkg-config --libs $(TEST_PKGS))

$(BUILD)/tests/%: $(BUILD)/tests/integration/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS) \
	    $(shell pkg-config --libs $(TEST_PKGS))

$(BUILD)/tests/%.so: tests/modules/%.c include/calderwood.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -fPIC -shared -o $@ $<

$(BUILD)/tests/%.so: tests/faults/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl -lpthread

$(BUILD)/bench-engine: $(BUILD)/tools/bench_engine.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

# deps first, then a sub-make: pkg-config flags are read after the packages exist.
run: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(BIN) serve --data ./data

# Every test, in two groups side by side (tests/run-groups.sh): the plain
# build (unit, CLI, e2e, chaos, install, upgrade, client types, the domain
# guide's example, browser, the PostgreSQL matrix, the distributed cluster)
# and the ASan+UBSan build (the same core suite, the PostgreSQL matrix, part
# of the cluster's, fuzzing).
# Everything is built and every package installed first, so the groups share
# nothing but the machine.
SAN_TEST := SANITIZE=address,undefined
SUBMAKE  := $(MAKE) --no-print-directory
test: test-deps
	$(Q)$(SUBMAKE) check-fmt
	$(Q)$(SUBMAKE) -j2 test-build
	$(Q)$(SUBMAKE) -j2 test-build $(SAN_TEST)
	$(Q)$(SUBMAKE) -j2 fuzz-build
	$(Q)for d in tests/e2e tests/browser tests/client-types; do [ -d $$d/node_modules ] || \
	    (cd $$d && npm ci --no-audit --no-fund --prefer-offline >/dev/null) || exit 1; done
	$(Q)tests/run-groups.sh \
	    plain "$(SUBMAKE) test-all && $(SUBMAKE) test-install test-upgrade test-client-types test-examples \
	           && BUILD=build tests/browser/run.sh && tests/pg/run.sh build && $(SUBMAKE) test-cluster test-cluster-faults" \
	    sanitized "$(SUBMAKE) test-all $(SAN_TEST) && tests/pg/run.sh build/san && $(SUBMAKE) test-cluster $(SAN_TEST) \
	           && $(SUBMAKE) fuzz-run FUZZ_SECONDS=$(or $(TEST_FUZZ_SECONDS),20)"
	@echo "all tests passed: unit, cli, e2e (plain and ASan+UBSan, SQLite and PostgreSQL), install, upgrade, client types, examples, browser, cluster, fuzz"

# The packages only the tests need (Chromium for the browser suite), on top
# of the build's; and what every test group runs, built up front.
test-deps:
	$(Q)CW_TEST_DEPS=1 tools/install-deps.sh

test-build: $(BIN) $(MAN) $(UNIT_BIN) $(INT_BIN) $(MODULES) $(FAULTS) $(TOOLS) $(BUILD)/tests/notify_listen

test-asan: deps
	$(Q)$(MAKE) --no-print-directory test-all SANITIZE=address,undefined

test-all: $(BIN) $(UNIT_BIN) $(INT_BIN) $(MODULES) $(FAULTS) $(TOOLS)
	$(Q)BUILD=$(BUILD) tests/run-unit.sh $(UNIT_BIN) $(INT_BIN)
	$(Q)BUILD=$(BUILD) tests/run-cli.sh
	$(Q)BUILD=$(BUILD) tests/e2e/run.sh
	$(Q)BUILD=$(BUILD) tests/chaos/run.sh $(CHAOS_ARGS)

# The crash harness (tests/chaos/, docs/RELIABILITY.md): clients keep sending
# while the server is SIGKILLed and restarted on its data directory; then
# every command, event, stream and projection is checked. `chaos` is the short
# form (at least 5 kills, under a minute); `soak` runs until SOAK_KILLS kills
# or SOAK_MINUTES, whichever comes first, with a progress line and the
# server's RSS judged across lives. CHAOS_ARGS/SOAK_ARGS pass more options
# (--users, --conns, --seed, ...: see tests/chaos/chaos.mjs). STORE=postgres
# runs either against a throwaway PostgreSQL cluster (tests/pg/with-cluster.sh),
# checked with psql, `calderwood check` and pg_amcheck; chaos then runs for
# CHAOS_PG_MINUTES (start-up and recovery on PostgreSQL are slower, so a run
# counted in kills would see little load). Neither is part of `make test`.
SOAK_KILLS   ?= 200
SOAK_MINUTES ?= 30
CHAOS_PG_MINUTES ?= 2

chaos: $(BIN)
	$(Q)BUILD=$(BUILD) STORE=$(STORE) tests/chaos/run.sh \
	    $(if $(filter postgres,$(STORE)),--minutes $(CHAOS_PG_MINUTES) --kills 1000000 --min-seconds 0) $(CHAOS_ARGS)

# `make test` runs the e2e suite with the default thread count (one per
# core); this runs the multi-thread file with 1 and 4 gateway threads, and
# with THREADS_ALL=1 the whole suite again with one thread.
test-threads: $(BIN)
	$(Q)CW_SERVER_ARGS="--gateway-threads 1" BUILD=$(BUILD) tests/e2e/run.sh tests/e2e/threads.test.mjs
	$(Q)CW_SERVER_ARGS="--gateway-threads 4" BUILD=$(BUILD) tests/e2e/run.sh tests/e2e/threads.test.mjs
	$(Q)if [ "$(THREADS_ALL)" = 1 ]; then CW_SERVER_ARGS="--gateway-threads 1" BUILD=$(BUILD) tests/e2e/run.sh; fi

soak: $(BIN)
	$(Q)BUILD=$(BUILD) STORE=$(STORE) tests/chaos/run.sh --soak --kills $(SOAK_KILLS) --minutes $(SOAK_MINUTES) \
	    --users 4 --conns 3 --live-ms 8000 $(SOAK_ARGS)

test-bins: $(BIN) $(UNIT_BIN) $(INT_BIN) $(MODULES)

# The store-facing unit, integration and end-to-end tests again on a
# throwaway PostgreSQL 15 cluster (tests/pg/run.sh starts and stops it),
# plain and under ASan+UBSan.
test-pg: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)$(MAKE) --no-print-directory test-bins SANITIZE=address,undefined
	$(Q)tests/pg/run.sh build build/san

# Not in `make test`, for time: the browser suite on a throwaway
# PostgreSQL cluster (as long as the SQLite run there), and test-pg-full:
# every e2e file on PostgreSQL (plain and ASan+UBSan builds), then the browser suite.
test-pg-browser: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(Q)BUILD=$(BUILD) tests/pg/with-cluster.sh tests/browser/run.sh

test-pg-full: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)$(MAKE) --no-print-directory test-bins SANITIZE=address,undefined
	$(Q)CW_PG_E2E=all tests/pg/run.sh build build/san
	$(Q)$(MAKE) --no-print-directory test-pg-browser

# The distributed deployment (tests/cluster/): real nats-server and PostgreSQL,
# gateways and processors of the real binary. test-cluster (in make test, about
# 90 s idle): across gateways, logout, kill -9 and graceful stop of the active
# processor, the CLI's administration commands through the queue, the
# asynchronous publish's acks (order, a full stream) and, through a proxy
# that holds one JetStream answer back, their order when one comes late or
# times out, logins and logouts that do not hold the gateway's loop while
# JetStream answers, and a logout whose publish or its answer comes after
# the timeout; with SANITIZE set, the cross-gateway, takeover, acks and
# login and logout tests only.
# test-cluster-faults (in make test, plain build, about 60 s idle): a gateway
# killed behind nginx, nats-server restarted, and PostgreSQL crashed and
# started again, under load.
CLUSTER_SAN_TESTS := --test-name-pattern='sees the updates|kill -9|asynchronous publish|comes late|without holding the loop'
test-cluster: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(Q)BUILD=$(BUILD) tests/cluster/run.sh $(if $(SANITIZE),$(CLUSTER_SAN_TESTS)) \
	    tests/cluster/cluster.test.mjs tests/cluster/acks.test.mjs tests/cluster/ackorder.test.mjs \
	    tests/cluster/login-publish.test.mjs \
	    $(if $(SANITIZE),,tests/cluster/admin-queue.test.mjs)

# A local cluster on loopback (tools/cluster.sh): nats-server, PostgreSQL, two
# processors, two gateways, a query node and nginx in front, all under
# CLUSTER_DIR; it prints the URL, the demo user, and each PID and log.
CLUSTER_DIR ?= cluster-data

cluster: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(Q)BUILD=$(BUILD) tools/cluster.sh up $(CLUSTER_DIR)

cluster-down:
	$(Q)tools/cluster.sh down $(CLUSTER_DIR)

# Not in make test: the local cluster of `make cluster` on free ports in a
# temporary directory, and two headless Chromium tabs through its nginx whose
# sockets are on different gateways, seeing each other's page views live
# (tests/browser/cluster/; about a minute idle).
test-cluster-browser: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(Q)BUILD=$(BUILD) tests/browser/cluster/run.sh

test-cluster-faults: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(Q)BUILD=build tests/cluster/run.sh tests/cluster/gateway-kill.test.mjs \
	    tests/cluster/nats-restart.test.mjs tests/cluster/pg-restart.test.mjs

# STORE=postgres://... runs each batch cap on SQLite and then on that
# (empty, throwaway) database, and prints the ratio; STORE=postgres starts
# a throwaway PostgreSQL cluster for it (tests/pg/with-cluster.sh).
bench-engine: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/bench-engine
	$(if $(filter postgres,$(STORE)),tests/pg/with-cluster.sh )$(BUILD)/bench-engine --sweep \
	    $(if $(STORE),--store '$(if $(filter postgres,$(STORE)),@STORE@,$(STORE))') $(BENCH_ARGS)

C_FILES = $(shell find src include tests tools examples -name '*.[ch]' -not -path '*/node_modules/*')

fmt:
	clang-format -i $(C_FILES)

check-fmt:
	$(Q)clang-format --dry-run -Werror $(C_FILES)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# fuzzing
#
#   make fuzz [FUZZ_SECONDS=30]
#
# Builds each libFuzzer target tests/fuzz/fuzz_<t>.c with clang, straight from
# the sources it needs (no gcc objects), into build/fuzz/, then runs it for
# FUZZ_SECONDS on a scratch copy of tests/fuzz/corpus/<t>/ (the committed
# corpus is only read). Fails on any crash, leak, sanitizer report or
# timeout; the input that did it is kept as build/fuzz/<t>-crash-* (or
# leak-, timeout-), and the log as build/fuzz/<t>.log.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR     := build/fuzz
FUZZ_TARGETS := wire cookie
FUZZ_TARGETS += frame http
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror \
                -Wshadow -Wno-unused-parameter -Iinclude -Isrc \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                $(shell pkg-config --cflags jansson libsodium 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs jansson libsodium 2>/dev/null) -lm
FUZZ_CORE    := src/core/buf.c src/core/alloc.c src/core/error.c
FUZZ_HDRS    := $(wildcard include/*.h src/core/*.h src/gateway/wire.h src/gateway/envscan.h \
                  src/auth/*.h) \
                src/gateway/wsframe.h src/gateway/httpreq.h
FUZZ_wire_SRC   := tests/fuzz/fuzz_wire.c src/gateway/wire.c src/gateway/envscan.c \
                   src/core/utf8.c $(FUZZ_CORE)
FUZZ_cookie_SRC := tests/fuzz/fuzz_cookie.c src/auth/cookie.c $(FUZZ_CORE)
FUZZ_frame_SRC  := tests/fuzz/fuzz_frame.c src/gateway/wsframe.c src/core/utf8.c
FUZZ_http_SRC   := tests/fuzz/fuzz_http.c src/gateway/httpreq.c

.PHONY: fuzz fuzz-build fuzz-run

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-run

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

define FUZZ_RULE
$(FUZZ_DIR)/fuzz_$(1): $$(FUZZ_$(1)_SRC) $$(FUZZ_HDRS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  FUZZ-CC $$@")
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ $$(FUZZ_$(1)_SRC) $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULE,$(t))))

fuzz-run: fuzz-build
	$(Q)for t in $(FUZZ_TARGETS); do \
	    work=$(FUZZ_DIR)/corpus-$$t; \
	    rm -rf $$work && mkdir -p $$work && cp tests/fuzz/corpus/$$t/* $$work/ || exit 1; \
	    dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	    echo "  FUZZ $$t for $(FUZZ_SECONDS)s"; \
	    if ! $(FUZZ_DIR)/fuzz_$$t $$dict -max_len=70000 -max_total_time=$(FUZZ_SECONDS) \
	            -timeout=10 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t- \
	            $$work >$(FUZZ_DIR)/$$t.log 2>&1; then \
	        tail -n 60 $(FUZZ_DIR)/$$t.log; \
	        echo "fuzz: $$t FAILED (log: $(FUZZ_DIR)/$$t.log)"; exit 1; \
	    fi; \
	    grep '^Done' $(FUZZ_DIR)/$$t.log; \
	done; echo "fuzz: all targets passed"

# benchmarks
#
#   make bench [BENCH_ARGS=...]
#
# Builds the server (normal -O2 build) and the load generator
# build/calderwood-bench (tools/bench/, no libwebsockets, no jansson), then
# runs tools/bench/run-suite.sh: a fresh server on a free loopback port with
# a fresh data directory, the standard suite (under 10 minutes on 2 cores),
# and bench/results/<date>/report.md with its gnuplot figures (raw outputs
# in bench/results/<date>/raw/, git-ignored). BENCH_ARGS go to run-suite.sh
# (--quick for a short smoke run). STORE=postgres://... runs the server on
# that (empty) database; STORE=postgres on a throwaway cluster of its own.
BENCH_SRC := $(wildcard tools/bench/*.c)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/calderwood-bench: $(BENCH_OBJ)
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lpthread -lm

.PHONY: bench bench-threads
# The distributed mode against --role all on SQLite, in one run of at most 10
# minutes (tools/bench/run-cluster.sh): bench/results/cluster-<date>/report.md.
bench-cluster:
	$(Q)CW_BENCH_DEPS=1 tools/install-deps.sh
	$(Q)$(MAKE) --no-print-directory $(BIN) $(BUILD)/calderwood-bench
	$(Q)BUILD=$(BUILD) tools/bench/run-cluster.sh $(BENCH_ARGS)

bench:
	$(Q)CW_BENCH_DEPS=1 tools/install-deps.sh
	$(Q)$(MAKE) --no-print-directory $(BIN) $(BUILD)/calderwood-bench
	$(Q)BUILD=$(BUILD) $(if $(filter postgres,$(STORE)),tests/pg/with-cluster.sh )tools/bench/run-suite.sh \
	    $(if $(STORE),--store '$(if $(filter postgres,$(STORE)),@STORE@,$(STORE))') $(BENCH_ARGS)

# The whole suite with --gateway-threads 1, then 2, and the two side by side
# (issue 12's scaling comparison): bench/results/<date>-threads.md.
bench-threads:
	$(Q)CW_BENCH_DEPS=1 tools/install-deps.sh
	$(Q)$(MAKE) --no-print-directory $(BIN) $(BUILD)/calderwood-bench
	$(Q)d=bench/results/$$(date +%F); \
	    for t in 1 2; do BUILD=$(BUILD) tools/bench/run-suite.sh --gateway-threads $$t --out $$d-threads-$$t $(BENCH_ARGS) || exit 1; done; \
	    tools/bench/compare-runs.py $$d-threads-1 $$d-threads-2 | tee $$d-threads.md

# version, manual page, installation
#
#   make install   [PREFIX=/usr/local] [DESTDIR=]   make uninstall (same variables)
#   make test-install        install into a scratch DESTDIR, use it, uninstall
#   make test-upgrade        a database made by an older calderwood, and one by a newer
#   make test-client-types   tsc --noEmit over web/static/calderwood.d.ts
#   make test-examples       examples/todo (docs/DOMAIN.md) built with pkg-config against an install, and run
#
# The version is VERSION here; the git commit is stamped into the binary
# (calderwood --version), "unknown" outside a checkout. The manual page is
# not committed: `calderwood man` prints it from the subcommands' own option
# tables, so it lists exactly what --help does.
VERSION    := 0.1.0
GIT_COMMIT := $(or $(shell git rev-parse --short HEAD 2>/dev/null),unknown)
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR     ?= $(PREFIX)/lib
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(LIBDIR)/systemd/system
PKGDATADIR := $(DATADIR)/calderwood
DIST       := $(BUILD)/dist
DIST_SUBST := -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
              -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
              -e 's|@WEBDIR@|$(PKGDATADIR)/web|g' -e 's|@VERSION@|$(VERSION)|g'
STAMP      := $(VERSION) $(GIT_COMMIT) $(PREFIX) $(BINDIR) $(INCLUDEDIR) $(SYSCONFDIR) $(DATADIR)

.PHONY: install uninstall test-install test-upgrade test-client-types test-examples FORCE

# Rewritten only when the version, commit or paths change, so the objects that use them rebuild then.
$(BUILD)/stamp: FORCE
	@mkdir -p $(dir $@)
	@echo "$(STAMP)" | cmp -s - $@ || echo "$(STAMP)" >$@

FORCE:

$(BUILD)/src/cli/version.o $(BUILD)/src/cli/man.o: $(BUILD)/stamp
$(BUILD)/src/cli/version.o $(BUILD)/src/cli/man.o: \
    CFLAGS += -DCW_VERSION='"$(VERSION)"' -DCW_GIT_COMMIT='"$(GIT_COMMIT)"'

$(MAN): $(BIN)
	$(Q)$(BIN) man >$@.tmp && mv $@.tmp $@

$(DIST)/%: dist/%.in $(BUILD)/stamp
	@mkdir -p $(dir $@)
	$(Q)sed $(DIST_SUBST) $< >$@

install: $(BIN) $(MAN) $(DIST)/calderwood.pc $(DIST)/calderwood.service
	install -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/calderwood
	install -Dm644 include/calderwood.h $(DESTDIR)$(INCLUDEDIR)/calderwood.h
	install -Dm644 $(DIST)/calderwood.pc $(DESTDIR)$(LIBDIR)/pkgconfig/calderwood.pc
	install -Dm644 $(MAN) $(DESTDIR)$(MANDIR)/man1/calderwood.1
	install -Dm644 $(DIST)/calderwood.service $(DESTDIR)$(UNITDIR)/calderwood.service
	install -Dm644 dist/calderwood.conf $(DESTDIR)$(PKGDATADIR)/calderwood.conf.example
	cd web && find . -type f | while read -r f; do \
	    install -Dm644 "$$f" "$(DESTDIR)$(PKGDATADIR)/web/$$f" || exit 1; done
	@# The live configuration is the administrator's: made once, never overwritten.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/calderwood.conf ]; then \
	    echo "keeping $(DESTDIR)$(SYSCONFDIR)/calderwood.conf"; \
	else install -Dm644 dist/calderwood.conf $(DESTDIR)$(SYSCONFDIR)/calderwood.conf; fi

# Removes what install put there; an edited calderwood.conf stays (and says so).
uninstall:
	@if cmp -s $(DESTDIR)$(PKGDATADIR)/calderwood.conf.example \
	        $(DESTDIR)$(SYSCONFDIR)/calderwood.conf; then \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/calderwood.conf; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/calderwood.conf ]; then \
	    echo "kept $(DESTDIR)$(SYSCONFDIR)/calderwood.conf: it was edited"; fi
	rm -f $(DESTDIR)$(BINDIR)/calderwood $(DESTDIR)$(INCLUDEDIR)/calderwood.h \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/calderwood.pc $(DESTDIR)$(MANDIR)/man1/calderwood.1 \
	    $(DESTDIR)$(UNITDIR)/calderwood.service
	rm -rf $(DESTDIR)$(PKGDATADIR)

test-install: $(BIN) $(MAN) $(BUILD)/tests/notify_listen
	$(Q)BUILD=$(BUILD) tests/install/run.sh

$(BUILD)/tests/notify_listen: tests/install/notify_listen.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $< $(LDFLAGS)

test-upgrade: $(BIN)
	$(Q)BUILD=$(BUILD) tests/upgrade/run.sh

test-client-types:
	$(Q)tests/client-types/run.sh

test-examples: $(BIN) $(MAN)
	$(Q)BUILD=$(BUILD) tests/examples/run.sh
