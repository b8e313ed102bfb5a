/* `postoffice dns DOMAIN`: every DNS record a mail domain served here
   needs, each checked against what is published (through [dns] resolver):
   one line per record, "ok", "missing" or "differs", with the exact value
   to publish. */
#include "cli/cli.h"
#include "dns/dns.h"
#include "lib/xalloc.h"
#include "trust/dkim_keys.h"
#include "trust/dmarc.h"
#include "trust/spf_async.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>

static void dns_usage(FILE *out)
{
	fprintf(out, "usage: postoffice dns DOMAIN [--ip ADDRESS]...\n\n"
		     "Prints every record DOMAIN needs for mail served by this host ([server]\n"
		     "hostname) and checks what DNS holds now: MX, the host's address, SPF, the\n"
		     "DKIM selectors of `postoffice dkim list`, DMARC, MTA-STS (the TXT record\n"
		     "and the policy file to serve at https://mta-sts.DOMAIN/.well-known/mta-sts.txt),\n"
		     "TLS reporting, and the PTR record of each outgoing address (--ip, or the\n"
		     "host name's addresses).  One line per record: ok, missing or differs, then\n"
		     "the record in zone-file form.  Exit status 0 when everything is ok.\n");
}

/* A lookup and its answer. */
struct query {
	enum dns_rr_type type;
	char *name;
	enum dns_status status;
	char **rrs;
	size_t n;
	int *outstanding;
	struct event_base *base;
};

static void query_cb(void *ctx, enum dns_status status, char **rrs, size_t n, const char *error)
{
	struct query *q = ctx;
	q->status = status;
	q->rrs = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		q->rrs[i] = xstrdup(rrs[i]);
	q->n = n;
	if (--*q->outstanding == 0)
		event_base_loopbreak(q->base);
}

struct checker {
	struct event_base *base;
	struct dns_resolver *r;
	struct query *q;
	size_t nq;
	int outstanding;
	int problems;
	bool doctor; /* `postoffice doctor`: MX, SPF and PTR only, as warnings */
	const char *domain;
};

static struct query *ask(struct checker *c, enum dns_rr_type type, const char *name)
{
	c->q = xreallocarray(c->q, c->nq + 1, sizeof(*c->q));
	struct query *q = &c->q[c->nq++];
	*q = (struct query){type, xstrdup(name), DNS_TEMPFAIL, NULL, 0, &c->outstanding, c->base};
	c->outstanding++;
	return q;
}

/* Sends the queries asked since the last round and waits for them. */
static void round_trip(struct checker *c, size_t first)
{
	for (size_t i = first; i < c->nq; i++)
		dns_lookup_rr(c->r, c->q[i].type, c->q[i].name, query_cb, &c->q[i]);
	while (c->outstanding > 0)
		event_base_dispatch(c->base);
}

static const struct query *answer(const struct checker *c, enum dns_rr_type type, const char *name)
{
	for (size_t i = 0; i < c->nq; i++)
		if (c->q[i].type == type && !strcasecmp(c->q[i].name, name))
			return &c->q[i];
	return NULL;
}

/* One line of the report.  state: "ok", "missing", "differs" or "error"
   (a DNS error: try again). */
static void report(struct checker *c, const char *state, const char *what, const char *record,
		   const char *published)
{
	if (c->doctor) {
		/* the doctor's line: a record that is not right is a warning
		   (mail may still flow), with the record as the fix */
		if (strcmp(what, "MX") != 0 && strcmp(what, "SPF") != 0 && strcmp(what, "PTR") != 0)
			return;
		bool ok = !strcmp(state, "ok");
		if (!ok)
			c->problems++;
		printf("%-6s%-10s%s %s%s%s%s\n", ok ? "ok" : "warn", "dns", c->domain, what,
		       ok                        ? ""
		       : !strcmp(state, "error") ? ": DNS error, try again later"
						 : ": publish ",
		       ok || !strcmp(state, "error") ? "" : record, "");
		return;
	}
	if (strcmp(state, "ok") != 0)
		c->problems++;
	printf("%-8s%-9s%s\n", state, what, record);
	if (published != NULL)
		printf("%17spublished: %s\n", "", published);
}

static const char *state_of(const struct query *q, bool matches)
{
	if (q->status == DNS_TEMPFAIL || q->status == DNS_CANCELLED)
		return "error";
	if (q->n == 0)
		return "missing";
	return matches ? "ok" : "differs";
}

