/* The DKIM verifier, a delivery filter (see delivery_dkim.h). */
#include "delivery/delivery_dkim.h"
#include "delivery/delivery_hold.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "trust/authres.h"
#include "trust/dkim_check.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

struct verifier {
	struct delivery_filter f;
	char *authserv_id;
	/* the message, held until finish(); pass: given up, passing */
	struct delivery_hold hold;
	bool pass;
	struct dkim_check *check;
	bool header_checked;
	void (*header_done)(void *ctx, struct dkim_check *check);
	void *ctx;
};

/* Every field of the held header, however many (the forged fields to take
   out may come after a thousand others). */
static const struct mime_limits all_fields = {
    .max_header_count = UINT_MAX,
    .max_field_size = SIZE_MAX,
    .max_header_size = SIZE_MAX,
};

/* Sends the held header on without the Authentication-Results fields
   bearing our authserv-id (RFC 8601 5).  Of a header cut short
   (oversize), only fields known to be complete are taken out. */
static int emit_header(struct verifier *v, char **error_r)
{
	const char *data = v->hold.header.data;
	size_t len = v->hold.header.len, from = 0;
	bool cut = v->hold.state == DELIVERY_HOLD_OVERSIZE;
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, data != NULL ? data : "", len, &all_fields);
	int rc = 0;
	for (unsigned int i = 0; i < h->count && rc == 0; i++) {
		const struct mime_header_field *fld = &h->fields[i];
		if ((cut && fld->offset + fld->size >= len) ||
		    !authres_field_is_ours(fld->name, fld->name_len, fld->value, fld->value_len,
					   v->authserv_id))
			continue;
		log_info("dkim verify qid=%s removed=authentication-results", delivery_id(v->f.delivery));
		rc = delivery_filter_output(&v->f, data + from, fld->offset - from, error_r);
		from = fld->offset + fld->size;
	}
	pool_destroy(&pool);
	if (rc == 0)
		rc = delivery_filter_output(&v->f, data + from, len - from, error_r);
	buf_free(&v->hold.header);
	return rc;
}

/* The header block is too large to check: says so, and lets the message
   pass from here on. */
static int give_up(struct verifier *v, char **error_r)
{
	struct buf ar = BUF_INIT;
	struct authres_writer w;
	authres_begin(&w, &ar, v->authserv_id);
	authres_result(&w, "dkim", "permerror", "header block too large");
	authres_end(&w);
	v->pass = true;
	int rc = delivery_filter_output(&v->f, ar.data, ar.len, error_r);
	buf_free(&ar);
	return rc < 0 ? -1 : emit_header(v, error_r);
}

static void check_header(struct verifier *v, bool tell)
{
	if (v->header_checked)
		return;
	v->header_checked = true;
	dkim_check_header(v->check, v->hold.header.data != NULL ? v->hold.header.data : "",
			  v->hold.header.len);
	if (tell && v->header_done != NULL)
		v->header_done(v->ctx, v->check);
}

static int verifier_write(struct delivery_filter *f, const void *data, size_t len, char **error_r)
{
	struct verifier *v = (struct verifier *)f;
	const char *p = data;
	if (!v->pass && v->hold.state == DELIVERY_HOLD_HEADER) {
		size_t n = delivery_hold_header(&v->hold, p, len);
		p += n;
		len -= n;
		if (v->hold.state == DELIVERY_HOLD_OVERSIZE && give_up(v, error_r) < 0)
			return -1;
		if (v->hold.state == DELIVERY_HOLD_BODY)
			check_header(v, true);
	}
	if (v->pass)
		return delivery_filter_output(f, p, len, error_r);
	if (len == 0)
		return 0;
	dkim_check_body(v->check, p, len);
	return delivery_hold_body(&v->hold, f, p, len, error_r);
}

void delivery_dkim_verifier_eof(struct delivery_filter *f)
{
	struct verifier *v = (struct verifier *)f;
	if (!v->pass)
		check_header(v, true);
}

static void log_results(struct verifier *v)
{
	size_t n;
	unsigned int unchecked;
	const struct dkim_check_result *r = dkim_check_results(v->check, &n, &unchecked);
	for (size_t i = 0; i < n; i++) {
		char auid[300] = "";
		if (r[i].auid != NULL)
			log_printable(auid, sizeof(auid), r[i].auid, strlen(r[i].auid));
		log_info("dkim verify qid=%s result=%s d=%s s=%s i=%s%s%s%s", delivery_id(v->f.delivery),
			 dkim_result_name(r[i].result), r[i].domain != NULL ? r[i].domain : "-",
			 r[i].selector != NULL ? r[i].selector : "-", auid[0] != '\0' ? auid : "-",
			 r[i].reason != NULL ? " reason=\"" : "", r[i].reason != NULL ? r[i].reason : "",
			 r[i].reason != NULL ? "\"" : "");
	}
	if (unchecked > 0)
		log_info("dkim verify qid=%s unchecked=%u", delivery_id(v->f.delivery), unchecked);
}

static int verifier_finish(struct delivery_filter *f, char **error_r)
{
	struct verifier *v = (struct verifier *)f;
	if (v->pass)
		return 0;
	check_header(v, false); /* no lookups now: its keys are temperrors */
	dkim_check_finish(v->check);
	log_results(v);
	struct buf ar = BUF_INIT;
	dkim_check_authres(v->check, &ar, v->authserv_id);
	int rc = delivery_filter_output(f, ar.data, ar.len, error_r);
	buf_free(&ar);
	if (rc == 0)
		rc = emit_header(v, error_r);
	if (rc == 0)
		rc = delivery_hold_release(&v->hold, f, error_r);
	return rc;
}

static void verifier_free(struct delivery_filter *f)
{
	struct verifier *v = (struct verifier *)f;
	dkim_check_free(&v->check);
	delivery_hold_free(&v->hold);
	free(v->authserv_id);
	free(v);
}

struct delivery_filter *delivery_dkim_verifier(const char *authserv_id,
					       void (*header_done)(void *ctx, struct dkim_check *check),
					       void *ctx)
{
	struct verifier *v = xcalloc(1, sizeof(*v));
	v->f.name = "dkim-verify";
	v->f.write = verifier_write;
	v->f.finish = verifier_finish;
	v->f.free = verifier_free;
	v->authserv_id = xstrdup(authserv_id);
	delivery_hold_init(&v->hold);
	v->check = dkim_check_new((int64_t)time(NULL));
	v->header_done = header_done;
	v->ctx = ctx;
	return &v->f;
}
