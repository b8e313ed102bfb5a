/* postoffice db init|migrate|status: the PostgreSQL schema (lib/pg_schema.h). */
#include "cli/cli.h"
#include "lib/pg_schema.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void db_usage(FILE *out)
{
	fprintf(out, "usage: postoffice [-c FILE] db init|migrate|status [--conninfo CONNINFO]\n\n"
		     "The schema of the PostgreSQL database ([postgresql] conninfo, or --conninfo).\n"
		     "  init      create the schema in an empty database\n"
		     "  migrate   apply the versions the database lacks (none: nothing happens)\n"
		     "  status    print the database's and this program's schema versions and the\n"
		     "            pending migrations\n");
}

static int db_fail(const char *what, char *error)
{
	fprintf(stderr, "postoffice db %s: %s\n", what, error);
	free(error);
	return 1;
}

static int db_status(struct pg_conn *conn)
{
	int current;
	char *error = NULL;
	if (pg_schema_current(conn, &current, &error) < 0)
		return db_fail("status", error);
	int latest = pg_schema_latest();
	printf("schema version %d, latest %d: %s\n", current, latest,
	       current == latest  ? "current"
	       : current < latest ? "migrations pending"
				  : "the database is newer than this program");
	size_t n;
	const struct pg_migration *m = pg_schema_migrations(&n);
	for (size_t i = 0; i < n; i++)
		if (m[i].version > current)
			printf("pending %d: %s\n", m[i].version, m[i].description);
	return 0;
}

static int db_migrate(struct pg_conn *conn, bool init)
{
	const char *what = init ? "init" : "migrate";
	int current, applied;
	char *error = NULL;
	if (pg_schema_current(conn, &current, &error) < 0)
		return db_fail(what, error);
	if (init && current > 0)
		return db_fail(what, xasprintf("the database already has schema version %d (postoffice db "
					       "status; postoffice db migrate upgrades it)",
					       current));
	if (pg_schema_migrate(conn, &applied, &error) < 0)
		return db_fail(what, error);
	printf("schema version %d (%d migration%s applied)\n", pg_schema_latest(), applied,
	       applied == 1 ? "" : "s");
	return 0;
}

static int db_run(struct config *cfg, int argc, char **argv)
{
	const char *action = NULL, *conninfo = cfg->pg_conninfo;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--conninfo") && i + 1 < argc)
			conninfo = argv[++i];
		else if (!strncmp(argv[i], "--conninfo=", 11))
			conninfo = argv[i] + 11;
		else if (action == NULL && argv[i][0] != '-')
			action = argv[i];
		else {
			fprintf(stderr, "postoffice db: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (action == NULL ||
	    (strcmp(action, "init") && strcmp(action, "migrate") && strcmp(action, "status"))) {
		db_usage(stderr);
		return 2;
	}
	if (conninfo[0] == '\0') {
		fprintf(stderr,
			"postoffice db %s: no database: set [postgresql] conninfo or pass --conninfo\n",
			action);
		return 1;
	}
	char *error = NULL;
	struct pg_conn *conn = pg_connect(conninfo, &error);
	if (conn == NULL)
		return db_fail(action, error);
	int rc = !strcmp(action, "status") ? db_status(conn) : db_migrate(conn, !strcmp(action, "init"));
	pg_close(&conn);
	return rc;
}

const struct cli_command cmd_db = {
    "db", "init|migrate|status", "create, upgrade or show the PostgreSQL schema", db_run, db_usage,
};
