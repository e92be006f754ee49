# shmgr: a manager server for Python's multiprocessing.managers clients, in C on libev, with Lua.
# `make run` builds and serves the default config; `make test` builds and runs every test.

VERSION  := 0.1.0
CC       ?= cc
PYTHON   ?= python3
BUSTED   ?= busted
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CPPFLAGS += -std=c11 -D_GNU_SOURCE -DSHMGR_VERSION='"$(VERSION)"' -Isrc $(shell pkg-config --cflags lua5.4 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4) -lev -lssl -lcrypto -lsqlite3 -lsystemd -lmicrohttpd -lexpat -lm

# Debian packages the build and the tests need (checked by `make deps`): the test suite of
# Debian's python3 holds CPython's own manager tests (test._test_multiprocessing); dill,
# multiprocess and billiard are clients whose pickles shmgr must carry unchanged; libmicrohttpd
# serves /metrics, which the tests fetch with curl and read with Prometheus' own parser.
PYVER    := $(shell /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3.11)
PACKAGES := gcc make pkg-config liblua5.4-dev libev-dev libssl-dev libsqlite3-dev libsystemd-dev libmicrohttpd-dev libexpat1-dev sqlite3 lua5.4 lua-busted lua-socket python3 \
            libpython$(PYVER)-testsuite python3-dill python3-multiprocess python3-billiard \
            python3-prometheus-client curl

