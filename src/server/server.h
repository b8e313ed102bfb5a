#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H
/* `postoffice serve`: the supervisor binds the listeners, drops privileges,
   starts the worker processes and the queue runner, restarts what dies,
   drains on SIGTERM and reloads on SIGHUP. */
#include "lib/config.h"
#include "session/session.h"

struct listener {
	enum service service;
	int fd;
	char address[80]; /* as bound, "host:port" */
};

/* Runs the server until SIGTERM; returns the exit code. */
int server_run(struct config *cfg);

/* The worker process main loop; penalty is the supervisor's shared table,
   and the loop stamps hb every second. */
struct auth_penalty;
struct heartbeat;
int worker_run(const struct config *cfg, const struct listener *listeners, int nlisteners,
	       struct auth_penalty *penalty, struct heartbeat *hb);
#endif
