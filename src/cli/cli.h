/*
 * cli.h - the `calderwood` subcommands and what they share: the data
 * directory, the domain (built-in queries, accounts, the demo domain unless
 * --no-demo, and --module objects) and one-line error reporting.
 *
 * Each subcommand takes argc/argv from its own name on and returns the
 * process exit code: 0 success, 1 failure (one line on stderr), 2 usage.
 */
#ifndef CW_CLI_H
#define CW_CLI_H

#include "calderwood.h"
#include "core/config.h"

struct cw_domain;

/* Options every subcommand that touches the database has. */
struct cw_cli_common {
    const char *data_dir;
    struct cw_strlist modules;
    bool no_demo;
    const char *log_level;
    const char *store;     /* --store as given, or NULL */
    const char *queue;     /* --queue of the writing subcommands, or NULL (local) */
    char store_url[4096];  /* --store, or sqlite:DATA/calderwood.db */
    char store_label[512]; /* store_url without a password, for messages */
};

/* The option-table rows of struct cw_cli_common, to put at the head of a table. */
#define CW_CLI_COMMON_OPTIONS(c)                                                                    \
    {"data",                                                                                        \
     CW_OPT_STRING,                                                                                 \
     &(c)->data_dir,                                                                                \
     "./data",                                                                                      \
     0,                                                                                             \
     0,                                                                                             \
     "DIR",                                                                                         \
     "data directory: database and secret key"},                                                    \
        {"module", CW_OPT_LIST, &(c)->modules, NULL,                                                \
         0,        0,           "PATH",        "load a domain module (.so); repeatable"},           \
        {"no-demo", CW_OPT_BOOL, &(c)->no_demo, "no",                                               \
         0,         0,           NULL,          "leave out the example domain (page views, cart)"}, \
        {"store",     CW_OPT_STRING,                                                                \
         &(c)->store, NULL,                                                                         \
         0,           0,                                                                            \
         "URL",       "sqlite:PATH (default DATA/calderwood.db) or postgres://... (a libpq URI)"},  \
    {                                                                                               \
        "log-level", CW_OPT_STRING, &(c)->log_level, "info", 0, 0, "LEVEL",                         \
            "debug, info, warn, error or off"                                                       \
    }

/* The --queue row of the subcommands that write (user, session). */
#define CW_CLI_QUEUE_OPTION(c)                                                                     \
    {                                                                                              \
        "queue", CW_OPT_STRING, &(c)->queue, "local", 0, 0, "URL",                                 \
            "local, or nats://HOST:PORT[,...] to send the command through a distributed "          \
            "deployment's JetStream queue and wait (30 s) for its outcome in the --store "         \
            "(PostgreSQL)"                                                                         \
    }

/*
 * Parses argv[1..] against opts; prints usage (and returns 0 through *exit)
 * for --help or an error line (exit 2) on bad usage. Returns true to go on.
 */
bool cw_cli_parse(const char *usage, const struct cw_option *opts, int argc, char **argv,
                  struct cw_strlist *positional, int *exit_code);

/*
 * Applies log level, makes the data directory (0700), checks --store's
 * scheme and fills c->store_url and c->store_label.
 */
int cw_cli_prepare(struct cw_cli_common *c, bool create, struct cw_error *err);

/*
 * Takes the data directory's lock, an exclusive flock on DIR/calderwood.lock
 * held until the process exits, so that one process at a time writes the
 * database: `serve`, `migrate` and, when no server runs, the administration
 * commands (cw_cli_admin) take it; reading subcommands do not. The file records the holder's pid
 * and subcommand (what) for the error a second one gets: CW_ERR_EXISTS, "DIR is in use by
 * calderwood serve (pid N): stop it before running migrate".
 */
int cw_cli_lock(const struct cw_cli_common *c, const char *what, struct cw_error *err);

/* After cw_cli_lock failed with CW_ERR_EXISTS: is the holder `calderwood serve`? */
bool cw_cli_lock_held_by_serve(const struct cw_cli_common *c);

/* The domain this process runs: builtins, accounts, demo (unless no_demo), modules. */
int cw_cli_domain(const struct cw_cli_common *c, struct cw_domain **out, struct cw_error *err);

struct cw_engine;
struct cw_outcome;

/*
 * Submits one command as the system would (coerce, prepare, queue) and waits
 * for its outcome, which *out receives (release it with cw_outcome_release).
 * Only for a process that is the engine's sole submitter and subscriber.
 * Takes ownership of data.
 */
int cw_cli_run_command(struct cw_engine *e, const struct cw_domain *d, const char *name,
                       const char *user_uuid, json_t *data, struct cw_outcome *out,
                       struct cw_error *err);