/* The TXT records of a query starting with prefix (case-insensitive). */
static const char *txt_with(const struct query *q, const char *prefix)
{
	for (size_t i = 0; i < q->n; i++)
		if (!strncasecmp(q->rrs[i], prefix, strlen(prefix)))
			return q->rrs[i];
	return NULL;
}

/* "TXT" in zone-file form, split into strings of 255 octets at most. */
static char *txt_record(const char *name, const char *value)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s. IN TXT", name);
	size_t len = strlen(value);
	for (size_t i = 0; i < len || i == 0; i += 250)
		buf_printf(&b, " \"%.*s\"", (int)(len - i < 250 ? len - i : 250), value + i);
	return buf_steal(&b);
}

static void check_txt(struct checker *c, const char *what, const char *name, const char *expected,
		      const char *prefix, bool (*fits)(const char *published, const char *expected))
{
	const struct query *q = answer(c, DNS_RR_TXT, name);
	const char *pub = txt_with(q, prefix);
	char *rec = txt_record(name, expected);
	struct query none = *q;
	none.n = pub != NULL ? q->n : 0;
	report(c, state_of(&none, pub != NULL && fits(pub, expected)), what, rec,
	       pub != NULL && !fits(pub, expected) ? pub : NULL);
	free(rec);
}

static bool any_text(const char *pub, const char *expected)
{
	return true;
}

static bool dmarc_fits(const char *pub, const char *expected)
{
	struct dmarc_record r;
	const char *error;
	return dmarc_record_parse(&r, pub, &error) == 1;
}

/* A key record fits when it carries the same key type and p= value (the
   rest may be written otherwise). */
static bool dkim_fits(const char *pub, const char *expected)
{
	const char *pp = strstr(pub, "p="), *pe = strstr(expected, "p=");
	if (pp == NULL || pe == NULL)
		return false;
	struct buf a = BUF_INIT;
	for (const char *s = pp + 2; *s != '\0' && *s != ';'; s++)
		if (*s != ' ' && *s != '\t')
			buf_append_char(&a, *s);
	buf_append(&a, "", 0);
	bool same = strncmp(a.data, pe + 2, strlen(pe + 2)) == 0 && strlen(a.data) == strlen(pe + 2);
	buf_free(&a);
	return same;
}

struct spf_wait {
	struct event_base *base;
	bool done;
};

static void spf_done(void *ctx, struct spf *spf)
{
	struct spf_wait *w = ctx;
	w->done = true;
	event_base_loopbreak(w->base);
}

static void check_spf(struct checker *c, const char *domain, const char *host, char **ips, size_t nips)
{
	const struct query *q = answer(c, DNS_RR_TXT, domain);
	const char *pub = txt_with(q, "v=spf1");
	char *rec = txt_record(domain, "v=spf1 mx -all");
	/* the published policy must let every outgoing address send */
	bool pass = pub != NULL;
	for (size_t i = 0; pass && i < nips; i++) {
		char *sender = xasprintf("postmaster@%s", domain);
		struct spf *spf = spf_new(ips[i], sender, host, host);
		struct spf_wait w = {c->base, false};
		struct spf_async *a = spf_async_start(c->base, c->r, spf, 20000, spf_done, &w);
		while (!w.done)
			event_base_dispatch(c->base);
		pass = spf_result(spf, NULL) == SPF_PASS;
		spf_async_free(&a);
		spf_free(&spf);
		free(sender);
	}
	struct query none = *q;
	none.n = pub != NULL ? q->n : 0;
	report(c, state_of(&none, pass), "SPF", rec, pub != NULL && !pass ? pub : NULL);
	free(rec);
}

