/* Server-side SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login)
   as a state machine, plus the client-side response builders. */
#include "auth/sasl.h"
#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/base64.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The LOGIN challenges, base64 of "Username:" and "Password:". */
#define LOGIN_CHALLENGE_USER "VXNlcm5hbWU6"
#define LOGIN_CHALLENGE_PASS "UGFzc3dvcmQ6"

enum sasl_state {
	SASL_STATE_START,
	SASL_STATE_WANT_RESPONSE, /* PLAIN: empty challenge sent */
	SASL_STATE_WANT_USER,     /* LOGIN */
	SASL_STATE_WANT_PASS,     /* LOGIN */
	SASL_STATE_DONE,
	SASL_STATE_FAILED,
};

struct sasl_server {
	enum sasl_mech mech;
	enum sasl_state state;
	char *user;
	char *password;
};

static const char *const mech_names[] = {
    [SASL_MECH_PLAIN] = "PLAIN",
    [SASL_MECH_LOGIN] = "LOGIN",
};

int sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
	for (size_t i = 0; i < N_ELEMENTS(mech_names); i++) {
		if (strcasecmp(name, mech_names[i]) == 0) {
			*mech_r = (enum sasl_mech)i;
			return 0;
		}
	}
	return -1;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
	return mech < N_ELEMENTS(mech_names) ? mech_names[mech] : "UNKNOWN";
}

struct sasl_server *sasl_server_new(enum sasl_mech mech)
{
	struct sasl_server *sasl = xcalloc(1, sizeof(*sasl));
	sasl->mech = mech;
	return sasl;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void sasl_server_free(struct sasl_server **_sasl)
{
	struct sasl_server *sasl = *_sasl;
	if (sasl == NULL)
		return;
	*_sasl = NULL;
	wipe_free(sasl->user);
	wipe_free(sasl->password);
	free(sasl);
}

const char *sasl_server_user(const struct sasl_server *sasl)
{
	return sasl->state == SASL_STATE_DONE ? sasl->user : NULL;
}

const char *sasl_server_password(const struct sasl_server *sasl)
{
	return sasl->state == SASL_STATE_DONE ? sasl->password : NULL;
}

/* Valid UTF-8 without NUL (RFC 4616 SAFE, RFC 3629). */
static bool sasl_utf8_safe(const char *s, size_t len)
{
	return memchr(s, '\0', len) == NULL && utf8_valid(s, len);
}

/* Decodes one client line into out.  "=" is an empty response (RFC 4954
   section 4).  Returns 0 or -1 with *error_r. */
static int decode_line(struct buf *out, const char *line, size_t len, const char **error_r)
{
	if (len == 1 && line[0] == '*') {
		*error_r = "cancelled";
		return -1;
	}
	if (len > BASE64_ENCODED_LEN(SASL_MAX_RESPONSE)) {
		*error_r = "response too long";
		return -1;
	}
	if (len == 0 || (len == 1 && line[0] == '='))
		return 0;
	if (base64_decode_strict(out, line, len) < 0) {
		*error_r = "invalid base64";
		return -1;
	}
	if (out->len > SASL_MAX_RESPONSE) {
		*error_r = "response too long";
		return -1;
	}
	return 0;
}

/* RFC 4616 section 2: [authzid] NUL authcid NUL passwd. */
static int plain_parse(struct sasl_server *sasl, const struct buf *msg, const char **error_r)
{
	const char *p = buf_cstr(msg), *end = p + msg->len;
	const char *nul1 = memchr(p, '\0', msg->len);
	const char *nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1)) : NULL;
	if (msg->len == 0 || nul2 == NULL) {
		*error_r = "malformed PLAIN response (missing NUL separator)";
		return -1;
	}
	if (memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL) {
		*error_r = "malformed PLAIN response (NUL in password)";
		return -1;
	}
	size_t authzid_len = (size_t)(nul1 - p), authcid_len = (size_t)(nul2 - nul1 - 1);
	size_t pass_len = (size_t)(end - nul2 - 1);
	if (authcid_len == 0) {
		*error_r = "empty user name";
		return -1;
	}
	if (authcid_len > SASL_MAX_USER || authzid_len > SASL_MAX_USER) {
		*error_r = "user name too long";
		return -1;
	}
	if (pass_len == 0) {
		*error_r = "empty password";
		return -1;
	}
	if (!sasl_utf8_safe(p, authzid_len) || !sasl_utf8_safe(nul1 + 1, authcid_len)) {
		*error_r = "user name is not valid UTF-8";
		return -1;
	}
	/* We do not support acting as another identity (no proxy users): an
	   authzid must name the authcid itself.  Addresses are case-folded
	   everywhere, so the comparison is too. */
	if (authzid_len > 0 && (authzid_len != authcid_len || strncasecmp(p, nul1 + 1, authcid_len) != 0)) {
		*error_r = "authorization identity differs from authentication identity";
		return -1;
	}
	sasl->user = xstrndup(nul1 + 1, authcid_len);
	sasl->password = xstrndup(nul2 + 1, pass_len);
	return 1;
}

