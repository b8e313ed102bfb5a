/* Normal forms of domains and addresses in the user database: lowercase,
   domains as A-labels (RFC 5890), local parts folded to lowercase (see the
   note in userdb.h on RFC 5321 section 2.4). */
#include "auth/userdb_private.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <idn2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5321 section 4.5.3.1: local part 64 octets, domain 255 (DNS: 253
   without the root dot), path 256 including the brackets. */
#define LOCAL_MAX 64
#define DOMAIN_MAX 253
#define ADDRESS_MAX 254

/* Checks an A-label (ASCII) domain: LDH labels of 1-63 octets, no hyphen
   at either end (RFC 1035 section 2.3.1, RFC 5321 section 4.1.2). */
static bool domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0;
	if (len == 0 || len > DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = d[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (label == 0 && c == '-')
			return false;
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		label++;
	}
	return true;
}

char *userdb_normalize_domain(const char *domain, const char **error_r)
{
	size_t len = strlen(domain);
	/* A trailing root dot names the same domain. */
	if (len > 0 && domain[len - 1] == '.')
		len--;
	char *copy = xstrndup(domain, len), *out;
	if (utf8_has_8bit(copy, len)) {
		char *ace = NULL;
		int rc = idn2_to_ascii_8z(copy, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
		free(copy);
		if (rc != IDN2_OK) {
			*error_r = "invalid internationalised domain name";
			return NULL;
		}
		out = xstrdup(ace);
		idn2_free(ace);
	} else {
		out = copy;
	}
	for (char *p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!domain_valid(out)) {
		free(out);
		*error_r = "invalid domain name";
		return NULL;
	}
	return out;
}

/* A local part as stored: printable, no spaces, quotes, '@' or controls
   (quoted local parts are not supported for local users); UTF-8 allowed
   (RFC 6531).  ASCII letters are folded.  '/' is refused and dots may
   neither lead nor repeat (RFC 5322 dot-atom), which also keeps the local
   part a safe single Maildir path component. */
static bool local_valid(const char *local, size_t len)
{
	if (len == 0 || len > LOCAL_MAX)
		return false;
	if (local[0] == '.' || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		if (c <= 0x20 || c == 0x7f || c == '@' || c == '"' || c == '\\' || c == '<' || c == '>' ||
		    c == '(' || c == ')' || c == ',' || c == ';' || c == ':' || c == '[' || c == ']' ||
		    c == '/')
			return false;
		if (c == '.' && local[i + 1] == '.')
			return false;
	}
	return true;
}

char *userdb_normalize_address(const char *address, const char **error_r)
{
	const char *at = strrchr(address, '@');
	if (at == NULL) {
		*error_r = "address has no @domain";
		return NULL;
	}
	size_t local_len = (size_t)(at - address);
	if (!local_valid(address, local_len)) {
		*error_r = local_len == 0 ? "address has an empty local part" : "invalid local part";
		return NULL;
	}
	char *domain = userdb_normalize_domain(at + 1, error_r);
	if (domain == NULL)
		return NULL;
	char *out = xasprintf("%.*s@%s", (int)local_len, address, domain);
	free(domain);
	for (size_t i = 0; i < local_len; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	if (strlen(out) > ADDRESS_MAX) {
		free(out);
		*error_r = "address too long";
		return NULL;
	}
	return out;
}

const char *userdb_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at == NULL ? address + strlen(address) : at + 1;
}
