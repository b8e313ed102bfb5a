#ifndef SMTP_SMTP_PATH_H
#define SMTP_SMTP_PATH_H
/* MAIL FROM and RCPT TO paths for the server, on the MIME library's RFC
   5321 path parser: one typed address, the domain in lowercase A-label
   form.  Source routes are parsed and ignored (RFC 5321 4.1.1.3 and
   appendix C): only the final mailbox counts, for relaying too. */
#include <stdbool.h>

struct smtp_path {
	char *address;  /* "local@domain" (local quoted when it must be),
			   "" for <>, "postmaster" for <Postmaster> */
	bool literal;   /* domain is an address literal [..] */
	bool odd_local; /* quoted local part with specials: no local user has one */
	bool route;     /* a source route was given (and ignored) */
};

/* text is what stood between '<' and '>'.  mail: the MAIL FROM rules (<>
   allowed); otherwise RCPT TO (<Postmaster> allowed).  Returns 0 or -1 with
   a static *error_r. */
int smtp_path_parse(const char *text, bool mail, bool utf8, struct smtp_path *path_r, const char **error_r);
void smtp_path_free(struct smtp_path *path);
#endif
