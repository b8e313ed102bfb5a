/* The runner's renew / claim / load step on a shared spool
   (runner_claim.h). */
#include "relay/runner_claim.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int runner_map_message(const char *qdir, const char *id, char **map_r, size_t *size_r, char **error_r)
{
	int fd;
	int rc = queue_msg_open(qdir, id, &fd, error_r);
	if (rc <= 0)
		return rc < 0 ? -1 : 1;
	struct stat st;
	*map_r = NULL;
	*size_r = 0;
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat(%s) failed: %s", id, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_size > 0) {
		void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			*error_r = xasprintf("mmap(%s) failed: %s", id, strerror(errno));
			close(fd);
			return -1;
		}
		*map_r = map;
		*size_r = (size_t)st.st_size;
	}
	close(fd);
	return 0;
}

static void renew_all(struct runner_claim_task *t, int64_t now)
{
	if (t->nrenew == 0)
		return;
	t->renewed = xcalloc(t->nrenew, sizeof(int));
	for (size_t i = 0; i < t->nrenew; i++) {
		char *error = NULL;
		t->renewed[i] =
		    queue_entry_lease(t->qdir, t->renew[i], t->holder, now, t->lease_time, &error);
		if (t->renewed[i] < 0) {
			log_error("queue lease renew id=%s error=\"%s\"", t->renew[i], error);
			free(error);
		}
	}
}

/* Loads a claimed message; false when it went meanwhile or cannot be read
   (its lease then runs out and the message is claimed again later). */
static bool load_claimed(struct runner_claim_task *t, const char *id, struct runner_claimed *c)
{
	char *error = NULL;
	memset(c, 0, sizeof(*c));
	int rc = queue_entry_load(t->qdir, id, &c->e, &error);
	if (rc == 0 && runner_map_message(t->qdir, id, &c->map, &c->map_size, &error) < 0) {
		log_error("queue read id=%s error=\"%s\"", id, error);
		free(error);
		error = NULL;
	}
	if (rc < 0) {
		log_error("queue load id=%s error=\"%s\"", id, error);
		free(error);
	}
	return rc == 0;
}

void runner_claim_work(struct runner_claim_task *t)
{
	int64_t now = (int64_t)time(NULL);
	renew_all(t, now);
	char **ids = NULL;
	size_t n = 0;
	char *error = NULL;
	if (t->max > 0 && queue_claim(t->qdir, t->holder, now, t->lease_time, t->max, &ids, &n, &error) < 0) {
		log_error("queue claim error=\"%s\"", error);
		free(error);
		return;
	}
	if (n > 0)
		t->claimed = xcalloc(n, sizeof(*t->claimed));
	for (size_t i = 0; i < n; i++) {
		if (load_claimed(t, ids[i], &t->claimed[t->nclaimed]))
			t->nclaimed++;
		free(ids[i]);
	}
	free(ids);
}

void runner_claim_task_free(struct runner_claim_task *t)
{
	for (size_t i = 0; i < t->nrenew; i++)
		free(t->renew[i]);
	free(t->renew);
	free(t->renewed);
	for (size_t i = 0; i < t->nclaimed; i++) {
		queue_entry_free(&t->claimed[i].e);
		if (t->claimed[i].map != NULL)
			munmap(t->claimed[i].map, t->claimed[i].map_size);
	}
	free(t->claimed);
	free(t);
}
