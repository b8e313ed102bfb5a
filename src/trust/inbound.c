/* The checks of inbound mail and the verdict (see inbound.h). */
#include "trust/inbound.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/header.h"
#include "trust/arc.h"
#include "trust/authres.h"
#include "trust/dkim_check.h"
#include "trust/dkim_lookup.h"
#include "trust/dmarc.h"
#include "trust/spf.h"
#include "trust/spf_async.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/event.h>

/* RFC 7208 4.6.4: at least 20 seconds for the whole evaluation. */
#define SPF_TIMEOUT_MS 20000

/* One key record an ARC chain needs. */
struct arc_key {
	struct trust_inbound *ti;
	char *name;
	char *record; /* the first TXT record; NULL: none */
	bool answered;
	struct dns_query *q;
};

/* What the _dmarc lookups found (RFC 7489 6.6.3). */
enum dmarc_found {
	DMARC_FOUND_NONE,     /* no record: no DMARC processing */
	DMARC_FOUND_POLICY,   /* one record with a policy */
	DMARC_FOUND_TEMPFAIL, /* a lookup failed: temperror */
};

struct trust_inbound {
	struct trust_inbound_settings set;
	char *client_ip, *helo, *mail_from, *receiver, *arc_trusted;

	/* the wait */
	struct event *timer;
	void (*done)(void *ctx);
	void *done_ctx;
	bool waiting;

	/* SPF (runs for spf and for dmarc) */
	struct spf *spf;
	struct spf_async *spf_async;
	bool spf_running;
	enum spf_result spf_result;
	const char *spf_detail;

	/* the header block */
	const char *header;
	size_t header_len;
	bool have_header, too_large;

	/* DKIM (runs for dkim and for dmarc) */
	struct dkim_check *dkim;
	struct dkim_lookups *dkim_lookups;
	bool dkim_waiting;

	/* RFC5322.From */
	char *from_domain;
	const char *from_problem; /* several From: domains */

	/* DMARC */
	struct dns_query *dmarc_q;
	bool dmarc_running, dmarc_at_org;
	char *dmarc_org;
	enum dmarc_found dmarc_found;
	struct dmarc_record dmarc_rec;
	char *dmarc_rec_domain;
	enum dmarc_result dmarc_result;
	struct dmarc_verdict dmarc;
	const char *dmarc_note; /* why the policy was not applied, or NULL */

	/* ARC */
	int arc_state; /* 0 none, 1 a chain to verify, -1 broken */
	struct arc_chain arc;
	struct dkim_body_hash *arc_bh;
	struct arc_key arc_keys[ARC_MAX_INSTANCES + 1];
	size_t narc_keys;
	enum arc_result arc_result;
	const char *arc_why;
	bool arc_trusted_pass;

	/* the verdict */
	bool finished;
	enum trust_action action;
	int code;
	const char *status;
	char text[300];
};

static char *dup_or_empty(const char *s)
{
	return xstrdup(s != NULL ? s : "");
}

/* ---- the wait ---- */

static bool running(const struct trust_inbound *ti)
{
	if (ti->spf_running || ti->dkim_waiting || ti->dmarc_running)
		return true;
	for (size_t i = 0; i < ti->narc_keys; i++)
		if (!ti->arc_keys[i].answered)
			return true;
	return false;
}

static void maybe_done(struct trust_inbound *ti)
{
	if (!ti->waiting || running(ti))
		return;
	ti->waiting = false;
	if (ti->timer != NULL)
		evtimer_del(ti->timer);
	ti->done(ti->done_ctx); /* last: it may free ti */
}

/* ---- SPF ---- */

static void spf_done(void *ctx, struct spf *spf)
{
	struct trust_inbound *ti = ctx;
	ti->spf_running = false;
	ti->spf_result = spf_result(spf, &ti->spf_detail);
	maybe_done(ti);
}

