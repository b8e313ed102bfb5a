# postoffice build.  Targets: all (binary + unit tests), fuzz, clean.
#   make                 normal build into build/
#   make SAN=1           AddressSanitizer + UBSan build into build-san/
#   make fuzz            libFuzzer targets (clang) into build-fuzz/
# Every module directory under src/ is compiled into one static library;
# src/cli/main.c holds main().  New .c files are picked up automatically.
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT = -O1
else
BUILD ?= build
SANFLAGS =
OPT = -O2
endif
CC ?= cc
PKGS = libevent_core libevent_extra libevent_openssl libevent_pthreads libssl libcrypto sqlite3 libcares inih libidn2 zlib libcrypt libpsl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS)) -lpthread
WARN = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS += -std=gnu11 $(OPT) -g $(WARN) $(SANFLAGS) -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(SANFLAGS)

MODULES = lib mime auth store dns trust session smtp queue delivery relay smtpd pop3 imap server cli
LIB_SRCS := $(filter-out src/cli/main.c,$(foreach m,$(MODULES),$(wildcard src/$(m)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)

all: $(BUILD)/postoffice $(UNIT_BINS)

$(BUILD)/libpostoffice.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/postoffice: $(BUILD)/src/cli/main.o $(BUILD)/libpostoffice.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpostoffice.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpostoffice.a $(PKG_LIBS) -lcmocka

# libFuzzer targets: the library is rebuilt with clang and coverage
# instrumentation in build-fuzz/.
FUZZ_BUILD = build-fuzz
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang SAN=0 OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Wno-unused-command-line-argument" \
	  $(FUZZ_BUILD)/libpostoffice.a $(FUZZ_SRCS:fuzz/%.c=$(FUZZ_BUILD)/fuzz/%)

$(FUZZ_BUILD)/fuzz/%: fuzz/%.c $(FUZZ_BUILD)/libpostoffice.a
	@mkdir -p $(dir $@)
	clang $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_BUILD)/libpostoffice.a $(PKG_LIBS)

clean:
	rm -rf build build-san build-fuzz

.PHONY: all fuzz clean
-include $(LIB_OBJS:.o=.d) $(BUILD)/src/cli/main.d
