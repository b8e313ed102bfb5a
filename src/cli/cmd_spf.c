/* `postoffice spf`: what SPF (RFC 7208) says about a client address
   sending for a domain, through the configured resolver ([dns] resolver):
   the same evaluation the SMTP server runs. */
#include "cli/cli.h"
#include "dns/dns.h"
#include "lib/xalloc.h"
#include "trust/spf_async.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

static void spf_usage(FILE *out)
{
	fprintf(out, "usage: postoffice spf IP SENDER [HELO]\n\n"
		     "Evaluates the SPF policy of SENDER's domain (RFC 7208 check_host) for a\n"
		     "client at IP that said HELO (SENDER \"\" checks the HELO name alone) and\n"
		     "prints the result (pass, fail, softfail, neutral, none, temperror or\n"
		     "permerror) and, for a fail, the domain's explanation.  Exit status 0\n"
		     "for pass, 1 otherwise, 2 on a usage error.\n");
}

struct run {
	struct event_base *base;
	bool done;
};

static void done(void *ctx, struct spf *spf)
{
	struct run *r = ctx;
	r->done = true;
	event_base_loopbreak(r->base);
}

static int spf_run_cmd(struct config *cfg, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		spf_usage(stdout);
		return 0;
	}
	if (argc < 3 || argc > 4) {
		spf_usage(stderr);
		return 2;
	}
	const char *helo = argc == 4 ? argv[3] : "";
	struct spf *spf = spf_new(argv[1], argv[2], helo, cfg->hostname);
	if (spf == NULL) {
		fprintf(stderr, "postoffice spf: '%s' is not an IP address\n", argv[1]);
		return 2;
	}
	struct run r = {event_base_new(), false};
	char *error = NULL;
	struct dns_resolver *res = dns_resolver_new(r.base, cfg->dns_resolver, &error);
	if (res == NULL) {
		fprintf(stderr, "postoffice spf: %s\n", error);
		free(error);
		spf_free(&spf);
		event_base_free(r.base);
		return 1;
	}
	struct spf_async *a = spf_async_start(r.base, res, spf, 20000, done, &r);
	while (!r.done)
		event_base_dispatch(r.base);
	const char *detail;
	enum spf_result result = spf_result(spf, &detail);
	printf("%s%s%s\n", spf_result_name(result), detail != NULL ? " " : "", detail != NULL ? detail : "");
	spf_async_free(&a);
	dns_resolver_free(&res);
	spf_free(&spf);
	event_base_free(r.base);
	return result == SPF_PASS ? 0 : 1;
}

const struct cli_command cmd_spf = {
    "spf", "IP SENDER [HELO]", "evaluate a domain's SPF policy for a client address", spf_run_cmd, spf_usage,
};