static void spf_start(struct trust_inbound *ti)
{
	ti->spf = spf_new(ti->client_ip, ti->mail_from, ti->helo, ti->receiver);
	if (ti->spf == NULL) {
		ti->spf_result = SPF_NONE; /* not an IP client (tests, a socket) */
		return;
	}
	if (ti->set.resolver == NULL) {
		ti->spf_result = SPF_TEMPERROR;
		ti->spf_detail = "no resolver";
		return;
	}
	ti->spf_running = true;
	ti->spf_async =
	    spf_async_start(ti->set.base, ti->set.resolver, ti->spf, SPF_TIMEOUT_MS, spf_done, ti);
}

struct trust_inbound *trust_inbound_start(const struct trust_inbound_settings *set)
{
	struct trust_inbound *ti = xcalloc(1, sizeof(*ti));
	ti->set = *set;
	ti->client_ip = dup_or_empty(set->client_ip);
	ti->helo = dup_or_empty(set->helo);
	ti->mail_from = dup_or_empty(set->mail_from);
	ti->receiver = dup_or_empty(set->receiver);
	ti->arc_trusted = dup_or_empty(set->arc_trusted);
	ti->set.client_ip = ti->set.helo = ti->set.mail_from = ti->set.receiver = ti->set.arc_trusted = NULL;
	ti->spf_result = SPF_NONE;
	ti->dmarc_result = DMARC_NONE;
	ti->arc_result = ARC_NONE;
	ti->action = TRUST_ACCEPT;
	if (set->spf || set->dmarc)
		spf_start(ti);
	return ti;
}

/* ---- RFC5322.From (RFC 7489 6.6.1) ---- */

