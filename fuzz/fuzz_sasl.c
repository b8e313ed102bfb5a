/* libFuzzer target for the SASL server (src/auth/sasl.c).  The first byte
   picks the mechanism (bit 0: PLAIN/LOGIN), whether the first step carries
   no initial response (bit 1), and whether each line is base64-encoded
   before it is fed (bit 2), so that the fuzzer reaches the PLAIN/LOGIN
   parsers directly instead of spending its time on invalid base64.  The
   rest is split at '\n' into client lines. */
#include "auth/sasl.h"
#include "lib/buf.h"
#include "mime/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int feed(struct sasl_server *sasl, const char *line, size_t len, int encode)
{
	struct buf enc = BUF_INIT;
	if (encode && line != NULL) {
		base64_encode(&enc, line, len);
		line = buf_cstr(&enc);
		len = enc.len;
	}
	char *challenge = NULL;
	const char *error = NULL;
	int rc = sasl_server_step(sasl, line, len, &challenge, &error);
	if (rc == 0 && challenge == NULL)
		abort();
	if (rc < 0 && (error == NULL || challenge != NULL))
		abort();
	if (rc == 1 && (sasl_server_user(sasl) == NULL || sasl_server_password(sasl) == NULL ||
			sasl_server_user(sasl)[0] == '\0' || sasl_server_password(sasl)[0] == '\0'))
		abort();
	free(challenge);
	buf_free(&enc);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	struct sasl_server *sasl = sasl_server_new((mode & 1) ? SASL_MECH_LOGIN : SASL_MECH_PLAIN);
	int rc = 0;
	if (mode & 2)
		rc = feed(sasl, NULL, 0, 0);
	while (rc == 0 && p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		rc = feed(sasl, p, len, mode & 4);
		p += len + 1;
	}
	/* A finished exchange refuses further steps. */
	if (rc != 0 && feed(sasl, "", 0, 0) != -1)
		abort();
	sasl_server_free(&sasl);
	return 0;
}
