#include "store/deliver.h"
#include "store/maildir_create.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

char *deliver_maildir_path(const char *data_dir, const char *address)
{
	const char *at = strrchr(address, '@');
	if (at == NULL)
		return xasprintf("%s/mail/%s", data_dir, address);
	return xasprintf("%s/mail/%s/%.*s", data_dir, at + 1, (int)(at - address), address);
}

static const char *host_name(void)
{
	/* Maildir names must not contain '/' or ':' (Maildir spec). */
	static char host[128];
	if (host[0] == '\0') {
		char raw[128] = "localhost";
		gethostname(raw, sizeof(raw) - 1);
		size_t o = 0;
		for (size_t i = 0; raw[i] != '\0' && o + 5 < sizeof(host); i++) {
			if (raw[i] == '/')
				o += (size_t)snprintf(host + o, sizeof(host) - o, "\\057");
			else if (raw[i] == ':')
				o += (size_t)snprintf(host + o, sizeof(host) - o, "\\072");
			else
				host[o++] = raw[i];
		}
		host[o] = '\0';
	}
	return host;
}

char *deliver_unique_name(uint64_t size)
{
	static atomic_uint counter;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned n = atomic_fetch_add(&counter, 1);
	return xasprintf("%ld.M%06ldP%ldQ%u.%s,S=%llu", (long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), n,
			 host_name(), (unsigned long long)size);
}

int deliver_link(const char *maildir, int src_dirfd, const char *src, uint64_t size, char **name_r,
		 char **error_r)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		char *name = deliver_unique_name(size);
		char *dst = xasprintf("%s/new/%s", maildir, name);
		if (fs_link_or_copy_at(src_dirfd, src, AT_FDCWD, dst) == 0) {
			free(dst);
			*name_r = name;
			return 0;
		}
		int err = errno;
		free(dst);
		free(name);
		if (err == ENOENT && attempt == 0) {
			/* First delivery to this user: make the Maildir. */
			if (maildir_create(maildir, error_r) < 0)
				return -1;
			continue;
		}
		if (err != EEXIST) {
			*error_r = xasprintf("link(%s, %s/new) failed: %s", src, maildir, strerror(err));
			return -1;
		}
	}
	*error_r = xasprintf("cannot find a unique name in %s/new", maildir);
	return -1;
}

int deliver_sync_dirs(const char *const *maildirs, int count, char **error_r)
{
	for (int i = 0; i < count; i++) {
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(maildirs[i], maildirs[j]) == 0;
		if (seen)
			continue;
		char *dir = xasprintf("%s/new", maildirs[i]);
		int rc = fs_fsync_dir(dir, error_r);
		free(dir);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Size of a Maildir file from its ",S=" field, or -1. */
static long long name_size(const char *name)
{
	const char *s = strstr(name, ",S=");
	if (s == NULL)
		return -1;
	s += 3;
	if (!isdigit((unsigned char)*s))
		return -1;
	return strtoll(s, NULL, 10);
}

static void add_dir_usage(const char *dir, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		long long n = name_size(de->d_name);
		if (n < 0) {
			struct stat st;
			char *path = xasprintf("%s/%s", dir, de->d_name);
			n = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : 0;
			free(path);
		}
		*bytes += (uint64_t)n;
	}
	closedir(d);
}

static void add_folder_usage(const char *folder, uint64_t *bytes)
{
	static const char *const subs[] = {"new", "cur"};
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		char *dir = xasprintf("%s/%s", folder, subs[i]);
		add_dir_usage(dir, bytes);
		free(dir);
	}
}

int deliver_usage(const char *maildir, uint64_t *bytes_r)
{
	uint64_t bytes = 0;
	DIR *d = opendir(maildir);
	if (d == NULL) {
		*bytes_r = 0;
		return errno == ENOENT ? 0 : -1;
	}
	add_folder_usage(maildir, &bytes);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		/* Maildir++ folders are ".Name" directories. */
		if (de->d_name[0] != '.' || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *folder = xasprintf("%s/%s", maildir, de->d_name);
		add_folder_usage(folder, &bytes);
		free(folder);
	}
	closedir(d);
	*bytes_r = bytes;
	return 0;
}
