# Calderwood - plain GNU Makefile with pkg-config.
#
#   make run         install missing packages, build, serve the demo domain
#   make test        install, build, run every test, then again under ASan+UBSan
#   make bench-engine  in-process engine benchmark (no network)
#   make fmt         clang-format every C file
#
# Variables: V=1 verbose, SANITIZE=address,undefined, BUILD=dir.

PKGS     := jansson sqlite3 libsodium
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
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -ldl -lm

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

.PHONY: all deps run test test-unit test-integration test-asan bench-engine fmt clean check-fmt

all: $(BIN)

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

$(BUILD)/bench-engine: $(BUILD)/tools/bench_engine.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

run: deps $(BIN)
	$(BIN) serve --data ./data

test: deps
	$(Q)$(MAKE) --no-print-directory test-all
	$(Q)$(MAKE) --no-print-directory test-all SANITIZE=address,undefined
	@echo "all tests passed (plain and ASan+UBSan)"

test-asan: deps
	$(Q)$(MAKE) --no-print-directory test-all SANITIZE=address,undefined

test-all: $(BIN) $(UNIT_BIN) $(INT_BIN) $(MODULES) $(TOOLS)
	$(Q)BUILD=$(BUILD) tests/run-unit.sh $(UNIT_BIN) $(INT_BIN)
	$(Q)BUILD=$(BUILD) tests/run-cli.sh

bench-engine: deps $(BUILD)/bench-engine
	$(BUILD)/bench-engine $(BENCH_ARGS)

fmt:
	clang-format -i $(shell find src include tests tools -name '*.[ch]')

check-fmt:
	clang-format --dry-run -Werror $(shell find src include tests tools -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
