#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H
/* The queue runner: delivers what is in the spool (src/queue) to other
   hosts (routes, relayhost or MX), retries with backoff, delivers what is
   local through delivery/, and bounces (RFC 3464). */
struct config;
struct heartbeat;

/* Runs its own libevent loop in the process the supervisor forks for it,
   delivering what is in DATA_DIR/queue.  Learns of new entries through
   inotify and retries everything due on SIGUSR1 or a flush request;
   returns 0 after SIGTERM once in-flight deliveries are finished or safely
   abandoned, -1 on a fatal setup error.  Its loop stamps hb every second
   (lib/heartbeat.h). */
int queue_runner_run(const struct config *cfg, struct heartbeat *hb);
#endif