static void find_from_domain(struct trust_inbound *ti)
{
	struct pool *pool = pool_create(2048);
	struct mime_headers *h = mime_headers_parse(pool, ti->header, ti->header_len, &mime_default_limits);
	unsigned int fields = mime_headers_count(h, "From");
	const struct mime_header_field *from = mime_headers_find(h, "From");
	const char *domain = NULL;
	bool several = fields > 1;
	if (from != NULL) {
		for (const struct mime_address *a = mime_address_parse(pool, from->value, from->value_len);
		     a != NULL; a = a->next) {
			if (a->domain == NULL || a->domain[0] == '\0' ||
			    (a->flags & (MIME_ADDR_GROUP_START | MIME_ADDR_GROUP_END)))
				continue;
			if (domain != NULL && strcasecmp(domain, a->domain) != 0)
				several = true;
			domain = a->domain;
		}
	}
	/* Several authors of one domain are that domain; of several domains
	   (or several From: fields, which RFC 5322 forbids) nobody can say
	   whose policy applies: permerror. */
	if (several)
		ti->from_problem = "several From: domains";
	else if (domain != NULL) {
		ti->from_domain = xstrdup(domain);
		for (char *p = ti->from_domain; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		size_t n = strlen(ti->from_domain);
		if (n > 0 && ti->from_domain[n - 1] == '.')
			ti->from_domain[n - 1] = '\0';
	}
	pool_destroy(&pool);
}

/* ---- DMARC policy discovery (RFC 7489 6.6.3) ---- */

static void dmarc_lookup(struct trust_inbound *ti, const char *domain);

static void dmarc_answer(void *ctx, enum dns_status status, const struct dns_txt *txt, size_t count,
			 const char *error)
{
	struct trust_inbound *ti = ctx;
	ti->dmarc_q = NULL;
	ti->dmarc_running = false;
	if (status == DNS_CANCELLED)
		return;
	if (status == DNS_TEMPFAIL) {
		ti->dmarc_found = DMARC_FOUND_TEMPFAIL;
		maybe_done(ti);
		return;
	}
	/* Records that do not start with v=DMARC1 are discarded; more than
	   one left, or one without a usable policy: no DMARC processing. */
	size_t records = 0;
	struct dmarc_record rec = {0};
	bool usable = false;
	for (size_t i = 0; status == DNS_OK && i < count; i++) {
		struct dmarc_record r;
		const char *why;
		int rc = dmarc_record_parse(&r, txt[i].text, &why);
		if (rc == 0)
			continue;
		records++;
		if (rc == 1) {
			rec = r;
			usable = true;
		}
	}
	const char *domain = ti->dmarc_at_org ? ti->dmarc_org : ti->from_domain;
	if (records == 1 && usable) {
		ti->dmarc_found = DMARC_FOUND_POLICY;
		ti->dmarc_rec = rec;
		ti->dmarc_rec_domain = xstrdup(domain);
	} else if (records == 0 && !ti->dmarc_at_org && strcmp(ti->dmarc_org, ti->from_domain) != 0) {
		/* none at the author domain: the organizational domain's */
		ti->dmarc_at_org = true;
		dmarc_lookup(ti, ti->dmarc_org);
		return;
	}
	maybe_done(ti);
}

static void dmarc_lookup(struct trust_inbound *ti, const char *domain)
{
	if (ti->set.resolver == NULL) {
		ti->dmarc_found = DMARC_FOUND_TEMPFAIL;
		return;
	}
	char *name = dmarc_record_name(domain);
	ti->dmarc_running = true;
	ti->dmarc_q = dns_lookup_txt(ti->set.resolver, name, dmarc_answer, ti);
	free(name);
}

/* ---- ARC keys ---- */

static void arc_key_answer(void *ctx, enum dns_status status, const struct dns_txt *txt, size_t count,
			   const char *error)
{
	struct arc_key *k = ctx;
	k->q = NULL;
	if (status == DNS_CANCELLED)
		return;
	k->answered = true;
	if (status == DNS_OK && count > 0)
		k->record = xstrndup(txt[0].text, txt[0].len);
	maybe_done(k->ti);
}

static const char *arc_key_record(void *ctx, const char *name)
{
	struct trust_inbound *ti = ctx;
	for (size_t i = 0; i < ti->narc_keys; i++)
		if (strcasecmp(ti->arc_keys[i].name, name) == 0)
			return ti->arc_keys[i].record;
	return NULL;
}

static void arc_begin(struct trust_inbound *ti)
{
	int rc = arc_chain_parse(&ti->arc, ti->header, ti->header_len, (int64_t)time(NULL), &ti->arc_why);
	ti->arc_state = rc;
	if (rc <= 0)
		return;
	char *names[ARC_MAX_INSTANCES + 1];
	ti->narc_keys = arc_chain_key_names(&ti->arc, names, ARC_MAX_INSTANCES + 1);
	for (size_t i = 0; i < ti->narc_keys; i++) {
		struct arc_key *k = &ti->arc_keys[i];
		k->ti = ti;
		k->name = names[i];
		if (ti->set.resolver == NULL)
			k->answered = true;
	}
	/* every key counted before the first lookup starts */
	for (size_t i = 0; i < ti->narc_keys; i++)
		if (!ti->arc_keys[i].answered)
			ti->arc_keys[i].q = dns_lookup_txt(ti->set.resolver, ti->arc_keys[i].name,
							   arc_key_answer, &ti->arc_keys[i]);
	ti->arc_bh = dkim_body_hash_new(arc_chain_body_canon(&ti->arc));
}

/* ---- the message ---- */

void trust_inbound_header(struct trust_inbound *ti, const char *header, size_t len)
{
	if (ti->have_header || ti->too_large)
		return;
	ti->have_header = true;
	ti->header = header != NULL ? header : "";
	ti->header_len = len;
	if (ti->set.dkim || ti->set.dmarc) {
		ti->dkim = dkim_check_new((int64_t)time(NULL));
		dkim_check_header(ti->dkim, ti->header, len);
		if (dkim_check_key_count(ti->dkim) > 0)
			ti->dkim_lookups = dkim_lookups_start(ti->set.resolver, ti->set.key_cache, ti->dkim);
	}
	if (ti->set.dmarc) {
		find_from_domain(ti);
		if (ti->from_domain != NULL) {
			ti->dmarc_org = dmarc_org_domain(ti->from_domain);
			dmarc_lookup(ti, ti->from_domain);
		}
	}
	if (ti->set.arc)
		arc_begin(ti);
}

void trust_inbound_header_too_large(struct trust_inbound *ti)
{
	if (!ti->have_header)
		ti->too_large = true;
}

void trust_inbound_body(struct trust_inbound *ti, const void *data, size_t len)
{
	if (ti->dkim != NULL)
		dkim_check_body(ti->dkim, data, len);
	if (ti->arc_bh != NULL)
		dkim_body_hash_update(ti->arc_bh, data, len);
}

static void dkim_ready(void *ctx)
{
	struct trust_inbound *ti = ctx;
	ti->dkim_waiting = false;
	maybe_done(ti);
}

/* The time is up: what is still running is cancelled and counts as a
   temporary error. */
static void timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct trust_inbound *ti = arg;
	if (ti->spf_running) {
		spf_async_free(&ti->spf_async);
		ti->spf_running = false;
		ti->spf_result = SPF_TEMPERROR;
		ti->spf_detail = "DNS timeout";
	}
	if (ti->dkim_waiting) {
		dkim_lookups_free(&ti->dkim_lookups);
		ti->dkim_waiting = false;
	}
	if (ti->dmarc_running) {
		dns_cancel(&ti->dmarc_q);
		ti->dmarc_running = false;
		ti->dmarc_found = DMARC_FOUND_TEMPFAIL;
	}
	for (size_t i = 0; i < ti->narc_keys; i++) {
		dns_cancel(&ti->arc_keys[i].q);
		ti->arc_keys[i].answered = true;
	}
	maybe_done(ti);
}

