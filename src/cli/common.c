/*
 * common.c - what the subcommands share (see cli.h).
 */
#include "cli.h"
#include "core/log.h"
#include "core/validate.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/update.h"
#include "core/registry.h"
#include "domain/domain.h"
#include "query/query.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static cw_cli_describe_cb describer;
static void *describer_arg;

void cw_cli_set_describer(cw_cli_describe_cb cb, void *arg)
{
    describer = cb;
    describer_arg = arg;
}

bool cw_cli_parse(const char *usage, const struct cw_option *opts, int argc, char **argv,
                  struct cw_strlist *positional, int *exit_code)
{
    if (describer) {
        describer(usage, opts, describer_arg);
        *exit_code = 0;
        return false;
    }
    struct cw_error err = {0};
    int rc = cw_config_load(opts, argc, argv, 1, positional, &err);
    if (rc == CW_ERR_NOT_FOUND) {
        printf("%s\n\nOptions:\n", usage);
        cw_config_usage(stdout, opts);
        *exit_code = 0;
        return false;
    }
    if (rc) {
        fprintf(stderr, "calderwood: %s\n", err.message);
        *exit_code = 2;
        return false;
    }
    return true;
}

int cw_cli_prepare(struct cw_cli_common *c, bool create, struct cw_error *err)
{
    int level = cw_log_parse_level(c->log_level);
    if (level < 0)
        return cw_error_set(err, CW_ERR_INVALID, NULL, "unknown log level '%s'", c->log_level);
    cw_log_set_level((enum cw_log_level)level);
    if (create && mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot create data directory %s: %s",
                            c->data_dir, strerror(errno));
    int n = c->store ? snprintf(c->store_url, sizeof(c->store_url), "%s", c->store)
                     : snprintf(c->store_url, sizeof(c->store_url), "sqlite:%s/calderwood.db",
                                c->data_dir);
    if (n >= (int)sizeof(c->store_url))
        return cw_error_set(err, CW_ERR_INVALID, NULL, "store URL or data directory too long");
    const struct cw_store_backend *be;
    const char *target;
    int rc = cw_store_parse_url(c->store_url, &be, &target, err);
    if (rc)
        return rc;
    cw_store_url_label(c->store_url, c->store_label, sizeof(c->store_label));
    return CW_OK;
}

/* Fills holder with the "PID SUBCOMMAND" the lock file records ("unknown" while it is empty). */
static void read_holder(int fd, char *holder, size_t len)
{
    ssize_t n = pread(fd, holder, len - 1, 0);
    holder[n > 0 ? n : 0] = '\0';
    holder[strcspn(holder, "\n")] = '\0';
    long pid = 0;
    int used = 0;
    if (sscanf(holder, "%ld %n", &pid, &used) < 1 || !holder[used]) {
        snprintf(holder, len, "another process");
        return;
    }
    char copy[128];
    snprintf(copy, sizeof(copy), "%s", holder + used);
    snprintf(holder, len, "calderwood %s (pid %ld)", copy, pid);
}

int cw_cli_lock(const struct cw_cli_common *c, const char *what, struct cw_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/calderwood.lock", c->data_dir);
    /* Never closed: the lock goes with the process, however it ends. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int failure = errno;
        char holder[200];
        read_holder(fd, holder, sizeof(holder));
        close(fd);
        if (failure != EWOULDBLOCK)
            return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot lock %s: %s", path,
                                strerror(failure));
        return cw_error_set(err, CW_ERR_EXISTS, NULL,
                            "%s is in use by %s: stop it before running %s", c->data_dir, holder,
                            what);
    }
    char line[160];
    int n = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), what);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n)
        cw_warn("lock.record", "path=%s error=\"%s\"", path, strerror(errno));
    return CW_OK;
}

bool cw_cli_lock_held_by_serve(const struct cw_cli_common *c)
{
    char path[4200], line[160] = "";
    snprintf(path, sizeof(path), "%s/calderwood.lock", c->data_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool serve = fgets(line, sizeof(line), f) && strstr(line, " serve\n");
    fclose(f);
    return serve;
}

int cw_cli_domain(const struct cw_cli_common *c, struct cw_domain **out, struct cw_error *err)
{
    struct cw_domain *d = cw_domain_new();
    int rc = cw_query_register_builtins(d);
    if (!rc)
        rc = cw_accounts_register(d);
    if (!rc && !c->no_demo)
        rc = cw_demo_register(d);
    if (rc)
        cw_error_set(err, rc, NULL, "registering the built-in domain failed");
    for (size_t i = 0; !rc && i < c->modules.n; i++)
        rc = cw_domain_load_module(d, c->modules.items[i], err);
    if (rc) {
        cw_domain_free(d);
        return rc;
    }
    *out = d;
    return CW_OK;
}

int cw_cli_fail(const struct cw_error *err)
{
    fprintf(stderr, "calderwood: %s\n", err->message[0] ? err->message : "failed");
    return 1;
}

int cw_cli_run_command(struct cw_engine *e, const struct cw_domain *d, const char *name,
                       const char *user_uuid, json_t *data, struct cw_outcome *out,
                       struct cw_error *err)
{
    const struct cw_command_def *def = NULL;
    int rc = cw_coerce_command(d, name, data, true, &def, err);
    if (!rc && def->prepare)
        rc = def->prepare(data, err);
    if (rc) {
        json_decref(data);
        return rc;
    }
    /* A fresh client id per call: the CLI never resends. */
    char client_id[CW_UUID_LEN + 8];
    cw_uuid_v7(client_id + 4);
    memcpy(client_id, "cli:", 4);
    struct cw_envelope *env = cw_envelope_new(def, user_uuid, client_id, 0, data, NULL, 0);
    rc = cw_engine_submit(e, env);
    if (rc) {
        cw_envelope_free(env);
        return cw_error_set(err, rc, NULL, "the command queue refused the command");
    }
    for (;;) {
        struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(e), 60 * 1000000);
        if (!b)
            return cw_error_set(err, CW_ERR_AGAIN, NULL, "no outcome within 60 s");
        for (size_t i = 0; i < b->n; i++) {
            if (b->items[i].env == env) {
                *out = b->items[i];
                memset(&b->items[i], 0, sizeof(b->items[i]));
                cw_outcome_batch_free(b);
                return CW_OK;
            }
        }
        cw_outcome_batch_free(b);
    }
}
