/* Admin sessions, the session cookie, CSRF tokens and the login
   (admin_private.h).  A session is 32 random bytes in an HttpOnly,
   SameSite=Strict cookie (Secure over HTTPS: a Secure cookie is not sent
   back over plain HTTP, so it is set only with [admin] tls = yes); each
   session has its own CSRF token, put in every form and checked on every
   POST.  The login form gets a session of its own before login (so the
   login POST has a token too), replaced by a fresh one when the password
   is right (no fixation).  Password checks run on a job thread; failures
   go through the shared failed-login table like mail logins do. */
#include "server/admin_private.h"
#include "auth/auth_check.h"
#include "auth/password.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>

#define LOGIN_IDLE (15 * 60)   /* a login form's session */
#define SESSION_IDLE (60 * 60) /* a logged-in session without requests */
#define SESSION_MAX (12 * 60 * 60)

static int64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void new_token(char out[ADMIN_TOKEN_HEX + 1])
{
	unsigned char raw[ADMIN_TOKEN_HEX / 2];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		log_fatal("getrandom() failed: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static bool token_equal(const char *a, const char *b)
{
	return b != NULL && strlen(b) == ADMIN_TOKEN_HEX && CRYPTO_memcmp(a, b, ADMIN_TOKEN_HEX) == 0;
}

static bool session_expired(const struct admin_session *s, int64_t now)
{
	if (s->user[0] == '\0')
		return now - s->used > LOGIN_IDLE;
	return now - s->used > SESSION_IDLE || now - s->created > SESSION_MAX;
}

/* A free slot (or the least recently used one). */
static struct admin_session *session_new(struct admin *a, const char *user)
{
	int64_t now = now_s();
	struct admin_session *slot = NULL;
	for (size_t i = 0; i < ADMIN_SESSIONS; i++) {
		struct admin_session *s = &a->sessions[i];
		if (s->id[0] == '\0' || session_expired(s, now)) {
			slot = s;
			break;
		}
		if (slot == NULL || s->used < slot->used)
			slot = s;
	}
	memset(slot, 0, sizeof(*slot));
	new_token(slot->id);
	new_token(slot->csrf);
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	slot->created = slot->used = now;
	return slot;
}

static void session_drop(struct admin_session *s)
{
	explicit_bzero(s, sizeof(*s));
}

static char *cookie_header(const struct admin *a, const struct admin_session *s)
{
	return xasprintf(ADMIN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", s != NULL ? s->id : "",
			 a->tls != NULL ? "; Secure" : "");
}

/* The value of our cookie in a Cookie: header ("a=b; po_admin=..."). */
static bool cookie_value(const char *header, char out[ADMIN_TOKEN_HEX + 1])
{
	const size_t n = strlen(ADMIN_COOKIE);
	for (const char *p = header; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == n + 1 + ADMIN_TOKEN_HEX && !strncmp(p, ADMIN_COOKIE, n) && p[n] == '=') {
			memcpy(out, p + n + 1, ADMIN_TOKEN_HEX);
			out[ADMIN_TOKEN_HEX] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

/* The hash of admin user from DATA_DIR/admins (the process works in
   the data directory), read anew each time; NULL when there is none. */
static char *account_hash(const char *user)
{
	int dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct admin_accounts accounts;
	char *error = NULL, *hash = NULL;
	if (dirfd >= 0 && admin_accounts_load(dirfd, &accounts, &error) == 0) {
		const struct admin_account *acct = admin_accounts_find(&accounts, user);
		hash = acct != NULL ? xstrdup(acct->hash) : NULL;
		admin_accounts_free(&accounts);
	} else if (error != NULL) {
		log_error("admin accounts error=\"%s\"", error);
		free(error);
	}
	if (dirfd >= 0)
		close(dirfd);
	return hash;
}

/* A logged-in user must still have an account (`admin del` ends it). */
static bool account_exists(const char *user)
{
	char *hash = account_hash(user);
	bool found = hash != NULL;
	free(hash);
	return found;
}

struct admin_session *admin_session_find(struct admin *a, struct evhttp_request *req)
{
	const char *header = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	char id[ADMIN_TOKEN_HEX + 1];
	if (header == NULL || !cookie_value(header, id))
		return NULL;
	int64_t now = now_s();
	for (size_t i = 0; i < ADMIN_SESSIONS; i++) {
		struct admin_session *s = &a->sessions[i];
		if (s->id[0] == '\0' || !token_equal(s->id, id))
			continue;
		if (session_expired(s, now) || (s->user[0] != '\0' && !account_exists(s->user))) {
			session_drop(s);
			return NULL;
		}
		s->used = now;
		return s;
	}
	return NULL;
}

bool admin_logged_in(const struct admin_request *r)
{
	return r->session != NULL && r->session->user[0] != '\0';
}

bool admin_csrf_ok(const struct admin_request *r)
{
	if (r->session == NULL)
		return false;
	char *token = form_field(r->body.data != NULL ? r->body.data : "", r->body.len, "csrf");
	bool ok = token_equal(r->session->csrf, token);
	free(token);
	return ok;
}

/* ---- the login form ---- */

/* The form, with a session of its own (made, with its cookie, when the
   request has none). */
static void login_form(struct admin_request *r, int code, const char *message)
{
	char *cookie = NULL;
	if (r->session == NULL) {
		r->session = session_new(r->a, "");
		cookie = cookie_header(r->a, r->session);
	}
	struct buf page = BUF_INIT;
	html_begin(&page, r, "Log in", 0);
	buf_append_str(&page, "<section class=\"login\"><h2>Log in</h2>");
	if (message != NULL) {
		buf_append_str(&page, "<p class=\"error\" id=\"login-error\">");
		html_escape(&page, message);
		buf_append_str(&page, "</p>");
	}
	buf_append_str(&page, "<form method=\"post\" action=\"/login\">"
			      "<input type=\"hidden\" name=\"csrf\" value=\"");
	html_escape(&page, r->session->csrf);
	buf_append_str(&page,
		       "\"><label>Name <input name=\"user\" id=\"user\" autocomplete=\"username\" "
		       "required></label><label>Password <input type=\"password\" name=\"password\" "
		       "id=\"password\" autocomplete=\"current-password\" required></label>"
		       "<button type=\"submit\" id=\"login\">Log in</button></form>"
		       "<p class=\"note\">Accounts: <code>postoffice admin add NAME</code></p></section>");
	html_end(&page);
	admin_reply_html(r, code, &page, cookie);
	buf_free(&page);
	free(cookie);
}

void admin_login_page(struct admin_request *r)
{
	if (admin_logged_in(r)) {
		admin_reply_redirect(r, "/", NULL);
		return;
	}
	login_form(r, 200, NULL);
}

struct login_job {
	struct admin_request *r;
	char session_id[ADMIN_TOKEN_HEX + 1]; /* the form's session */
	struct auth_check check;
	char name[ADMIN_NAME_MAX + 1];
	bool refused;
	struct event *delay;
};

/* The slot of the session called id, if it is still there. */
static struct admin_session *session_by_id(struct admin *a, const char *id)
{
	for (size_t i = 0; i < ADMIN_SESSIONS; i++)
		if (a->sessions[i].id[0] != '\0' && token_equal(a->sessions[i].id, id))
			return &a->sessions[i];
	return NULL;
}

static void login_finish(struct login_job *job)
{
	struct admin_request *r = job->r;
	/* The form's session may have been given to someone else while the
	   password was checked (256 slots, least recently used first). */
	r->session = session_by_id(r->a, job->session_id);
	if (job->check.ok) {
		log_info("admin login ip=%s user=%s result=ok", r->ip, job->name);
		/* A fresh session: the one the form came with is dropped. */
		if (r->session != NULL)
			session_drop(r->session);
		r->session = session_new(r->a, job->name);
		char *cookie = cookie_header(r->a, r->session);
		admin_reply_redirect(r, "/", cookie);
		free(cookie);
	} else if (job->refused) {
		login_form(r, 429, "Too many failed logins from your address: try again later");
	} else {
		login_form(r, 403, "Wrong name or password");
	}
	if (job->delay != NULL)
		event_free(job->delay);
	auth_check_clear(&job->check);
	free(job);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
	login_finish(arg);
}

/* A failure or refusal is answered after the penalty's delay. */
static void login_answer(struct login_job *job)
{
	if (job->check.ok || job->check.delay_ms <= 0) {
		login_finish(job);
		return;
	}
	job->delay = evtimer_new(job->r->a->base, delay_cb, job);
	struct timeval tv = {job->check.delay_ms / 1000, (job->check.delay_ms % 1000) * 1000};
	evtimer_add(job->delay, &tv);
}

static void login_work(void *arg)
{
	struct login_job *job = arg;
	auth_check_verify(&job->check);
}

static void login_done(void *arg)
{
	struct login_job *job = arg;
	job->refused = auth_check_refused(&job->check);
	if (job->refused)
		log_info("admin login-refused ip=%s user=%s reason=%s", job->r->ip, job->name,
			 auth_penalty_verdict_name(job->check.verdict));
	else if (!job->check.ok)
		log_info("admin login ip=%s user=%s result=fail", job->r->ip, job->name);
	login_answer(job);
}

/* Fills job->check as auth_check_prepare() does for mail users, from
   the admin accounts: the penalty table sees "admin:NAME". */
static void login_prepare(struct login_job *job, const char *user, const char *password)
{
	struct auth_check *check = &job->check;
	snprintf(job->name, sizeof(job->name), "%s", admin_account_name_valid(user) ? user : "-");
	check->user = xasprintf("admin:%s", job->name);
	check->password = xstrdup(password);
	check->hash = admin_account_name_valid(user) ? account_hash(user) : NULL;
}

void admin_login_post(struct admin_request *r)
{
	if (r->session == NULL || !admin_csrf_ok(r)) {
		log_info("admin refused ip=%s path=/login reason=csrf", r->ip);
		admin_reply_error(r, 403, "Missing or invalid CSRF token: reload the login page");
		return;
	}
	char *user = form_field(r->body.data, r->body.len, "user");
	char *password = form_field(r->body.data, r->body.len, "password");
	struct login_job *job = xcalloc(1, sizeof(*job));
	job->r = r;
	memcpy(job->session_id, r->session->id, sizeof(job->session_id));
	login_prepare(job, user != NULL ? user : "", password != NULL ? password : "");
	free(user);
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (auth_check_penalty(&job->check, r->a->penalty, r->a->cfg, r->ip) < 0) {
		log_info("admin login-refused ip=%s user=%s reason=%s", r->ip, job->name,
			 auth_penalty_verdict_name(job->check.verdict));
		job->refused = true;
		login_answer(job);
		return;
	}
	jobs_submit(login_work, login_done, job);
}

void admin_logout_post(struct admin_request *r)
{
	if (!admin_csrf_ok(r)) {
		admin_reply_error(r, 403, "Missing or invalid CSRF token");
		return;
	}
	log_info("admin logout ip=%s user=%s", r->ip, r->session->user);
	session_drop(r->session);
	r->session = NULL;
	char *cookie = xasprintf(ADMIN_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
				 r->a->tls != NULL ? "; Secure" : "");
	admin_reply_redirect(r, "/login", cookie);
	free(cookie);
}