void trust_inbound_wait(struct trust_inbound *ti, int timeout_ms, void (*done)(void *ctx), void *ctx)
{
	ti->done = done;
	ti->done_ctx = ctx;
	ti->waiting = true;
	if (ti->dkim_lookups != NULL && !dkim_lookups_done(ti->dkim_lookups)) {
		ti->dkim_waiting = true;
		dkim_lookups_wait(ti->dkim_lookups, ti->set.base, timeout_ms, dkim_ready, ti);
	}
	if (running(ti)) {
		ti->timer = evtimer_new(ti->set.base, timed_out, ti);
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		evtimer_add(ti->timer, &tv);
	}
	maybe_done(ti);
}

/* ---- the verdict ---- */

/* True when domain is in the list (commas or spaces between). */
static bool listed(const char *list, const char *domain)
{
	size_t n = strlen(domain);
	for (const char *p = list; *p != '\0';) {
		p += strspn(p, ", \t");
		size_t len = strcspn(p, ", \t");
		if (len == n && len > 0 && strncasecmp(p, domain, n) == 0)
			return true;
		p += len;
	}
	return false;
}

static void finish_arc(struct trust_inbound *ti)
{
	if (ti->arc_state < 0)
		ti->arc_result = ARC_FAIL;
	if (ti->arc_state <= 0)
		return;
	unsigned char digest[32];
	dkim_body_hash_final(ti->arc_bh, digest);
	ti->arc_result =
	    arc_chain_verify(&ti->arc, ti->header, ti->header_len, digest, arc_key_record, ti, &ti->arc_why);
	ti->arc_trusted_pass = ti->arc_result == ARC_PASS && ti->arc.seal_domain[ti->arc.n] != NULL &&
			       listed(ti->arc_trusted, ti->arc.seal_domain[ti->arc.n]);
}

static void finish_dmarc(struct trust_inbound *ti)
{
	if (ti->too_large || ti->from_problem != NULL) {
		ti->dmarc_result = DMARC_PERMERROR;
		return;
	}
	if (ti->from_domain == NULL || ti->dmarc_found == DMARC_FOUND_NONE)
		return; /* none */
	if (ti->dmarc_found == DMARC_FOUND_TEMPFAIL) {
		ti->dmarc_result = DMARC_TEMPERROR;
		return;
	}
	const char *passed[DKIM_CHECK_MAX_SIGNATURES];
	size_t npassed = 0, n = 0;
	const struct dkim_check_result *r = ti->dkim != NULL ? dkim_check_results(ti->dkim, &n, NULL) : NULL;
	for (size_t i = 0; i < n; i++)
		if (r[i].result == DKIM_PASS && r[i].domain != NULL)
			passed[npassed++] = r[i].domain;
	struct dmarc_input in = {
	    .from_domain = ti->from_domain,
	    .spf = ti->spf_result,
	    .spf_domain = ti->spf != NULL ? spf_domain(ti->spf) : NULL,
	    .dkim_domains = passed,
	    .ndkim = npassed,
	};
	dmarc_evaluate(&ti->dmarc_rec, ti->dmarc_rec_domain, &in, arc4random_uniform(100), &ti->dmarc);
	ti->dmarc_result = ti->dmarc.result;
}

