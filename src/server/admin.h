#ifndef SERVER_ADMIN_H
#define SERVER_ADMIN_H
/* The admin process: one unprivileged child of the supervisor, started
   when [admin] listen is set, serving over HTTP (libevent's evhttp; HTTPS
   with [tls] cert_file when [admin] tls = yes):
     GET /metrics       the Prometheus text format, from the shared metrics
			region (lib/metrics.h) and a walk of the spool
     GET /              the status page (HTML with SVG charts drawn here,
			no script), public with [admin] public_status = yes
     GET|POST /login, POST /logout
     GET /queue, GET /queue/ID, POST /queue/ID/flush|hold|release|delete,
     POST /queue/flush  queue management (an admin login, CSRF token)
   Why its own process: the supervisor stays root and parses nothing from
   the network; the workers' loops serve mail; the queue runner's loop
   delivers it.  Here an HTTP parser, page rendering and spool walks
   (blocking, at most every 2 s) cost neither, and the watchdog and the
   restart rules cover it like the other children.  Admin logins go
   through the shared failed-login table (auth/auth_penalty.h) under the
   account name "admin:NAME". */
#include "lib/config.h"

struct listener;
struct auth_penalty;
struct metrics;
struct heartbeat;

/* Runs the admin process on the listening socket l until SIGTERM;
   returns the exit code. */
int admin_run(const struct config *cfg, const struct listener *l, struct auth_penalty *penalty,
	      struct metrics *metrics, struct heartbeat *hb);
#endif
