/* DMARC (RFC 7489): see dmarc.h. */
#include "trust/dmarc.h"
#include "lib/xalloc.h"
#include "trust/dkim.h"

#include <libpsl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

const char *dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = {"none", "quarantine", "reject"};
	return names[p];
}

const char *dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};
	return names[r];
}

static bool tag_is(const struct dkim_tag *t, const char *value)
{
	return t->value_len == strlen(value) && strncasecmp(t->value, value, t->value_len) == 0;
}

static int parse_policy(const struct dkim_tag *t, enum dmarc_policy *p)
{
	if (tag_is(t, "none"))
		*p = DMARC_POLICY_NONE;
	else if (tag_is(t, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (tag_is(t, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* "r" or "s" (adkim=, aspf=). */
static int parse_mode(const struct dkim_tag *t, bool *strict)
{
	if (t == NULL)
		return 0;
	if (!tag_is(t, "r") && !tag_is(t, "s"))
		return -1;
	*strict = tag_is(t, "s");
	return 0;
}

/* rua= holds at least one URI (6.6.3: then a broken policy is p=none). */
static bool has_rua(const struct dkim_tags *tags)
{
	const struct dkim_tag *rua = dkim_tags_get(tags, "rua");
	return rua != NULL && rua->value_len > 7 && strncasecmp(rua->value, "mailto:", 7) == 0;
}

int dmarc_record_parse(struct dmarc_record *r, const char *text, const char **error_r)
{
	struct dkim_tags tags;
	*r = (struct dmarc_record){DMARC_POLICY_NONE, DMARC_POLICY_NONE, false, false, 100};
	if (dkim_tags_parse(&tags, text, strlen(text), error_r) < 0) {
		/* not even a tag list: a DMARC record only if it says so */
		if (strncmp(text, "v=DMARC1", 8) != 0)
			return 0;
		*error_r = "syntax error in the DMARC record";
		return -1;
	}
	/* 6.4: v=DMARC1 first, exactly */
	if (tags.count == 0 || tags.tag[0].name_len != 1 || tags.tag[0].name[0] != 'v' ||
	    tags.tag[0].value_len != 6 || strncmp(tags.tag[0].value, "DMARC1", 6) != 0)
		return 0;
	const struct dkim_tag *p = dkim_tags_get(&tags, "p"), *sp = dkim_tags_get(&tags, "sp"),
			      *pct = dkim_tags_get(&tags, "pct");
	const char *problem = NULL;
	if (p == NULL || parse_policy(p, &r->p) < 0)
		problem = p == NULL ? "no p= in the DMARC record" : "bad p= in the DMARC record";
	else if (sp != NULL && parse_policy(sp, &r->sp) < 0)
		problem = "bad sp= in the DMARC record";
	if (sp == NULL)
		r->sp = r->p;
	if (problem != NULL) {
		if (!has_rua(&tags)) {
			*error_r = problem;
			return -1;
		}
		r->p = r->sp = DMARC_POLICY_NONE;
	}
	if (parse_mode(dkim_tags_get(&tags, "adkim"), &r->adkim_strict) < 0 ||
	    parse_mode(dkim_tags_get(&tags, "aspf"), &r->aspf_strict) < 0) {
		*error_r = "bad adkim= or aspf= in the DMARC record";
		return -1;
	}
	if (pct != NULL) {
		unsigned v = 0;
		bool ok = pct->value_len > 0 && pct->value_len <= 3;
		for (size_t i = 0; ok && i < pct->value_len; i++) {
			ok = pct->value[i] >= '0' && pct->value[i] <= '9';
			v = v * 10 + (unsigned)(pct->value[i] - '0');
		}
		if (!ok || v > 100) {
			*error_r = "bad pct= in the DMARC record";
			return -1;
		}
		r->pct = v;
	}
	return 1;
}

/* ---- organizational domains ---- */

static const psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void psl_init(void)
{
	/* the newer of the built-in list and the system's file */
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = psl_builtin();
}

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	size_t len = strlen(d);
	while (len > 0 && d[len - 1] == '.')
		d[--len] = '\0';
	for (char *c = d; *c != '\0'; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	return d;
}

char *dmarc_org_domain(const char *domain)
{
	pthread_once(&psl_once, psl_init);
	char *d = lower_dup(domain);
	const char *reg = psl != NULL ? psl_registrable_domain(psl, d) : NULL;
	if (reg == NULL || reg == d)
		return d;
	char *out = xstrdup(reg);
	free(d);
	return out;
}

bool dmarc_aligned(const char *a, const char *b, bool strict)
{
	if (a == NULL || b == NULL)
		return false;
	char *x = lower_dup(a), *y = lower_dup(b);
	bool same = strcmp(x, y) == 0;
	if (!same && !strict) {
		char *ox = dmarc_org_domain(x), *oy = dmarc_org_domain(y);
		same = strcmp(ox, oy) == 0;
		free(ox);
		free(oy);
	}
	free(x);
	free(y);
	return same;
}

void dmarc_evaluate(const struct dmarc_record *r, const char *record_domain, const struct dmarc_input *in,
		    unsigned rnd, struct dmarc_verdict *v)
{
	*v = (struct dmarc_verdict){0};
	/* 6.6.2: pass when SPF or DKIM passed for an aligned identifier */
	v->spf_aligned =
	    in->spf == SPF_PASS && dmarc_aligned(in->spf_domain, in->from_domain, r->aspf_strict);
	for (size_t i = 0; i < in->ndkim && !v->dkim_aligned; i++)
		v->dkim_aligned = dmarc_aligned(in->dkim_domains[i], in->from_domain, r->adkim_strict);
	/* 6.3 sp: the record of the organizational domain governs its
	   subdomains with sp= */
	char *from = lower_dup(in->from_domain), *rec = lower_dup(record_domain);
	v->requested = strcmp(from, rec) == 0 ? r->p : r->sp;
	free(from);
	free(rec);
	if (v->spf_aligned || v->dkim_aligned) {
		v->result = DMARC_PASS;
		v->policy = DMARC_POLICY_NONE;
		return;
	}
	v->result = DMARC_FAIL;
	v->policy = v->requested;
	/* 6.6.4: pct samples the messages the policy applies to; the others
	   get the next weaker one (reject -> quarantine -> none) */
	if (v->policy != DMARC_POLICY_NONE && rnd % 100 >= r->pct) {
		v->sampled_out = true;
		v->policy = v->policy == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
	}
}

char *dmarc_record_name(const char *domain)
{
	char *d = lower_dup(domain);
	char *name = xasprintf("_dmarc.%s", d);
	free(d);
	return name;
}