static void reject(struct trust_inbound *ti, const char *status, const char *fmt, const char *domain)
{
	ti->action = TRUST_REJECT;
	ti->code = 550;
	ti->status = status;
	snprintf(ti->text, sizeof(ti->text), fmt, domain);
}

static void decide(struct trust_inbound *ti)
{
	const struct trust_inbound_settings *set = &ti->set;
	if (set->dmarc && (ti->too_large || ti->from_problem != NULL)) {
		/* a forged From: could hide behind what cannot be checked */
		if (set->dmarc_quarantine)
			ti->action = TRUST_QUARANTINE;
		return;
	}
	if (set->dmarc && ti->dmarc_result == DMARC_FAIL) {
		enum dmarc_policy p = ti->dmarc.policy;
		if (ti->dmarc.sampled_out)
			ti->dmarc_note = "sampled out by pct";
		if (p == DMARC_POLICY_NONE)
			return;
		if (ti->arc_trusted_pass) {
			ti->dmarc_note = "forgiven by a trusted ARC sealer";
			return;
		}
		if (p == DMARC_POLICY_REJECT && set->dmarc_reject) {
			/* RFC 7489 6.6.4, 10.3: rejected during the transaction */
			reject(ti, "5.7.1", "Message rejected: the DMARC policy of %s (RFC 7489) refuses it",
			       ti->from_domain);
			return;
		}
		if (set->dmarc_quarantine)
			ti->action = TRUST_QUARANTINE;
		return;
	}
	/* RFC 7208 8.4: fail may be refused; only for domains that publish no
	   DMARC policy, which decides otherwise */
	if (set->spf_reject && ti->spf_result == SPF_FAIL &&
	    (!set->dmarc || ti->dmarc_found == DMARC_FOUND_NONE))
		reject(ti, "5.7.23", "Message rejected: SPF check failed for %s (RFC 7208)",
		       ti->spf != NULL && spf_domain(ti->spf) != NULL ? spf_domain(ti->spf) : "the sender");
}

void trust_inbound_finish(struct trust_inbound *ti)
{
	if (ti->finished)
		return;
	ti->finished = true;
	if (!ti->have_header && !ti->too_large)
		trust_inbound_header(ti, "", 0);
	if (ti->dkim != NULL)
		dkim_check_finish(ti->dkim);
	if (ti->set.arc)
		finish_arc(ti);
	if (ti->set.dmarc)
		finish_dmarc(ti);
	decide(ti);
}

enum trust_action trust_inbound_action(const struct trust_inbound *ti, int *code_r, const char **status_r,
				       const char **text_r)
{
	if (ti->action == TRUST_REJECT) {
		if (code_r != NULL)
			*code_r = ti->code;
		if (status_r != NULL)
			*status_r = ti->status;
		if (text_r != NULL)
			*text_r = ti->text;
	}
	return ti->action;
}

static const char *policy_note(const struct trust_inbound *ti, char *buf, size_t size)
{
	if (ti->dmarc_result != DMARC_FAIL && ti->dmarc_result != DMARC_PASS)
		return ti->dmarc_result == DMARC_PERMERROR
			   ? (ti->too_large ? "header block too large" : ti->from_problem)
			   : NULL;
	snprintf(buf, size, "p=%s%s%s", dmarc_policy_name(ti->dmarc.requested),
		 ti->dmarc_note != NULL ? ", " : "", ti->dmarc_note != NULL ? ti->dmarc_note : "");
	return buf;
}

