# tfauth: build, test, demo. `make demo` and `make test` set up a fresh
# Debian machine themselves (packages are installed when run as root).

LUA      ?= lua5.4
LUA_INC  ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
JIT_INC  ?= $(shell pkg-config --cflags luajit 2>/dev/null || echo -I/usr/include/luajit-2.1)
CURL_INC ?= $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIB ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes
BUILD    ?= build/5.4

SRC      := $(wildcard src/*.c)
HDR      := $(wildcard src/*.h)
MODULE   := $(BUILD)/tfauth/core.so
JIT_MODULE := build/jit/tfauth/core.so

.PHONY: all jit deps test demo clean

all: $(MODULE)
jit: $(JIT_MODULE)

# Lua 5.4 (the default) and LuaJIT 2.1 builds of the same sources.
$(MODULE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(LUA_INC) $(CURL_INC) $(SRC) -o $@ $(CURL_LIB)

$(JIT_MODULE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(JIT_INC) $(CURL_INC) $(SRC) -o $@ $(CURL_LIB)

# Debian packages the build, the tests and the demo need.
deps:
	@bash spec/support/deps.sh

test: deps
	@$(MAKE) -s --no-print-directory all jit
	@bash spec/support/run-tests.sh

demo: deps
	@$(MAKE) -s --no-print-directory all
	@LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" \
	  bash spec/support/with-backend.sh $(LUA) examples/quickstart.lua

clean:
	rm -rf build