SRC   := $(filter-out src/lwire.c,$(wildcard src/*.c))
OBJ   := $(SRC:src/%.c=build/%.o)
CODEC := $(patsubst %,build/%.o,buf ptrmap value value_dict value_cmp value_repr \
           pickle_load pickle_text pickle_names pickle_dump effects)
# the load generator: its own files in bench/, with the server's codec and HMAC
BENCH := $(patsubst bench/%.c,build/bench/%.o,$(wildcard bench/*.c)) $(CODEC) build/auth.o
# the Lua module shmgr.wire (codec + HMAC for Lua clients and specs), position-independent
WIRE  := $(CODEC:build/%=build/pic/%) $(patsubst %,build/pic/%.o,lwire lx_value auth)

# fuzzing: the targets in tests/fuzz/, under libFuzzer (make fuzz) or replayed over their corpora
FUZZERS   := pickle wire lua
FUZZ_TIME ?= 60
# seconds one input may take before libFuzzer calls it a hang
FUZZ_TIMEOUT ?= 25
CLANG     ?= clang
FUZZ_SAN  := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

# make sanitize: the server with AddressSanitizer and UndefinedBehaviorSanitizer through every
# test; make valgrind: the server under valgrind through every test. Each fails on any report.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
REPORTS    = $(CURDIR)/build/reports

.PHONY: all deps fuzz-deps run test conformance bench fuzz sanitize stress valgrind clean install uninstall
all: shmgr shmgr-bench shmgr-cli build/pickle_roundtrip build/lua/shmgr/wire.so $(FUZZERS:%=build/fuzz_%_replay)

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "deps: missing Debian packages:$$missing"; \
	  echo "deps: install them with: sudo apt-get install$$missing"; exit 1; \
	fi

# make fuzz also needs clang and its sanitizer and libFuzzer runtimes
fuzz-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="clang libclang-rt-14-dev"

# memcount.c wraps the allocator's entry points: those no library linked here calls are
# exported all the same, so that a library loaded later cannot bypass the count
ALLOC_EXPORTS := -Wl,--export-dynamic-symbol=valloc,--export-dynamic-symbol=pvalloc,--export-dynamic-symbol=reallocarray

shmgr: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) $(ALLOC_EXPORTS) -o $@ $^ $(LDLIBS)

build/%.o: src/%.c | build
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

shmgr-bench: $(BENCH)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lev -lcrypto -lm

# the server without per-call statistics (SHMGR_NO_STATS): make bench's baseline for their cost
build/nostats/shmgr: $(SRC:src/%.c=build/nostats/%.o)
	$(CC) $(CFLAGS) $(LDFLAGS) $(ALLOC_EXPORTS) -o $@ $^ $(LDLIBS)

build/nostats/%.o: src/%.c
	@mkdir -p build/nostats
	$(CC) $(CPPFLAGS) -DSHMGR_NO_STATS $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

# the operators' client: the load generator's connection, the codec and HMAC
CLI := $(patsubst cli/%.c,build/cli/%.o,$(wildcard cli/*.c)) build/bench/bclient.o $(CODEC) build/auth.o
shmgr-cli: $(CLI)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lev -lcrypto -lm

build/cli/%.o: cli/%.c
	@mkdir -p build/cli
	$(CC) $(CPPFLAGS) -Ibench $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

build/bench/%.o: bench/%.c
	@mkdir -p build/bench
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

build/pickle_roundtrip: tests/tools/pickle_roundtrip.c $(CODEC) | build
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $^ -lcrypto -lm

# each fuzz target with a plain main() that replays files: what `make test` runs over the corpora
build/fuzz_pickle_replay: tests/fuzz/fuzz_pickle.c tests/fuzz/replay.c $(CODEC) | build
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $^ -lcrypto -lm

build/fuzz_wire_replay: tests/fuzz/fuzz_wire.c tests/fuzz/replay.c $(filter-out build/main.o,$(OBJ)) | build
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $^ $(LDLIBS)

build/fuzz_lua_replay: tests/fuzz/fuzz_lua.c tests/fuzz/replay.c $(filter-out build/main.o,$(OBJ)) | build
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $^ $(LDLIBS)

# the same targets under libFuzzer, built from the sources with clang and sanitizers
build/fuzz/fuzz_pickle: tests/fuzz/fuzz_pickle.c $(CODEC:build/%.o=src/%.c)
	@mkdir -p build/fuzz
	$(CLANG) $(CPPFLAGS) -g -O1 $(FUZZ_SAN) -o $@ $^ -lcrypto -lm

build/fuzz/fuzz_wire: tests/fuzz/fuzz_wire.c $(filter-out src/main.c,$(SRC))
	@mkdir -p build/fuzz
	$(CLANG) $(CPPFLAGS) -g -O1 $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_lua: tests/fuzz/fuzz_lua.c $(filter-out src/main.c,$(SRC))
	@mkdir -p build/fuzz
	$(CLANG) $(CPPFLAGS) -g -O1 $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

build/pic/%.o: src/%.c | build
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -fPIC -MMD -MP -c -o $@ $<

build/lua/shmgr/wire.so: $(WIRE)
	@mkdir -p build/lua/shmgr
	$(CC) $(CFLAGS) -shared -o $@ $^ -lcrypto -lm

build:
	@mkdir -p build build/pic

run: deps
	@$(MAKE) --no-print-directory all
	./shmgr --config shmgr.conf.lua

test: deps
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/run.py

# CPython's own manager tests with CPython's servers and shmgr (tests/cpython/manager_tests.py:
# every manager connected to one running server; own_managers.py: each manager starting its
# own through the shmgr package), with every CPython 3.x found and each start method (make
# test: Debian's python3 and the oldest and newest, fork)
conformance: deps
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/run.py -k tests/cpython --conformance all --start-methods fork,spawn,forkserver

# shmgr against CPython's own server, same load, one run: bench/results.md, .svg, .json, docs/performance.md;
# and what shmgr's statistics cost it (against build/nostats/shmgr), shmgr-cli at 10,000 connections.
# BENCH_ONLY=durable (or any of the sections bench/run.py --help lists, comma-separated) runs
# only those and keeps the others from the last full run's bench/results.json
BENCH_ONLY ?=
bench: deps
	@$(MAKE) --no-print-directory all build/nostats/shmgr
	$(PYTHON) bench/run.py$(if $(BENCH_ONLY), --only $(BENCH_ONLY))

# each target for FUZZ_TIME seconds from its seeds and corpus; inputs that reach new code are
# merged into tests/fuzz/corpus/NAME (commit them: make test replays them); a crash is kept as
# build/fuzz/crash-* and the run fails
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZERS:%=build/fuzz/fuzz_%)
	@for f in $(FUZZERS); do \
	  mkdir -p build/fuzz/work-$$f tests/fuzz/corpus/$$f tests/fuzz/regress/$$f; \
	  echo "fuzz: $$f for $(FUZZ_TIME) s"; \
	  build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_TIME) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	    build/fuzz/work-$$f tests/fuzz/corpus/$$f tests/fuzz/seeds/$$f tests/fuzz/regress/$$f || exit 1; \
	  build/fuzz/fuzz_$$f -merge=1 tests/fuzz/corpus/$$f build/fuzz/work-$$f 2>&1 | tail -1; \
	done

build/san/shmgr: $(SRC)
	@mkdir -p build/san
	$(CLANG) $(CPPFLAGS) -g -O1 $(SAN_FLAGS) $(WARN) -o $@ $(SRC) $(LDLIBS)

sanitize: fuzz-deps
	@$(MAKE) --no-print-directory all build/san/shmgr
	@rm -rf $(REPORTS) && mkdir -p $(REPORTS)
	@SHMGR_BIN=$(CURDIR)/build/san/shmgr ASAN_OPTIONS=log_path=$(REPORTS)/asan:detect_leaks=1 \
	  UBSAN_OPTIONS=log_path=$(REPORTS)/ubsan:print_stacktrace=1 SHMGR_STRESS_STEPS=60 \
	  $(PYTHON) tests/run.py --timeout 300; rc=$$?; \
	  if ls $(REPORTS)/* >/dev/null 2>&1; then echo "sanitize: reports:"; head -40 $(REPORTS)/*; exit 1; fi; \
	  echo "sanitize: no sanitizer reports"; exit $$rc

# test_park_stress for STRESS_TIME seconds (fresh seeds, printed) against the ASan+UBSan
# server, with Debian's python3; a failure prints its seed and its last operations
STRESS_TIME ?= 600
stress: fuzz-deps
	@$(MAKE) --no-print-directory all build/san/shmgr
	@rm -rf $(REPORTS) && mkdir -p $(REPORTS)
	@SHMGR_BIN=$(CURDIR)/build/san/shmgr ASAN_OPTIONS=log_path=$(REPORTS)/asan:detect_leaks=1 \
	  UBSAN_OPTIONS=log_path=$(REPORTS)/ubsan:print_stacktrace=1 SHMGR_STRESS_STEPS=100000 \
	  SHMGR_STRESS_SECONDS=$(STRESS_TIME) /usr/bin/python3 tests/python/test_park_stress.py; rc=$$?; \
	  if ls $(REPORTS)/* >/dev/null 2>&1; then echo "stress: reports:"; head -40 $(REPORTS)/*; exit 1; fi; \
	  echo "stress: no sanitizer reports"; exit $$rc

valgrind: deps
	@$(MAKE) --no-print-directory all
	@command -v valgrind >/dev/null || { echo "valgrind: install it with: apt-get install valgrind"; exit 1; }
	@rm -rf $(REPORTS) && mkdir -p $(REPORTS)
	@SHMGR_BIN=$(CURDIR)/tests/tools/valgrind-shmgr SHMGR_REPORTS=$(REPORTS) $(PYTHON) tests/run.py --timeout 600; rc=$$?; \
	  bad=$$(find $(REPORTS) -type f -size +0); \
	  if [ -n "$$bad" ]; then echo "valgrind: errors in:"; for f in $$bad; do echo "== $$f"; head -60 $$f; done; exit 1; fi; \
	  echo "valgrind: $$(ls $(REPORTS) | wc -l) server runs, no invalid access, no leak"; exit $$rc

clean:
	rm -rf build shmgr shmgr-bench shmgr-cli

# make install [PREFIX=/usr/local] [DESTDIR=]: the binaries, the Lua modules (shmgr.client and
# shmgr.wire, where Debian's lua5.4 looks under /usr/local), the Python package shmgr (where
# Debian's python3 looks under the prefix: lib/python3.N/dist-packages, which /usr and
# /usr/local both have on its path; /usr/local/lib/python3/dist-packages is not), the shipped
# types, a commented config whose paths point at them, the docs and a systemd unit. The list
# of what was installed is kept, for make uninstall.
PREFIX  ?= /usr/local
DESTDIR ?=
LUADIR  := $(PREFIX)/share/lua/5.4
LUACDIR := $(PREFIX)/lib/lua/5.4
UNITDIR ?= $(PREFIX)/lib/systemd/system
PYDIR   ?= $(PREFIX)/lib/python$(PYVER)/dist-packages
MANIFEST = $(DESTDIR)$(PREFIX)/share/shmgr/installed-files

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LUADIR)/shmgr $(DESTDIR)$(LUACDIR)/shmgr \
	  $(DESTDIR)$(PREFIX)/share/shmgr/types $(DESTDIR)$(PREFIX)/etc/shmgr $(DESTDIR)$(PREFIX)/share/doc/shmgr/docs \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PYDIR)/shmgr
	install -m 0755 shmgr shmgr-bench shmgr-cli $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 python/shmgr/*.py $(DESTDIR)$(PYDIR)/shmgr/
	sed -e "s|^INSTALLED_BINARY = None.*|INSTALLED_BINARY = '$(PREFIX)/bin/shmgr'|" python/shmgr/launch.py > $(DESTDIR)$(PYDIR)/shmgr/launch.py
	install -m 0644 lua/shmgr/*.lua $(DESTDIR)$(LUADIR)/shmgr/
	install -m 0644 build/lua/shmgr/wire.so $(DESTDIR)$(LUACDIR)/shmgr/
	install -m 0644 types/*.lua $(DESTDIR)$(PREFIX)/share/shmgr/types/
	sed -e 's|"types/|"$(PREFIX)/share/shmgr/types/|' shmgr.conf.lua > $(DESTDIR)$(PREFIX)/etc/shmgr/shmgr.conf.lua
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/shmgr/
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/shmgr/docs/
	sed -e 's|@PREFIX@|$(PREFIX)|g' dist/shmgr.service.in > $(DESTDIR)$(UNITDIR)/shmgr.service
	@{ for f in shmgr shmgr-bench shmgr-cli; do echo $(PREFIX)/bin/$$f; done; \
	   for f in lua/shmgr/*.lua; do echo $(LUADIR)/shmgr/$${f##*/}; done; echo $(LUACDIR)/shmgr/wire.so; \
	   for f in python/shmgr/*.py; do echo $(PYDIR)/shmgr/$${f##*/}; done; \
	   for f in types/*.lua; do echo $(PREFIX)/share/shmgr/types/$${f##*/}; done; \
	   echo $(PREFIX)/etc/shmgr/shmgr.conf.lua; \
	   echo $(PREFIX)/share/doc/shmgr/README.md; for f in docs/*.md; do echo $(PREFIX)/share/doc/shmgr/docs/$${f##*/}; done; \
	   echo $(UNITDIR)/shmgr.service; echo $(PREFIX)/share/shmgr/installed-files; } > $(MANIFEST)
	@echo "installed under $(DESTDIR)$(PREFIX); the unit: $(DESTDIR)$(UNITDIR)/shmgr.service; the Python package: $(DESTDIR)$(PYDIR)/shmgr"

# removes what make install listed, then the folders it made if they are empty; a config
# changed since is removed too (copy it first)
uninstall:
	@test -f $(MANIFEST) || { echo "uninstall: $(MANIFEST) not found: nothing installed with PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"; exit 1; }
	@while read -r f; do rm -f "$(DESTDIR)$$f"; done < $(MANIFEST)
	@rm -rf "$(DESTDIR)$(PYDIR)/shmgr/__pycache__"
	@for d in $(LUADIR)/shmgr $(LUACDIR)/shmgr $(PYDIR)/shmgr $(PREFIX)/share/shmgr/types $(PREFIX)/share/shmgr \
	  $(PREFIX)/etc/shmgr $(PREFIX)/share/doc/shmgr/docs $(PREFIX)/share/doc/shmgr; do rmdir "$(DESTDIR)$$d" 2>/dev/null || true; done
	@echo "uninstalled from $(DESTDIR)$(PREFIX)"

# each object's header dependencies (-MMD), the nostats build's and the CLI's too: a header that
# changes rebuilds every object that includes it
-include $(OBJ:.o=.d) $(OBJ:build/%.o=build/nostats/%.d) $(WIRE:.o=.d) $(BENCH:.o=.d) $(filter build/cli/%,$(CLI:.o=.d))