static char *reverse_name(const char *ip)
{
	unsigned char a[16];
	struct buf b = BUF_INIT;
	if (inet_pton(AF_INET, ip, a) == 1) {
		buf_printf(&b, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		for (int i = 15; i >= 0; i--)
			buf_printf(&b, "%x.%x.", a[i] & 15, a[i] >> 4);
		buf_append_str(&b, "ip6.arpa");
	} else {
		return NULL;
	}
	return buf_steal(&b);
}

int cli_dns_check(struct config *cfg, const char *domain, char **ips, size_t nips, bool doctor)
{
	const char *host = cfg->hostname;
	struct checker c = {event_base_new(), NULL, NULL, 0, 0, 0, doctor, domain};
	char *error = NULL;
	c.r = dns_resolver_new(c.base, cfg->dns_resolver, &error);
	if (c.r == NULL) {
		fprintf(stderr, "postoffice dns: %s\n", error);
		free(error);
		event_base_free(c.base);
		return -1;
	}
	char *dmarc_name = dmarc_record_name(domain);
	char *sts_name = xasprintf("_mta-sts.%s", domain), *tlsrpt_name = xasprintf("_smtp._tls.%s", domain);
	char *keydir = xasprintf("%s/" DKIM_KEY_DIR, cfg->data_dir);
	struct dkim_keyring *kr = dkim_keyring_load(keydir, &error);
	free(error);
	error = NULL;
	ask(&c, DNS_RR_MX, domain);
	ask(&c, DNS_RR_A, host);
	ask(&c, DNS_RR_AAAA, host);
	ask(&c, DNS_RR_TXT, domain);
	ask(&c, DNS_RR_TXT, dmarc_name);
	ask(&c, DNS_RR_TXT, sts_name);
	ask(&c, DNS_RR_TXT, tlsrpt_name);
	for (size_t i = 0; i < kr->count; i++) {
		if (strcasecmp(kr->keys[i].domain, domain) != 0)
			continue;
		char *name = xasprintf("%s._domainkey.%s", kr->keys[i].selector, kr->keys[i].domain);
		ask(&c, DNS_RR_TXT, name);
		free(name);
	}
	round_trip(&c, 0);

	/* the outgoing addresses: given, or the host name's */
	const struct query *a4 = answer(&c, DNS_RR_A, host), *a6 = answer(&c, DNS_RR_AAAA, host);
	char **addrs = xcalloc(nips + a4->n + a6->n + 1, sizeof(char *));
	size_t naddrs = 0;
	for (size_t i = 0; i < nips; i++)
		addrs[naddrs++] = ips[i];
	for (size_t i = 0; nips == 0 && i < a4->n; i++)
		addrs[naddrs++] = a4->rrs[i];
	for (size_t i = 0; nips == 0 && i < a6->n; i++)
		addrs[naddrs++] = a6->rrs[i];
	size_t first = c.nq;
	for (size_t i = 0; i < naddrs; i++) {
		char *rev = reverse_name(addrs[i]);
		if (rev != NULL)
			ask(&c, DNS_RR_PTR, rev);
		free(rev);
	}
	round_trip(&c, first);
	/* the PTR queries grew the array: look the address answers up again */
	a4 = answer(&c, DNS_RR_A, host);
	a6 = answer(&c, DNS_RR_AAAA, host);

	/* MX: the host among the exchanges */
	const struct query *mx = answer(&c, DNS_RR_MX, domain);
	bool listed = false;
	for (size_t i = 0; i < mx->n; i++)
		listed = listed || !strcasecmp(mx->rrs[i], host);
	char *rec = xasprintf("%s. IN MX 10 %s.", domain, host);
	struct buf pub = BUF_INIT;
	for (size_t i = 0; i < mx->n; i++)
		buf_printf(&pub, "%s%s", i ? ", " : "", mx->rrs[i]);
	report(&c, state_of(mx, listed), "MX", rec, !listed && mx->n > 0 ? buf_cstr(&pub) : NULL);
	buf_free(&pub);
	free(rec);

	/* the host's addresses: the outgoing ones among them */
	struct query both = *a4;
	both.n = a4->n + a6->n;
	if (a4->status == DNS_TEMPFAIL || a6->status == DNS_TEMPFAIL)
		both.status = DNS_TEMPFAIL;
	for (size_t i = 0; i < naddrs || naddrs == 0; i++) {
		bool found = false;
		for (size_t j = 0; i < naddrs && j < a4->n; j++)
			found = found || !strcmp(a4->rrs[j], addrs[i]);
		for (size_t j = 0; i < naddrs && j < a6->n; j++)
			found = found || !strcmp(a6->rrs[j], addrs[i]);
		bool v6 = i < naddrs && strchr(addrs[i], ':') != NULL;
		rec = xasprintf("%s. IN %s %s", host, v6 ? "AAAA" : "A", i < naddrs ? addrs[i] : "ADDRESS");
		report(&c, state_of(&both, found), "address", rec, NULL);
		free(rec);
		if (naddrs == 0)
			break;
	}

	check_spf(&c, domain, host, addrs, naddrs);

	for (size_t i = 0; i < kr->count; i++) {
		if (strcasecmp(kr->keys[i].domain, domain) != 0)
			continue;
		struct buf value = BUF_INIT;
		const char *why;
		if (dkim_key_record(&value, kr->keys[i].key, &why) == 0) {
			char *name = xasprintf("%s._domainkey.%s", kr->keys[i].selector, kr->keys[i].domain);
			check_txt(&c, "DKIM", name, buf_cstr(&value), "v=DKIM1", dkim_fits);
			free(name);
		}
		buf_free(&value);
	}
	if (!doctor &&
	    (kr->count == 0 || !dkim_keyring_signers(kr, domain, &(const struct dkim_key *){NULL}, 1)))
		report(&c, "missing", "DKIM", "no key: make one with `postoffice dkim keygen DOMAIN`", NULL);

	char *dmarc = xasprintf("v=DMARC1; p=quarantine; rua=mailto:postmaster@%s", domain);
	check_txt(&c, "DMARC", dmarc_name, dmarc, "v=DMARC1", dmarc_fits);
	free(dmarc);

	/* MTA-STS (RFC 8461 3): the id changes with the policy */
	char *policy = xasprintf("version: STSv1\nmode: enforce\nmx: %s\nmax_age: 604800\n", host);
	unsigned long h = 5381;
	for (const char *p = policy; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	char *sts = xasprintf("v=STSv1; id=%lu", h % 100000000000UL);
	check_txt(&c, "MTA-STS", sts_name, sts, "v=STSv1", any_text);
	for (char *line = policy, *nl; !doctor && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		if (line == policy)
			printf("%17spolicy to serve at https://mta-sts.%s/.well-known/mta-sts.txt:\n", "",
			       domain);
		printf("%19s%.*s\n", "", (int)(nl - line), line);
	}
	free(sts);
	free(policy);

	char *tlsrpt = xasprintf("v=TLSRPTv1; rua=mailto:postmaster@%s", domain);
	check_txt(&c, "TLS-RPT", tlsrpt_name, tlsrpt, "v=TLSRPTv1", any_text);
	free(tlsrpt);

	/* PTR: each outgoing address names the host (FCrDNS with the A/AAAA
	   check above) */
	for (size_t i = 0; i < naddrs; i++) {
		char *rev = reverse_name(addrs[i]);
		if (rev == NULL)
			continue;
		const struct query *ptr = answer(&c, DNS_RR_PTR, rev);
		bool named = false;
		for (size_t j = 0; j < ptr->n; j++)
			named = named || !strcasecmp(ptr->rrs[j], host);
		rec = xasprintf("%s. IN PTR %s.", rev, host);
		report(&c, state_of(ptr, named), "PTR", rec, !named && ptr->n > 0 ? ptr->rrs[0] : NULL);
		free(rec);
		free(rev);
	}

	int problems = c.problems;
	for (size_t i = 0; i < c.nq; i++) {
		free(c.q[i].name);
		for (size_t j = 0; j < c.q[i].n; j++)
			free(c.q[i].rrs[j]);
		free(c.q[i].rrs);
	}
	free(c.q);
	free(addrs);
	dkim_keyring_unref(&kr);
	free(keydir);
	free(dmarc_name);
	free(sts_name);
	free(tlsrpt_name);
	dns_resolver_free(&c.r);
	event_base_free(c.base);
	return problems;
}

static int dns_run(struct config *cfg, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		dns_usage(stdout);
		return 0;
	}
	const char *domain = NULL;
	char **ips = xcalloc((size_t)argc, sizeof(char *));
	size_t nips = 0;
	for (int i = 1; i < argc; i++) {
		unsigned char tmp[16];
		if (!strcmp(argv[i], "--ip") && i + 1 < argc) {
			const char *ip = argv[++i];
			if (inet_pton(AF_INET, ip, tmp) != 1 && inet_pton(AF_INET6, ip, tmp) != 1) {
				fprintf(stderr, "postoffice dns: '%s' is not an IP address\n", ip);
				free(ips);
				return 2;
			}
			ips[nips++] = argv[i];
		} else if (argv[i][0] != '-' && domain == NULL && dkim_name_valid(argv[i])) {
			domain = argv[i];
		} else {
			dns_usage(stderr);
			free(ips);
			return 2;
		}
	}
	if (domain == NULL || cfg->hostname == NULL || cfg->hostname[0] == '\0') {
		dns_usage(stderr);
		free(ips);
		return 2;
	}
	char *lower = xstrdup(domain);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	int rc = cli_dns_check(cfg, lower, ips, nips, false) == 0 ? 0 : 1;
	free(lower);
	free(ips);
	return rc;
}

const struct cli_command cmd_dns = {
    "dns", "DOMAIN [--ip ADDRESS]", "the DNS records a mail domain needs, checked", dns_run, dns_usage,
};
