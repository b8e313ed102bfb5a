/* MTA-STS policies and DANE states for the queue runner (see
   runner_tls.h). */
#include "relay/runner_tls.h"
#include "dns/dns_tlsa.h"
#include "lib/fsutil.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "relay/mta_sts_fetch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_DIR "mta-sts"
#define CACHE_FILE_MAX (MTA_STS_POLICY_SIZE_MAX + 256)

struct sts_waiter {
	runner_tls_sts_callback *cb;
	void *ctx;
	struct sts_waiter *next;
};

/* One destination domain: its cached policy and the lookup running. */
struct sts_domain {
	struct runner_tls *rt;
	char *name;
	struct mta_sts_policy policy;
	bool cached; /* policy holds a policy (maybe expired) */
	bool busy;
	struct sts_waiter *waiters;
	char id[MTA_STS_ID_MAX + 1]; /* the TXT id being fetched */
	char failed_id[MTA_STS_ID_MAX + 1];
	int64_t failed_at;
	struct sts_domain *next;
};

struct runner_tls {
	struct event_base *base;
	const struct config *cfg;
	struct dns_resolver *dns;
	struct mta_sts_fetcher *fetcher;
	char *dir; /* DATA_DIR/mta-sts */
	struct sts_domain *domains;
};

static int64_t now_seconds(void)
{
	return (int64_t)time(NULL);
}

/* A domain name as the cache may use for a file name. */
static bool cache_name_ok(const char *name)
{
	if (name[0] == '\0' || name[0] == '.' || strlen(name) > 253)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.' ||
		      *p == '_'))
			return false;
	return true;
}

static struct sts_domain *domain_get(struct runner_tls *rt, const char *name)
{
	for (struct sts_domain *d = rt->domains; d != NULL; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	struct sts_domain *d = xcalloc(1, sizeof(*d));
	d->rt = rt;
	d->name = xstrdup(name);
	d->next = rt->domains;
	rt->domains = d;
	return d;
}

/* ---- the cache on disk ---- */

struct cache_write {
	char *path;
	char *data;
	size_t len;
	char *error;
};

static void cache_write_work(void *arg)
{
	struct cache_write *w = arg;
	fs_write_file_durable(w->path, w->data, w->len, 0640, &w->error);
}

static void cache_write_done(void *arg)
{
	struct cache_write *w = arg;
	if (w->error != NULL)
		log_warn("mta-sts cache write failed: %s", w->error);
	free(w->error);
	free(w->data);
	free(w->path);
	free(w);
}

static void cache_store(struct runner_tls *rt, const struct sts_domain *d)
{
	if (!cache_name_ok(d->name))
		return;
	struct cache_write *w = xcalloc(1, sizeof(*w));
	w->path = xasprintf("%s/%s", rt->dir, d->name);
	w->data = mta_sts_cache_format(&d->policy, &w->len);
	jobs_submit(cache_write_work, cache_write_done, w);
}

/* One cache file: a fresh policy is taken, an expired or broken one
   removed. */
static void cache_load_file(struct runner_tls *rt, const char *name, int64_t now)
{
	char *path = xasprintf("%s/%s", rt->dir, name);
	char *data = NULL, *error = NULL;
	size_t len = 0;
	struct mta_sts_policy p;
	const char *perr = NULL;
	if (fs_read_file(path, &data, &len, &error) < 0) {
		log_warn("mta-sts cache: %s", error);
	} else if (len > CACHE_FILE_MAX || mta_sts_cache_parse(data, len, &p, &perr) < 0) {
		log_warn("mta-sts cache: %s: %s, removed", path, perr != NULL ? perr : "too large");
		unlink(path);
	} else if (!mta_sts_policy_fresh(&p, now)) {
		mta_sts_policy_clear(&p);
		unlink(path);
	} else {
		struct sts_domain *d = domain_get(rt, name);
		mta_sts_policy_clear(&d->policy);
		d->policy = p;
		d->cached = true;
	}
	free(error);
	free(data);
	free(path);
}

static int cache_load(struct runner_tls *rt, char **error_r)
{
	int fd = fs_open_dir_beneath(rt->cfg->data_dir, CACHE_DIR, true, 0750, (uid_t)-1, (gid_t)-1, error_r);
	if (fd < 0)
		return -1;
	DIR *dir = fdopendir(fd);
	if (dir == NULL) {
		*error_r = xasprintf("fdopendir(%s) failed: %s", rt->dir, strerror(errno));
		close(fd);
		return -1;
	}
	int64_t now = now_seconds();
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if ((e->d_type == DT_REG || e->d_type == DT_UNKNOWN) && cache_name_ok(e->d_name)) {
			cache_load_file(rt, e->d_name, now);
			n++;
		}
	}
	closedir(dir);
	if (n > 0)
		log_info("mta-sts cache loaded files=%zu", n);
	return 0;
}

