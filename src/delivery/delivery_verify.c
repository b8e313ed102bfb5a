/* The verifier of inbound mail, a delivery filter (see delivery_verify.h). */
#include "delivery/delivery_verify.h"
#include "delivery/delivery_hold.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "store/store.h"
#include "trust/authres.h"
#include "trust/inbound.h"

#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

struct verifier {
	struct delivery_filter f;
	char *authserv_id;
	/* the message, held until finish(); pass: given up, passing */
	struct delivery_hold hold;
	bool pass;
	struct trust_inbound *ti; /* the caller's */
	bool header_checked;
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

/* The header block is too large to check: says so at once (the results
   that need no header come too late for the top), and lets the message
   pass from here on. */
static int give_up(struct verifier *v, char **error_r)
{
	trust_inbound_header_too_large(v->ti);
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

static void check_header(struct verifier *v)
{
	if (v->header_checked)
		return;
	v->header_checked = true;
	trust_inbound_header(v->ti, v->hold.header.data, v->hold.header.len);
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
			check_header(v);
	}
	if (len > 0)
		trust_inbound_body(v->ti, p, len);
	if (v->pass)
		return delivery_filter_output(f, p, len, error_r);
	if (len == 0)
		return 0;
	return delivery_hold_body(&v->hold, f, p, len, error_r);
}

void delivery_verifier_eof(struct delivery_filter *f)
{
	struct verifier *v = (struct verifier *)f;
	if (!v->pass)
		check_header(v);
}

static int verifier_finish(struct delivery_filter *f, char **error_r)
{
	struct verifier *v = (struct verifier *)f;
	trust_inbound_finish(v->ti);
	trust_inbound_log(v->ti, delivery_id(f->delivery));
	const char *why;
	switch (trust_inbound_action(v->ti, NULL, NULL, &why)) {
	case TRUST_REJECT:
		*error_r = xasprintf("refused: %s", why);
		return -1;
	case TRUST_QUARANTINE:
		delivery_set_folder(f->delivery, STORE_FOLDER_JUNK);
		break;
	case TRUST_ACCEPT:
		break;
	}
	struct buf ar = BUF_INIT;
	trust_inbound_authres(v->ti, &ar, v->authserv_id);
	/* a header too large to hold was sent on already */
	int rc = v->pass ? 0 : delivery_filter_output(f, ar.data, ar.len, error_r);
	buf_free(&ar);
	if (rc == 0 && !v->pass)
		rc = emit_header(v, error_r);
	if (rc == 0 && !v->pass)
		rc = delivery_hold_release(&v->hold, f, error_r);
	return rc;
}

static void verifier_free(struct delivery_filter *f)
{
	struct verifier *v = (struct verifier *)f;
	delivery_hold_free(&v->hold);
	free(v->authserv_id);
	free(v);
}

struct delivery_filter *delivery_verifier(struct trust_inbound *ti, const char *authserv_id)
{
	struct verifier *v = xcalloc(1, sizeof(*v));
	v->f.name = "verify";
	v->f.write = verifier_write;
	v->f.finish = verifier_finish;
	v->f.free = verifier_free;
	v->authserv_id = xstrdup(authserv_id);
	delivery_hold_init(&v->hold);
	v->ti = ti;
	return &v->f;
}
