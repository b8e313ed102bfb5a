#ifndef CLI_IMAP_CLIENT_H
#define CLI_IMAP_CLIENT_H
/* The IMAP client connection of `postoffice fetch` (RFC 3501) on
   cli/client_conn.h, as cli/pop3_client.h: it resolves, connects and runs
   TLS, implicit (IMAPS) or after STARTTLS (RFC 3501 6.2.1).

   Responses are read whole, literals included (RFC 3501 4.3: a line that
   ends in {n} is followed by n raw bytes and then the rest of the
   response), and parsed into values: atoms, strings (quoted or literal),
   NIL and parenthesized lists, items in any order.  Every buffer is
   bounded: a line by IMAP_CLIENT_LINE_MAX, the text of a response outside
   its literals by IMAP_CLIENT_RESPONSE_MAX, a literal (and the literals of
   one response together) by the literal_max setting; a server that passes
   a bound, or sends a response that does not parse, ends the session with
   an error before the response reaches the caller.

   One command at a time, with a tag of the client's.  Untagged responses
   go to the session's untagged callback whenever they come (also while no
   command is waiting, as during IDLE); a continuation request ("+") and the
   command's tagged completion go to the command's callback.  The caller
   runs the event loop; callbacks come from the loop, never from inside the
   call that asked for them; imap_client_free() must not be called from a
   callback. */
#include "cli/client_conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct imap_client;

#define IMAP_CLIENT_LINE_MAX 8192
#define IMAP_CLIENT_RESPONSE_MAX 65536
/* Literals in one response (RFC 3501 allows any number; a FETCH of BODY[]
   has one). */
#define IMAP_CLIENT_LITERALS_MAX 64

struct imap_client_settings {
	struct client_conn_settings conn; /* implicit_tls: IMAPS */
	uint64_t literal_max;             /* the largest literal accepted (a message) */
};

enum imap_value_type {
	IMAP_VALUE_ATOM,   /* also numbers and BODY[...]<n>: data as sent */
	IMAP_VALUE_STRING, /* quoted (unescaped) or literal */
	IMAP_VALUE_NIL,
	IMAP_VALUE_LIST,
};

struct imap_value {
	enum imap_value_type type;
	const char *data; /* ATOM, STRING: NUL-terminated (a literal may hold NULs) */
	size_t len;
	const struct imap_value *items; /* LIST */
	size_t count;
};

enum imap_response_kind {
	IMAP_RESPONSE_STATUS,   /* OK, NO, BAD, BYE, PREAUTH (tagged or not) */
	IMAP_RESPONSE_DATA,     /* untagged data: "* 3 EXISTS", "* CAPABILITY ..." */
	IMAP_RESPONSE_CONTINUE, /* "+ text": the server waits for more of the command */
};

struct imap_response {
	enum imap_response_kind kind;
	bool tagged;      /* the completion of the command waiting */
	const char *name; /* STATUS: "OK" etc.; DATA: "EXISTS", "FETCH", "CAPABILITY" (uppercase) */
	bool has_number;  /* DATA: "* N NAME" */
	uint32_t number;
	const char *code;              /* STATUS: the response code inside [] (RFC 3501 7.1), or NULL */
	const char *text;              /* STATUS, CONTINUE: the human-readable text */
	const struct imap_value *args; /* DATA: what follows the name */
	size_t nargs;
};

typedef void imap_client_response_callback(struct imap_client *c, const struct imap_response *r, void *ctx);
/* The session failed and is over: error is a complete sentence naming the
   server or what it sent ("cannot connect to HOST:PORT: ...", "TLS
   handshake with HOST:PORT failed: ...", "connection closed by the server
   during FETCH", "the server sent a literal of N bytes, over the limit of
   M bytes", "malformed response from the server ...").  Called at most
   once; no other callback follows. */
typedef void imap_client_fail_callback(struct imap_client *c, const char *error, void *ctx);

/* Resolves, connects (and with implicit_tls completes the handshake), then
   calls greeting with the server's greeting (an untagged OK, PREAUTH or
   BYE).  untagged receives every later untagged response.  settings'
   strings must stay valid for the client's life. */
struct imap_client *imap_client_connect(struct event_base *base, const struct imap_client_settings *settings,
					imap_client_response_callback *greeting,
					imap_client_response_callback *untagged,
					imap_client_fail_callback *fail, void *ctx);
/* Sends "TAG command" (CRLF is added; our formatted copy, which may hold a
   password, is wiped once the io has it).  cb receives continuation
   requests and then the tagged completion.  One command at a time (a
   second one while the first waits is a bug: abort).  Does nothing once
   the session failed. */
void imap_client_command(struct imap_client *c, imap_client_response_callback *cb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends a line that continues the command waiting (a SASL response, IDLE's
   DONE), wiped like a command. */
void imap_client_continue(struct imap_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After the tagged OK to STARTTLS: discards what the server sent in plain
   text after it (RFC 3501 6.2.1), starts the handshake and calls done once
   it completed. */
void imap_client_start_tls(struct imap_client *c, void (*done)(struct imap_client *c, void *ctx));
/* Changes the idle timeout (seconds), e.g. around IDLE. */
void imap_client_set_timeout(struct imap_client *c, int seconds);
/* Closes the connection at once and frees everything. */
void imap_client_free(struct imap_client **c);

/* ---- reading values ---- */

/* The item following the atom key (case-insensitive) in a FETCH list of
   name/value pairs (RFC 3501 7.4.2: "UID 7 BODY[] {12}..." in any order),
   or NULL. */
const struct imap_value *imap_value_item(const struct imap_value *list, const char *key);
/* A number (nz-number or number, RFC 3501 9) into *n_r: 0, or -1. */
int imap_value_uint32(const struct imap_value *v, uint32_t *n_r);
#endif