/* ---- MTA-STS lookups ---- */

/* The lookup of d is over: every waiter gets the policy that applies. */
static void sts_finish(struct sts_domain *d, bool cancelled, const char *source)
{
	const struct mta_sts_policy *p = NULL;
	if (!cancelled && d->cached && mta_sts_policy_fresh(&d->policy, now_seconds()))
		p = &d->policy;
	if (p != NULL)
		log_info("mta-sts policy domain=%s mode=%s id=%s source=%s", d->name,
			 mta_sts_mode_name(p->mode), p->id, source);
	d->busy = false;
	struct sts_waiter *w = d->waiters;
	d->waiters = NULL;
	while (w != NULL) {
		struct sts_waiter *next = w->next;
		w->cb(w->ctx, cancelled, p);
		free(w);
		w = next;
	}
}

static void sts_fetched(void *ctx, enum mta_sts_fetch_status status, const char *body, size_t len,
			const char *error)
{
	struct sts_domain *d = ctx;
	if (status == MTA_STS_FETCH_CANCELLED) {
		sts_finish(d, true, "none");
		return;
	}
	struct mta_sts_policy p;
	const char *perr = error;
	if (status == MTA_STS_FETCH_OK && mta_sts_policy_parse(body, len, &p, &perr) == 0) {
		mta_sts_policy_clear(&d->policy);
		d->policy = p;
		snprintf(d->policy.id, sizeof(d->policy.id), "%s", d->id);
		d->policy.fetched = now_seconds();
		d->cached = true;
		cache_store(d->rt, d);
		sts_finish(d, false, "fetch");
		return;
	}
	/* 3.3: no policy fetched: the cached one while it lasts, else none */
	char text[200];
	log_warn("mta-sts fetch-failed domain=%s id=%s error=%s", d->name, d->id,
		 log_printable(text, sizeof(text), perr, strlen(perr)));
	snprintf(d->failed_id, sizeof(d->failed_id), "%s", d->id);
	d->failed_at = now_seconds();
	sts_finish(d, false, "cache");
}

static void sts_host_resolved(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t n,
			      const char *error)
{
	struct sts_domain *d = ctx;
	if (status == DNS_CANCELLED) {
		sts_finish(d, true, "none");
		return;
	}
	/* a policy host without an address fails as a fetch does */
	mta_sts_fetch(d->rt->fetcher, d->name, addrs, status == DNS_OK ? n : 0, sts_fetched, d);
}

static void sts_txt(void *ctx, enum dns_status status, char **rrs, size_t n, const char *error)
{
	struct sts_domain *d = ctx;
	struct runner_tls *rt = d->rt;
	if (status == DNS_CANCELLED) {
		sts_finish(d, true, "none");
		return;
	}
	char id[MTA_STS_ID_MAX + 1];
	const char *why = NULL;
	int64_t now = now_seconds();
	bool fresh = d->cached && mta_sts_policy_fresh(&d->policy, now);
	if (status != DNS_OK || mta_sts_txt_select(rrs, n, id, &why) != 1) {
		/* 5.1: without a valid record a cached policy still applies */
		if (why != NULL)
			log_info("mta-sts record domain=%s ignored=%s", d->name, why);
		sts_finish(d, false, "cache");
		return;
	}
	if (fresh && !strcmp(id, d->policy.id)) {
		sts_finish(d, false, "cache");
		return;
	}
	if (!strcmp(id, d->failed_id) && now - d->failed_at < MTA_STS_RETRY_SECONDS) {
		sts_finish(d, false, "cache");
		return;
	}
	snprintf(d->id, sizeof(d->id), "%s", id);
	char *host = xasprintf("mta-sts.%s", d->name);
	dns_lookup_addr(rt->dns, host, rt->cfg->relay_mta_sts_port, sts_host_resolved, d);
	free(host);
}

void runner_tls_sts(struct runner_tls *rt, const char *domain, runner_tls_sts_callback *cb, void *ctx)
{
	struct sts_domain *d = domain_get(rt, domain);
	struct sts_waiter *w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->ctx = ctx;
	w->next = d->waiters;
	d->waiters = w;
	if (d->busy)
		return;
	d->busy = true;
	char *name = xasprintf("_mta-sts.%s", domain);
	dns_lookup_rr(rt->dns, DNS_RR_TXT, name, sts_txt, d);
	free(name);
}

/* ---- DANE ---- */