/*
 * While a describer is set, cw_cli_parse hands it the usage text and the
 * option table instead of parsing, and makes the subcommand return 0 at
 * once: how `calderwood man` reads every subcommand's own table. NULL
 * clears it. Main thread only.
 */
typedef void (*cw_cli_describe_cb)(const char *usage, const struct cw_option *opts, void *arg);
void cw_cli_set_describer(cw_cli_describe_cb cb, void *arg);

/* A subcommand as main.c lists it. */
struct cw_cli_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

/*
 * `calderwood man`: prints the manual page calderwood(1) in roff, built from
 * the subcommands' own option tables (each run with --help under a
 * describer), so it lists exactly the flags their --help does.
 */
int cw_cli_man(const struct cw_cli_subcommand *subs, size_t n);

/* `calderwood --version`: the version, the git commit and each library's run-time version. */
int cw_cli_version(void);

/*
 * Sends state ("READY=1", "STOPPING=1") to the service manager through the
 * datagram socket named by $NOTIFY_SOCKET (sd_notify's protocol, without
 * libsystemd). Does nothing without the variable; a failure is logged, not
 * fatal. Any thread.
 */
void cw_cli_notify(const char *state);

/*
 * Runs one administration command (src/admin/admin.h) on c's data: with
 * c->queue nats://..., through the queue (cw_cli_admin_queue); else sends
 * it to the server when `calderwood serve` holds the directory (waiting up
 * to 30 s for a starting server's socket), else takes the lock (recorded
 * as what) and runs it with an engine of this process (refusing a
 * PostgreSQL store that an active processor leads: cw_cli_hold_lead). c must be
 * prepared. Takes data. CW_OK when *answer (the caller's) was received,
 * whether it says ok or not; otherwise err says why no answer came.
 */
int cw_cli_admin(struct cw_cli_common *c, const char *what, const char *command, json_t *data,
                 json_t **answer, struct cw_error *err);

/*
 * cw_cli_admin's way in a distributed deployment (admin_queue.c): publishes
 * the command on the JetStream queue at c->queue (Nats-Msg-Id = its
 * idempotency key) and polls the command log of c's PostgreSQL store for
 * its outcome, 30 s at most. Takes data; *answer as cw_cli_admin's.
 */
int cw_cli_admin_queue(struct cw_cli_common *c, const char *command, json_t *data, json_t **answer,
                       struct cw_error *err);

/*
 * Before the CLI writes a PostgreSQL store itself: takes the processors'
 * lead lock on a connection of its own (*probe; close it with
 * cw_store_close, which releases the lock), so no processor becomes active
 * while the CLI writes. CW_ERR_EXISTS with a message when a processor
 * holds it: such a store is written only through the queue. A SQLite
 * store: CW_OK, *probe NULL.
 */
struct cw_store;
int cw_cli_hold_lead(struct cw_cli_common *c, struct cw_store **probe, struct cw_error *err);

/* Prints a refused answer as one line (the first failing field, or message and code); 1. */
int cw_cli_admin_refused(const json_t *answer);

/* How many events named name an ok answer holds. */
size_t cw_cli_count_events(const json_t *answer, const char *name);

struct cw_store;

/*
 * Prepares c and opens its store for reading (no lock: a server may run),
 * refusing one with migrations pending. Close *s and free *d afterwards
 * (also on failure: either may be set).
 */
int cw_cli_open_reader(struct cw_cli_common *c, struct cw_domain **d, struct cw_store **s,
                       struct cw_error *err);

/* us (microseconds since the epoch) as 2026-12-02T15:30:42Z; "-" for 0. */
void cw_cli_format_time(int64_t us, char *out, size_t len);

/* Prints "calderwood: MESSAGE" and returns 1. */
int cw_cli_fail(const struct cw_error *err);

/*
 * What `calderwood replay` does (see replay.c): rebuilds the store at from,
 * up to position until (0: all, command log included), into the new store
 * into, with c's domain; progress on stderr. `check` replays into a scratch
 * file with it.
 */
int cw_cli_replay_into(const struct cw_cli_common *c, const char *from, const char *into,
                       int64_t until, struct cw_error *err);

int cw_cli_serve(int argc, char **argv);
int cw_cli_user(int argc, char **argv);
int cw_cli_session(int argc, char **argv);
int cw_cli_events(int argc, char **argv);
int cw_cli_replay(int argc, char **argv);
int cw_cli_migrate(int argc, char **argv);
int cw_cli_backup(int argc, char **argv);
int cw_cli_check(int argc, char **argv);

#endif
