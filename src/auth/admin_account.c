/* Admin accounts in DATA_DIR/admins (admin_account.h). */
#include "auth/admin_account.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file is small (a hash is about 75 bytes): anything bigger is not
   ours. */
#define ADMIN_FILE_MAX (1024 * 1024)

bool admin_account_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > ADMIN_NAME_MAX)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-@", *p) != NULL))
			return false;
	return true;
}

int admin_accounts_parse(struct admin_accounts *a, const char *text, size_t len, char **error_r)
{
	const char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl != NULL ? nl : end;
		char *row = xstrndup(p, (size_t)(stop - p));
		p = nl != NULL ? nl + 1 : end;
		size_t n = strlen(row);
		if (n > 0 && row[n - 1] == '\r')
			row[--n] = '\0';
		char *colon = strchr(row, ':');
		if (n == 0 || row[0] == '#') {
			free(row);
			continue;
		}
		if (colon != NULL)
			*colon = '\0';
		if (colon == NULL || !admin_account_name_valid(row) || colon[1] != '$') {
			*error_r = xasprintf("%s line %d: expected NAME:HASH", ADMIN_ACCOUNTS_FILE, line);
			free(row);
			admin_accounts_free(a);
			return -1;
		}
		admin_accounts_set(a, row, colon + 1);
		free(row);
	}
	return 0;
}

void admin_accounts_format(const struct admin_accounts *a, struct buf *out)
{
	buf_append_str(out, "# postoffice admin accounts: NAME:HASH (`postoffice admin add|del|list`)\n");
	for (size_t i = 0; i < a->count; i++)
		buf_printf(out, "%s:%s\n", a->v[i].name, a->v[i].hash);
}

int admin_accounts_load(int dirfd, struct admin_accounts *a, char **error_r)
{
	memset(a, 0, sizeof(*a));
	int fd = openat(dirfd, ADMIN_ACCOUNTS_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("open(%s) failed: %s", ADMIN_ACCOUNTS_FILE, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ADMIN_FILE_MAX) {
		*error_r = xasprintf("%s is not a regular file of at most %d bytes", ADMIN_ACCOUNTS_FILE,
				     ADMIN_FILE_MAX);
		close(fd);
		return -1;
	}
	char *data = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	int rc = admin_accounts_parse(a, data, got, error_r);
	free(data);
	return rc;
}

int admin_accounts_save(int dirfd, const char *dir, const struct admin_accounts *a, uid_t uid, gid_t gid,
			char **error_r)
{
	struct buf text = BUF_INIT;
	admin_accounts_format(a, &text);
	int rc = fs_write_file_durable_at(dirfd, dir, ADMIN_ACCOUNTS_FILE, text.data, text.len, 0640, uid,
					  gid, error_r);
	buf_free(&text);
	return rc;
}

const struct admin_account *admin_accounts_find(const struct admin_accounts *a, const char *name)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->v[i].name, name) == 0)
			return &a->v[i];
	return NULL;
}

int admin_accounts_set(struct admin_accounts *a, const char *name, const char *hash)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->v[i].name, name) == 0) {
			free(a->v[i].hash);
			a->v[i].hash = xstrdup(hash);
			return 1;
		}
	a->v = xreallocarray(a->v, a->count + 1, sizeof(*a->v));
	a->v[a->count].name = xstrdup(name);
	a->v[a->count].hash = xstrdup(hash);
	a->count++;
	return 0;
}

int admin_accounts_remove(struct admin_accounts *a, const char *name)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->v[i].name, name) == 0) {
			free(a->v[i].name);
			free(a->v[i].hash);
			memmove(&a->v[i], &a->v[i + 1], (a->count - i - 1) * sizeof(*a->v));
			a->count--;
			return 0;
		}
	return 1;
}

void admin_accounts_free(struct admin_accounts *a)
{
	for (size_t i = 0; i < a->count; i++) {
		free(a->v[i].name);
		free(a->v[i].hash);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}
