/* Fuzzes the DKIM parsers and canonicalization (src/trust/dkim*.c): the
   input is taken as a tag list, as a DKIM-Signature field, as a key record
   for a fixed signature, as a header field to canonicalize and as a body to
   hash.  Checks that
   - parsed tags point inside the input, with valid names and no duplicates;
   - a signature that parses has d=, s=, a From in h= and a 32-byte bh=;
   - relaxed header canonicalization is idempotent and lowercases the name;
   - the body hash does not depend on how the body is cut into pieces. */
#include "lib/xalloc.h"
#include "trust/dkim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tags(const char *text, size_t len)
{
	struct dkim_tags tags;
	const char *error = NULL;
	if (dkim_tags_parse(&tags, text, len, &error) < 0) {
		if (error == NULL)
			abort();
		return;
	}
	for (unsigned int i = 0; i < tags.count; i++) {
		const struct dkim_tag *t = &tags.tag[i];
		if (t->name < text || t->name + t->name_len > text + len || t->name_len == 0)
			abort();
		if (t->value < text || t->value + t->value_len > text + len)
			abort();
		if (memchr(t->value, ';', t->value_len) != NULL)
			abort();
		for (unsigned int j = 0; j < i; j++)
			if (tags.tag[j].name_len == t->name_len &&
			    !memcmp(tags.tag[j].name, t->name, t->name_len))
				abort();
	}
}

static void body_hash(const char *text, size_t len, size_t step, enum dkim_canon c, unsigned char out[32])
{
	struct dkim_body_hash *bh = dkim_body_hash_new(c);
	for (size_t i = 0; i < len; i += step)
		dkim_body_hash_update(bh, text + i, len - i < step ? len - i : step);
	dkim_body_hash_final(bh, out);
	dkim_body_hash_free(&bh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	check_tags(text, size);

	struct buf field = BUF_INIT;
	buf_append_str(&field, "DKIM-Signature: ");
	buf_append(&field, text, size);
	struct dkim_signature sig;
	const char *error = NULL;
	if (dkim_signature_parse(&sig, field.data, field.len, 1000000, &error) == DKIM_PASS) {
		if (sig.domain == NULL || sig.selector == NULL || sig.bh.len != 32 || sig.nheaders == 0)
			abort();
		unsigned char bh[32];
		memcpy(bh, sig.bh.data, 32);
		char *record = xstrndup(text, size);
		dkim_verify(&sig, "From: a@b\r\n\r\n", 13, bh, record, &error);
		free(record);
		dkim_signature_free(&sig);
	}
	buf_free(&field);

	struct buf c1 = BUF_INIT, c2 = BUF_INIT;
	dkim_canon_header(&c1, DKIM_CANON_RELAXED, text, size);
	dkim_canon_header(&c2, DKIM_CANON_RELAXED, c1.data, c1.len);
	if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len) != 0)
		abort();
	for (size_t i = 0; i < c1.len && c1.data[i] != ':'; i++)
		if (c1.data[i] >= 'A' && c1.data[i] <= 'Z')
			abort();
	buf_free(&c1);
	buf_free(&c2);

	for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
		unsigned char whole[32], pieces[32];
		body_hash(text, size, size + 1, (enum dkim_canon)c, whole);
		body_hash(text, size, 3, (enum dkim_canon)c, pieces);
		if (memcmp(whole, pieces, 32) != 0)
			abort();
	}
	return 0;
}
