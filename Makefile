# postoffice build.  Targets: all (binary + unit tests), fuzz, install, clean.
#   make                 normal build into build/
#   make SAN=1           AddressSanitizer + UBSan build into build-san/
#   make fuzz            libFuzzer targets (clang) into build-fuzz/
#   make install         PREFIX=/usr/local DESTDIR= (see "install" below)
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
PKGS = libevent_core libevent_extra libevent_openssl libevent_pthreads libssl libcrypto sqlite3 libcares inih libidn2 zlib libcrypt libpsl libcurl libpq
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

# ---- install ----
# An installed postoffice keeps its data in LOCALSTATEDIR and reads
# SYSCONFDIR/postoffice.conf (src/lib/paths.h): the few files that know the
# paths are compiled again for that layout and linked with the library of
# the normal build.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc/postoffice
LOCALSTATEDIR ?= /var/lib/postoffice
UNITDIR ?= /lib/systemd/system
INSTALL_BUILD = build-install
INSTALL_DEFS = -DPO_DATA_DIR='"$(LOCALSTATEDIR)"' -DPO_CONFIG_FILE='"$(SYSCONFDIR)/postoffice.conf"'
PATH_SRCS = src/lib/config.c src/cli/cmd_serve.c src/cli/main.c

$(INSTALL_BUILD)/postoffice: $(BUILD)/libpostoffice.a $(PATH_SRCS) src/lib/paths.h Makefile
	@mkdir -p $(INSTALL_BUILD)
	for f in $(PATH_SRCS); do \
	  $(CC) $(CFLAGS) $(INSTALL_DEFS) -c $$f -o $(INSTALL_BUILD)/$$(basename $$f .c).o || exit 1; done
	cp $(BUILD)/libpostoffice.a $(INSTALL_BUILD)/libpostoffice.a
	ar rcs $(INSTALL_BUILD)/libpostoffice.a $(INSTALL_BUILD)/config.o $(INSTALL_BUILD)/cmd_serve.o
	$(CC) $(LDFLAGS) -o $@ $(INSTALL_BUILD)/main.o $(INSTALL_BUILD)/libpostoffice.a $(PKG_LIBS)

install: $(INSTALL_BUILD)/postoffice
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(INSTALL_BUILD)/postoffice $(DESTDIR)$(SBINDIR)/postoffice
	install -m 0644 docs/man/postoffice.8 $(DESTDIR)$(MANDIR)/man8/postoffice.8
	$(INSTALL_BUILD)/postoffice -c /dev/null check --manual > $(DESTDIR)$(MANDIR)/man5/postoffice.conf.5
	chmod 0644 $(DESTDIR)$(MANDIR)/man5/postoffice.conf.5
	# an existing configuration is the administrator's: never replaced
	test -e $(DESTDIR)$(SYSCONFDIR)/postoffice.conf || { \
	  $(INSTALL_BUILD)/postoffice -c /dev/null check --defaults > $(DESTDIR)$(SYSCONFDIR)/postoffice.conf && \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/postoffice.conf; }
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@DATADIR@|$(LOCALSTATEDIR)|g' dist/postoffice.service.in \
	  > $(DESTDIR)$(UNITDIR)/postoffice.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/postoffice.service

clean:
	rm -rf build build-san build-fuzz build-install

.PHONY: all fuzz install clean
-include $(LIB_OBJS:.o=.d) $(BUILD)/src/cli/main.d
