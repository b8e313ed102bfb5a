/* Maildir file names: the base name, the ",S=" and ",W=" sizes, and the
   info part ":2,FLAGS" (https://cr.yp.to/proto/maildir.html, letters in
   ASCII order). */
#include "store/store_local_private.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const struct {
	char letter;
	uint32_t flag;
} info_letters[] = {
    {'D', STORE_FLAG_DRAFT},    {'F', STORE_FLAG_FLAGGED}, {'P', STORE_FLAG_PASSED},
    {'R', STORE_FLAG_ANSWERED}, {'S', STORE_FLAG_SEEN},    {'T', STORE_FLAG_DELETED},
};

static uint32_t letter_flag(char c)
{
	for (size_t i = 0; i < N_ELEMENTS(info_letters); i++)
		if (info_letters[i].letter == c)
			return info_letters[i].flag;
	return 0;
}

/* A ",X=digits" field inside the base name. */
static bool base_field(const char *base, size_t len, char key, uint64_t *value_r)
{
	for (size_t i = 0; i + 3 < len; i++) {
		if (base[i] != ',' || base[i + 1] != key || base[i + 2] != '=')
			continue;
		uint64_t v = 0;
		size_t j = i + 3;
		if (base[j] < '0' || base[j] > '9')
			continue;
		for (; j < len && base[j] >= '0' && base[j] <= '9'; j++) {
			if (v > (UINT64_MAX - 9) / 10)
				return false;
			v = v * 10 + (uint64_t)(base[j] - '0');
		}
		*value_r = v;
		return true;
	}
	return false;
}

void store_local_fname_parse(const char *name, struct store_local_fname *fn_r)
{
	memset(fn_r, 0, sizeof(*fn_r));
	const char *info = strstr(name, ":2,");
	fn_r->base_len = info != NULL ? (size_t)(info - name) : strlen(name);
	if (info != NULL) {
		fn_r->has_info = true;
		for (const char *p = info + 3; *p; p++)
			fn_r->flags |= letter_flag(*p);
	}
	fn_r->has_size = base_field(name, fn_r->base_len, 'S', &fn_r->size);
	fn_r->has_vsize = base_field(name, fn_r->base_len, 'W', &fn_r->vsize);
}

void store_local_info_format(char out[STORE_LOCAL_INFO_MAX], uint32_t flags, const char *old_info)
{
	/* The letters to write, as a set of printable ASCII: ours for flags,
	   plus those of old_info that we do not manage (lowercase Dovecot
	   keywords, others), which stay. */
	uint64_t set[2] = {0, 0};
	for (size_t i = 0; i < N_ELEMENTS(info_letters); i++)
		if (flags & info_letters[i].flag)
			set[info_letters[i].letter >> 6] |= 1ULL << (info_letters[i].letter & 63);
	if (old_info != NULL && strncmp(old_info, ":2,", 3) == 0) {
		for (const unsigned char *p = (const unsigned char *)old_info + 3; *p; p++)
			if (*p > ' ' && *p < 0x7f && letter_flag((char)*p) == 0)
				set[*p >> 6] |= 1ULL << (*p & 63);
	}
	/* In ASCII order, each once. */
	size_t n = 3;
	memcpy(out, ":2,", 3);
	for (int c = 0x21; c < 0x7f; c++)
		if (set[c >> 6] & (1ULL << (c & 63)))
			out[n++] = (char)c;
	out[n] = '\0';
}

char *store_local_info_build(uint32_t flags, const char *old_info)
{
	char out[STORE_LOCAL_INFO_MAX];
	store_local_info_format(out, flags, old_info);
	return xstrdup(out);
}

int store_local_file_vsize(int fd, uint64_t *psize_r, uint64_t *vsize_r)
{
	char chunk[65536];
	uint64_t psize = 0, vsize = 0;
	char prev = '\0';
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' && prev != '\r')
				vsize++;
			prev = chunk[i];
		}
		psize += (uint64_t)n;
		vsize += (uint64_t)n;
	}
	*psize_r = psize;
	*vsize_r = vsize;
	return 0;
}

static void host_part(char *out, size_t size)
{
	char host[256];
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	/* The Maildir spec escapes '/' and ':'; ',' would confuse ",S=". */
	struct buf b = BUF_INIT;
	for (const char *p = host; *p; p++) {
		if (*p == '/')
			buf_append_str(&b, "\\057");
		else if (*p == ':')
			buf_append_str(&b, "\\072");
		else if (*p == ',')
			buf_append_str(&b, "\\054");
		else
			buf_append_char(&b, *p);
	}
	snprintf(out, size, "%s", buf_cstr(&b));
	buf_free(&b);
}

char *store_local_unique_base(uint64_t psize, uint64_t vsize)
{
	static unsigned counter;
	char host[128];
	host_part(host, sizeof(host));
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	if (vsize != psize)
		return xasprintf("%lld.M%06ldP%ldQ%u.%s,S=%llu,W=%llu", (long long)tv.tv_sec,
				 (long)tv.tv_usec, (long)getpid(), n, host, (unsigned long long)psize,
				 (unsigned long long)vsize);
	return xasprintf("%lld.M%06ldP%ldQ%u.%s,S=%llu", (long long)tv.tv_sec, (long)tv.tv_usec,
			 (long)getpid(), n, host, (unsigned long long)psize);
}