/* LOGIN carries one bare string per step: the user name or password. */
static int login_field(const struct buf *msg, bool is_user, char **field_r, const char **error_r)
{
	if (msg->len == 0) {
		*error_r = is_user ? "empty user name" : "empty password";
		return -1;
	}
	if (memchr(msg->data, '\0', msg->len) != NULL) {
		*error_r = is_user ? "NUL in user name" : "NUL in password";
		return -1;
	}
	if (is_user && msg->len > SASL_MAX_USER) {
		*error_r = "user name too long";
		return -1;
	}
	if (is_user && !utf8_valid(msg->data, msg->len)) {
		*error_r = "user name is not valid UTF-8";
		return -1;
	}
	*field_r = xstrndup(msg->data, msg->len);
	return 0;
}

static int step_plain(struct sasl_server *sasl, const struct buf *msg, char **challenge_r,
		      const char **error_r)
{
	return plain_parse(sasl, msg, error_r);
}

static int step_login(struct sasl_server *sasl, const struct buf *msg, char **challenge_r,
		      const char **error_r)
{
	if (sasl->state != SASL_STATE_WANT_PASS) {
		/* START with an initial response (the user name, as some
		   clients send) or WANT_USER. */
		if (login_field(msg, true, &sasl->user, error_r) < 0)
			return -1;
		sasl->state = SASL_STATE_WANT_PASS;
		*challenge_r = xstrdup(LOGIN_CHALLENGE_PASS);
		return 0;
	}
	return login_field(msg, false, &sasl->password, error_r) < 0 ? -1 : 1;
}

/* The first step without an initial response: send the first challenge. */
static int step_first_challenge(struct sasl_server *sasl, char **challenge_r)
{
	if (sasl->mech == SASL_MECH_PLAIN) {
		/* RFC 4954 section 4: an empty challenge, "334 ". */
		sasl->state = SASL_STATE_WANT_RESPONSE;
		*challenge_r = xstrdup("");
	} else {
		sasl->state = SASL_STATE_WANT_USER;
		*challenge_r = xstrdup(LOGIN_CHALLENGE_USER);
	}
	return 0;
}

int sasl_server_step(struct sasl_server *sasl, const char *client_line, size_t len, char **challenge_r,
		     const char **error_r)
{
	*challenge_r = NULL;
	*error_r = NULL;
	if (sasl->state == SASL_STATE_DONE || sasl->state == SASL_STATE_FAILED) {
		*error_r = "authentication exchange already finished";
		return -1;
	}
	if (client_line == NULL) {
		if (sasl->state != SASL_STATE_START) {
			*error_r = "missing response";
			sasl->state = SASL_STATE_FAILED;
			return -1;
		}
		return step_first_challenge(sasl, challenge_r);
	}
	struct buf msg = BUF_INIT;
	int ret = decode_line(&msg, client_line, len, error_r);
	if (ret == 0)
		ret = sasl->mech == SASL_MECH_PLAIN ? step_plain(sasl, &msg, challenge_r, error_r)
						    : step_login(sasl, &msg, challenge_r, error_r);
	if (msg.data != NULL)
		explicit_bzero(msg.data, msg.cap);
	buf_free(&msg);
	if (ret != 0)
		sasl->state = ret > 0 ? SASL_STATE_DONE : SASL_STATE_FAILED;
	return ret;
}

/* ---- client side ---- */

char *sasl_client_plain(const char *user, const char *password)
{
	struct buf raw = BUF_INIT, out = BUF_INIT;
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, user);
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, password);
	base64_encode(&out, raw.data, raw.len);
	explicit_bzero(raw.data, raw.len);
	buf_free(&raw);
	return buf_steal(&out);
}

char *sasl_client_login_response(const char *text)
{
	struct buf out = BUF_INIT;
	base64_encode(&out, text, strlen(text));
	return buf_steal(&out);
}