struct dane_query {
	struct runner_tls *rt;
	runner_tls_dane_callback *cb;
	void *ctx;
	char *host;
	char *error;
};

static void dane_report(struct dane_query *q, bool cancelled, enum runner_tls_dane dane,
			const struct tls_tlsa *recs, size_t n, const char *error)
{
	q->cb(q->ctx, cancelled, dane, recs, n, error);
	free(q->error);
	free(q->host);
	free(q);
}

/* RFC 7672 2.2: a failed TLSA lookup counts only when the host's address
   records are secure (its zone is signed); then the host is not used,
   else DANE does not apply to it. */
static void dane_addr_secure(void *ctx, enum dns_status status, bool secure, const char *error)
{
	struct dane_query *q = ctx;
	if (status == DNS_CANCELLED) {
		dane_report(q, true, RUNNER_DANE_NONE, NULL, 0, NULL);
		return;
	}
	if ((status == DNS_OK || status == DNS_NODATA) && secure) {
		char *why = xasprintf("TLSA lookup for a DNSSEC-signed host failed: %s", q->error);
		dane_report(q, false, RUNNER_DANE_FAILED, NULL, 0, why);
		free(why);
		return;
	}
	dane_report(q, false, RUNNER_DANE_NONE, NULL, 0, NULL);
}

static void dane_tlsa(void *ctx, enum dns_status status, bool secure, const struct tls_tlsa *recs, size_t n,
		      const char *error)
{
	struct dane_query *q = ctx;
	if (status == DNS_CANCELLED) {
		dane_report(q, true, RUNNER_DANE_NONE, NULL, 0, NULL);
		return;
	}
	if (status == DNS_TEMPFAIL) {
		q->error = xstrdup(error != NULL ? error : "?");
		dns_lookup_secure(q->rt->dns, DNS_RR_A, q->host, dane_addr_secure, q);
		return;
	}
	if (status != DNS_OK) {
		dane_report(q, false, RUNNER_DANE_NONE, NULL, 0, NULL);
		return;
	}
	if (!secure) {
		/* 2.2: records the resolver did not validate are not used */
		log_info("dane host=%s tlsa=%zu ignored=insecure", q->host, n);
		dane_report(q, false, RUNNER_DANE_NONE, NULL, 0, NULL);
		return;
	}
	size_t usable = 0;
	for (size_t i = 0; i < n; i++)
		if (tls_tlsa_usable(&recs[i]))
			usable++;
	log_info("dane host=%s tlsa=%zu usable=%zu", q->host, n, usable);
	dane_report(q, false, usable > 0 ? RUNNER_DANE_VERIFY : RUNNER_DANE_ENCRYPT, recs, n, NULL);
}

void runner_tls_dane(struct runner_tls *rt, const char *host, int port, runner_tls_dane_callback *cb,
		     void *ctx)
{
	struct dane_query *q = xcalloc(1, sizeof(*q));
	q->rt = rt;
	q->cb = cb;
	q->ctx = ctx;
	size_t len = strlen(host);
	q->host = xstrndup(host, len > 0 && host[len - 1] == '.' ? len - 1 : len);
	char *name = xasprintf("_%d._tcp.%s", port, q->host);
	dns_lookup_tlsa(rt->dns, name, dane_tlsa, q);
	free(name);
}

/* ---- the unit ---- */

struct runner_tls *runner_tls_new(struct event_base *base, const struct config *cfg, struct dns_resolver *dns,
				  char **error_r)
{
	struct runner_tls *rt = xcalloc(1, sizeof(*rt));
	rt->base = base;
	rt->cfg = cfg;
	rt->dns = dns;
	rt->dir = xasprintf("%s/%s", cfg->data_dir, CACHE_DIR);
	if (cfg->relay_mta_sts) {
		rt->fetcher =
		    mta_sts_fetcher_new(base, cfg->relay_mta_sts_port, cfg->relay_mta_sts_ca, error_r);
		if (rt->fetcher == NULL || cache_load(rt, error_r) < 0) {
			runner_tls_free(&rt);
			return NULL;
		}
	}
	return rt;
}

void runner_tls_free(struct runner_tls **rtp)
{
	struct runner_tls *rt = *rtp;
	if (rt == NULL)
		return;
	*rtp = NULL;
	mta_sts_fetcher_free(&rt->fetcher);
	while (rt->domains != NULL) {
		struct sts_domain *d = rt->domains;
		rt->domains = d->next;
		if (d->waiters != NULL)
			sts_finish(d, true, "none");
		mta_sts_policy_clear(&d->policy);
		free(d->name);
		free(d);
	}
	free(rt->dir);
	free(rt);
}
