# tfauth: build, test, demo. `make demo` and `make test` set up a fresh
# Debian machine themselves (packages are installed when run as root).

LUA      ?= lua5.4
LUA_INC  ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
JIT_INC  ?= $(shell pkg-config --cflags luajit 2>/dev/null || echo -I/usr/include/luajit-2.1)
# The headers of Lua 5.1, 5.2 or 5.3 ($1), for build/5.x.
lua_inc   = $(shell pkg-config --cflags lua$1 2>/dev/null || echo -I/usr/include/lua$1)
CURL_INC ?= $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIB ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl) -lcrypto
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes
BUILD    ?= build/5.4

SRC      := $(wildcard src/*.c)
HDR      := $(wildcard src/*.h)
MODULE   := $(BUILD)/tfauth/core.so
JIT_MODULE := build/jit/tfauth/core.so
# Every Lua tfauth supports: 5.1, 5.2, 5.3 (build/5.x), 5.4 (the default) and LuaJIT.
OLD_MODULES := build/5.1/tfauth/core.so build/5.2/tfauth/core.so build/5.3/tfauth/core.so
ASAN_MODULE := build/asan/tfauth/core.so
FUZZER   := build/fuzz_tfauth
FUZZ_SECONDS ?= 60

.PHONY: all jit lua5.1 lua5.2 lua5.3 lua5.4 versions asan deps deps-demo deps-gate deps-test test demo \
  demo-gate check-memory fuzz lint docs dist bench soak bench-flat bench-peers clean

all: $(MODULE)
jit: $(JIT_MODULE)
lua5.1: build/5.1/tfauth/core.so
lua5.2: build/5.2/tfauth/core.so
lua5.3: build/5.3/tfauth/core.so
lua5.4: build/5.4/tfauth/core.so
versions: $(MODULE) $(JIT_MODULE) $(OLD_MODULES)
asan: $(ASAN_MODULE)

# Lua 5.4 (the default), LuaJIT 2.1, and Lua 5.1-5.3 builds of the same sources.
$(MODULE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(LUA_INC) $(CURL_INC) $(SRC) -o $@ $(CURL_LIB)

$(JIT_MODULE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(JIT_INC) $(CURL_INC) $(SRC) -o $@ $(CURL_LIB)

$(OLD_MODULES): build/%/tfauth/core.so: $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(call lua_inc,$*) $(CURL_INC) $(SRC) -o $@ $(CURL_LIB)

# Debian packages by purpose (spec/support/deps.sh): `make demo` installs the
# build and demo sets only, the tests add theirs, `make bench` its own.
deps:
	@bash spec/support/deps.sh build demo test bench
deps-demo:
	@bash spec/support/deps.sh build demo
deps-gate:
	@bash spec/support/deps.sh build demo gate
deps-test:
	@bash spec/support/deps.sh build demo test

# AddressSanitizer + UndefinedBehaviorSanitizer build, for check-memory.
$(ASAN_MODULE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=all -fPIC -shared $(LUA_INC) $(CURL_INC) $(SRC) -o $@ $(CURL_LIB)

# libFuzzer harness: the request builder and the response mapper.
$(FUZZER): fuzz/fuzz_tfauth.c $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	clang -std=c99 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(LUA_INC) $(CURL_INC) fuzz/fuzz_tfauth.c $(SRC) -o $@ -llua5.4 $(CURL_LIB)

test: deps-test
	@$(MAKE) -s --no-print-directory versions asan $(FUZZER)
	@bash spec/support/run-tests.sh

# luacheck over the Lua, and the C compiled with every warning an error.
lint: deps-test
	@bash spec/support/run-tests.sh lint

# Throughput, latency, instructions and memory against nginx on loopback,
# side by side with a raw libcurl loop, Python requests and curl; writes
# bench/README.md.
build/raw_curl: bench/raw_curl.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE -O2 $(CURL_INC) $< -o $@ $(CURL_LIB)

# The limit for JWS verification: EVP_DigestVerify in a loop (bench/jws.sh).
build/raw_verify: bench/raw_verify.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE -O2 $< -o $@ -lcrypto

bench: deps
	@$(MAKE) -s --no-print-directory all jit build/raw_curl build/raw_verify
	@bash bench/run.sh

# Does the cost of a first-sight token grow with the tokens seen? (docs/performance.md)
bench-flat: deps
	@$(MAKE) -s --no-print-directory all jit
	@bash bench/flat.sh

# tfauth.gate against HAProxy's jwt_verify and Apache's mod_auth_openidc on
# the same tokens (bench/peers.sh; ROUNDS=7 SECONDS_EACH=5 by default). Not
# part of `make test`; the table goes into docs/performance.md by hand.
bench-peers: deps
	@$(MAKE) -s --no-print-directory jit
	@bash bench/peers.sh

# The API reference, from the sources' LDoc comments, into doc/. LDoc runs
# under Lua 5.1 whatever else is installed: lua-markdown exists only for 5.1.
docs: deps-test
	@bash spec/support/ldoc.sh -q .

# The source rock of this version, tfauth-$(VERSION)-1.src.rock, from the
# checkout's files (offline: no clone of the release tag).
dist: deps-test
	@bash spec/support/dist.sh .

# The whole spec suite under ASan+UBSan, then under valgrind memcheck.
# Sessions on Redis under load, with a failover (docs/redis.md): two nginx
# nodes on Sentinel, then on a Redis Cluster; a few minutes, not in `make test`.
soak: deps-test
	@$(MAKE) -s --no-print-directory all jit
	@LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/?.lua;;" \
	  LUA_CPATH="$(CURDIR)/build/5.4/?.so;;" bash spec/support/with-backend.sh lua5.4 bench/soak.lua

check-memory: deps-test
	@$(MAKE) -s --no-print-directory all asan
	@bash spec/support/run-tests.sh asan valgrind

fuzz: deps-test
	@$(MAKE) -s --no-print-directory $(FUZZER)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash spec/support/run-tests.sh fuzz

demo: deps-demo
	@$(MAKE) -s --no-print-directory all
	@LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" \
	  bash spec/support/with-backend.sh $(LUA) examples/quickstart.lua

# The nginx gate (tfauth.gate, 2 workers) on loopback in front of a small
# application, the reference backend as auth API and realm; prints the URL
# and the users, runs until Ctrl-C. DEMO_CMD="..." runs a command against it
# (TFAUTH_DEMO_URL set) and exits with its status, as the browser test does.
demo-gate: deps-gate
	@$(MAKE) -s --no-print-directory jit
	@bash spec/support/with-backend.sh bash examples/demo-gate/run.sh $(DEMO_CMD)

clean:
	rm -rf build tfauth-*.src.rock