void trust_inbound_authres(const struct trust_inbound *ti, struct buf *out, const char *authserv_id)
{
	struct authres_writer w;
	authres_begin(&w, out, authserv_id);
	if (ti->set.spf) {
		bool why = ti->spf_result == SPF_PERMERROR || ti->spf_result == SPF_TEMPERROR;
		authres_result(&w, "spf", spf_result_name(ti->spf_result), why ? ti->spf_detail : NULL);
		/* RFC 8601 2.7.2: the identity checked */
		if (ti->mail_from[0] != '\0')
			authres_property(&w, "smtp", "mailfrom", ti->mail_from);
		else if (ti->helo[0] != '\0')
			authres_property(&w, "smtp", "helo", ti->helo);
	}
	if (ti->set.dkim) {
		if (ti->too_large)
			authres_result(&w, "dkim", "permerror", "header block too large");
		else if (ti->dkim != NULL)
			dkim_check_authres_results(ti->dkim, &w);
	}
	if (ti->set.dmarc) {
		char note[128];
		authres_result(&w, "dmarc", dmarc_result_name(ti->dmarc_result),
			       policy_note(ti, note, sizeof(note)));
		if (ti->from_domain != NULL)
			authres_property(&w, "header", "from", ti->from_domain);
	}
	if (ti->set.arc)
		authres_result(&w, "arc", arc_result_name(ti->arc_result),
			       ti->arc_result == ARC_FAIL ? ti->arc_why : NULL);
	authres_end(&w);
}

void trust_inbound_log(const struct trust_inbound *ti, const char *qid)
{
	size_t n = 0;
	unsigned int unchecked = 0;
	const struct dkim_check_result *r =
	    ti->set.dkim && ti->dkim != NULL ? dkim_check_results(ti->dkim, &n, &unchecked) : NULL;
	for (size_t i = 0; i < n; i++) {
		char auid[300] = "";
		if (r[i].auid != NULL)
			log_printable(auid, sizeof(auid), r[i].auid, strlen(r[i].auid));
		log_info("dkim verify qid=%s result=%s d=%s s=%s i=%s%s%s%s", qid,
			 dkim_result_name(r[i].result), r[i].domain != NULL ? r[i].domain : "-",
			 r[i].selector != NULL ? r[i].selector : "-", auid[0] != '\0' ? auid : "-",
			 r[i].reason != NULL ? " reason=\"" : "", r[i].reason != NULL ? r[i].reason : "",
			 r[i].reason != NULL ? "\"" : "");
	}
	if (unchecked > 0)
		log_info("dkim verify qid=%s unchecked=%u", qid, unchecked);
	static const char *const actions[] = {"accept", "quarantine", "reject"};
	log_info("trust verdict qid=%s spf=%s dmarc=%s from=%s arc=%s action=%s", qid,
		 ti->set.spf || ti->set.dmarc ? spf_result_name(ti->spf_result) : "-",
		 ti->set.dmarc ? dmarc_result_name(ti->dmarc_result) : "-",
		 ti->from_domain != NULL ? ti->from_domain : "-",
		 ti->set.arc ? arc_result_name(ti->arc_result) : "-", actions[ti->action]);
}

void trust_inbound_free(struct trust_inbound **tip)
{
	struct trust_inbound *ti = *tip;
	if (ti == NULL)
		return;
	*tip = NULL;
	spf_async_free(&ti->spf_async);
	spf_free(&ti->spf);
	dkim_lookups_free(&ti->dkim_lookups);
	dkim_check_free(&ti->dkim);
	dns_cancel(&ti->dmarc_q);
	for (size_t i = 0; i < ti->narc_keys; i++) {
		dns_cancel(&ti->arc_keys[i].q);
		free(ti->arc_keys[i].name);
		free(ti->arc_keys[i].record);
	}
	if (ti->arc_state != 0)
		arc_chain_free(&ti->arc);
	dkim_body_hash_free(&ti->arc_bh);
	if (ti->timer != NULL)
		event_free(ti->timer);
	free(ti->from_domain);
	free(ti->dmarc_org);
	free(ti->dmarc_rec_domain);
	free(ti->client_ip);
	free(ti->helo);
	free(ti->mail_from);
	free(ti->receiver);
	free(ti->arc_trusted);
	free(ti);
}
