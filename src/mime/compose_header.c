/* Writing header fields: RFC 2047 encoding of non-ASCII text, address
   lists with encoded display names, folding within 78 characters. */
#include "mime/compose.h"
#include "mime/address.h"
#include "mime/mime_private.h"
#include "mime/path.h"
#include "mime/rfc2047.h"
#include "lib/xalloc.h"

#include <strings.h>

static const char *const address_fields[] = {
    "From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Resent-From", "Resent-To", "Resent-Cc",
};

static size_t column(const struct buf *out)
{
	size_t i = out->len;
	while (i > 0 && out->data[i - 1] != '\n')
		i--;
	return out->len - i;
}

/* One mailbox: [phrase] <local@domain> with the domain as A-labels. */
static void write_mailbox(struct buf *out, struct pool *pool, const struct mime_address *a)
{
	struct mime_address copy = *a;
	const char *ascii, *error;
	if (a->domain != NULL && mime_domain_to_ascii(pool, a->domain, &ascii, &error) == 0)
		copy.domain = ascii;
	if (a->name != NULL && a->name[0] != '\0') {
		mime_2047_encode(out, a->name, strlen(a->name), column(out), 1);
		buf_append_str(out, " <");
		mime_address_format_spec(out, &copy);
		buf_append_char(out, '>');
	} else {
		mime_address_format_spec(out, &copy);
	}
}

/* Entries are written as " entry" (or a fold) after a comma when one is
   due; a group is "name: a, b;". */
static void write_addresses(struct buf *out, const char *value)
{
	struct pool *pool = pool_create(1024);
	struct mime_address *list = mime_address_parse(pool, value, strlen(value));
	struct buf one = BUF_INIT;
	int need_comma = 0;
	for (const struct mime_address *a = list; a != NULL; a = a->next) {
		if (a->flags & MIME_ADDR_GROUP_END) {
			buf_append_char(out, ';');
			need_comma = 1;
			continue;
		}
		buf_reset(&one);
		if (a->flags & MIME_ADDR_GROUP_START) {
			mime_2047_encode(&one, a->name ? a->name : "", a->name ? strlen(a->name) : 0, 0, 1);
			buf_append_char(&one, ':');
		} else {
			write_mailbox(&one, pool, a);
		}
		if (need_comma)
			buf_append_char(out, ',');
		if (column(out) + 1 + one.len > 78)
			buf_append_str(out, "\r\n ");
		else
			buf_append_char(out, ' ');
		buf_append(out, one.data, one.len);
		need_comma = !(a->flags & MIME_ADDR_GROUP_START);
	}
	buf_free(&one);
	pool_destroy(&pool);
}

void mime_header_write(struct buf *out, const char *name, const char *value)
{
	buf_append_str(out, name);
	buf_append_char(out, ':');
	int is_address = 0;
	for (size_t i = 0; i < N_ELEMENTS(address_fields); i++)
		is_address |= !strcasecmp(name, address_fields[i]);
	if (is_address) {
		write_addresses(out, value);
	} else {
		buf_append_char(out, ' ');
		mime_2047_encode(out, value, strlen(value), strlen(name) + 2, 0);
	}
	buf_append_str(out, "\r\n");
}
