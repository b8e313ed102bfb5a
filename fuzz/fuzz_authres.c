/* Fuzzes the inbound DKIM check's parsers (src/trust/authres.c,
   src/trust/dkim_check.c): the input is taken as the value of an
   Authentication-Results field that came with a message, and as a
   message (header block, then body) whose DKIM-Signature fields are
   checked, with every key answered by a record cut from the input; and
   as a key record, and as the DER of an RSA key inside one (the
   SubjectPublicKeyInfo and RSAPublicKey walk of dkim_pubkey.c).  Checks
   that
   - an authserv-id read from the input, written back as a value, reads
     back the same (when it holds only printable ASCII);
   - the field the checker writes is one clean field: a single name, lines
     ended by CRLF and continued by a tab, no other control character, and
     its authserv-id reads back as ours;
   - at most DKIM_CHECK_MAX_SIGNATURES results, each key name a valid DNS
     name of at most 253 octets, every result one of the six;
   - the body hashes do not depend on how the body is cut into pieces;
   - a key record gives a key with DKIM_PASS, or no key with a verdict
     (permerror or policy) and a reason; an RSA key read has 1024 to
     DKIM_RSA_MAX_BITS bits. */
#include "lib/buf.h"
#include "mime/base64.h"
#include "trust/authres.h"
#include "trust/dkim_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_id(const char *text, size_t len)
{
	struct buf id = BUF_INIT, again = BUF_INIT, written = BUF_INIT;
	if (authres_parse_id(text, len, &id) < 0) {
		if (id.len != 0)
			abort();
		buf_free(&id);
		return;
	}
	bool printable = id.len > 0;
	for (size_t i = 0; i < id.len; i++)
		printable =
		    printable && (unsigned char)id.data[i] >= 0x20 && (unsigned char)id.data[i] < 0x7f;
	if (printable) {
		authres_append_value(&written, id.data);
		if (authres_parse_id(written.data, written.len, &again) < 0 || again.len != id.len ||
		    memcmp(again.data, id.data, id.len) != 0)
			abort();
	}
	buf_free(&id);
	buf_free(&again);
	buf_free(&written);
}

/* One field: "Name: ..." with CRLF line ends, continuation lines starting
   with a tab, nothing else below 0x20. */
static void check_field(const struct buf *f)
{
	if (f->len < 2 || memcmp(f->data + f->len - 2, "\r\n", 2) != 0)
		abort();
	for (size_t i = 0; i < f->len; i++) {
		unsigned char c = (unsigned char)f->data[i];
		if (c == '\r' && (i + 1 >= f->len || f->data[i + 1] != '\n'))
			abort();
		if (c == '\n' && i + 1 < f->len && f->data[i + 1] != '\t')
			abort();
		if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c >= 0x7f)
			abort();
	}
	const char *colon = memchr(f->data, ':', f->len);
	if (colon == NULL || !authres_field_is_ours(f->data, (size_t)(colon - f->data), colon + 1,
						    f->len - (size_t)(colon + 1 - f->data), "mx.example.org"))
		abort();
}

static void answer(struct dkim_check *c, const char *text, size_t len)
{
	for (size_t i = 0; i < dkim_check_key_count(c); i++) {
		const char *name = dkim_check_key_name(c, i);
		size_t nl = strlen(name);
		if (nl == 0 || nl > 253 || strstr(name, "._domainkey.") == NULL)
			abort();
		/* the key record: the input from its first ';' on, or none */
		const char *semi = memchr(text, ';', len);
		if (i % 3 == 2 || semi == NULL) {
			dkim_check_key(c, i, i % 3 == 2 ? DKIM_KEY_TEMPFAIL : DKIM_KEY_NONE, NULL, NULL, 0);
			continue;
		}
		const char *records[] = {semi + 1};
		size_t lens[] = {len - (size_t)(semi + 1 - text)};
		dkim_check_key(c, i, DKIM_KEY_FOUND, records, lens, 1);
	}
}

/* Checks the message in one piece or in pieces of step bytes. */
static void run_check(const char *text, size_t len, size_t hlen, size_t step, struct buf *ar)
{
	struct dkim_check *c = dkim_check_new(1000000000);
	dkim_check_header(c, text, hlen);
	answer(c, text, len);
	for (size_t i = hlen; i < len; i += step)
		dkim_check_body(c, text + i, len - i < step ? len - i : step);
	dkim_check_finish(c);
	size_t n;
	const struct dkim_check_result *r = dkim_check_results(c, &n, NULL);
	if (n > DKIM_CHECK_MAX_SIGNATURES)
		abort();
	for (size_t i = 0; i < n; i++)
		if (r[i].result > DKIM_PERMERROR || (r[i].result == DKIM_PASS) != (r[i].reason == NULL))
			abort();
	dkim_check_authres(c, ar, "mx.example.org");
	dkim_check_free(&c);
}

static void check_pubkey(const char *record, size_t len)
{
	struct dkim_pubkey pk;
	dkim_pubkey_parse(&pk, record, len);
	if (pk.key != NULL) {
		if (pk.result != DKIM_PASS || pk.error != NULL)
			abort();
		if (pk.alg == DKIM_ALG_RSA_SHA256 &&
		    (EVP_PKEY_get_bits(pk.key) < 1024 || EVP_PKEY_get_bits(pk.key) > DKIM_RSA_MAX_BITS))
			abort();
	} else if ((pk.result != DKIM_PERMERROR && pk.result != DKIM_POLICY) || pk.error == NULL) {
		abort();
	}
	dkim_pubkey_free(&pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	const char *text = (const char *)data;
	check_id(text, size);
	check_pubkey(text, size);
	struct buf record = BUF_INIT;
	buf_append_str(&record, "v=DKIM1; k=rsa; p=");
	base64_encode(&record, data, size);
	check_pubkey(record.data, record.len);
	buf_free(&record);

	/* the header block ends with the first empty line (or the input) */
	const char *end = memmem(text, size, "\r\n\r\n", 4);
	size_t hlen = end != NULL ? (size_t)(end + 4 - text) : size;
	struct buf whole = BUF_INIT, pieces = BUF_INIT;
	run_check(text, size, hlen, size + 1, &whole);
	run_check(text, size, hlen, 7, &pieces);
	check_field(&whole);
	if (whole.len != pieces.len || memcmp(whole.data, pieces.data, whole.len) != 0)
		abort();
	buf_free(&whole);
	buf_free(&pieces);
	return 0;
}
