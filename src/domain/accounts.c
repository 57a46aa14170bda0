/*
 * accounts.c - users and sessions of the built-in domain.
 *
 * register-user: coerce normalises and checks the email on the gateway
 * thread; prepare replaces the clear-text password by its argon2id hash on a
 * worker thread, so neither the queue, the command log nor the event log ever
 * holds the password; handle refuses an email the users projection already
 * has (earlier commands of the same batch included, as they share the
 * transaction). The hash is a private field of user-registered: it stays in
 * the log, so a replay rebuilds the users table, and never reaches a client.
 *
 * start-session and end-session are internal commands the gateway issues at
 * login and logout, so every session is part of the audit trail; the
 * sessions table is what each authenticated request is checked against.
 *
 * This file does not verify passwords or cookies: the gateway's login does,
 * with src/auth, through the two lookups at the end. A disabled user (see
 * admin.c) is not found by the login lookup, and start-session refuses them.
 */
#include "domain.h"
#include "auth/password.h"

#include <stdio.h>
#include <string.h>

#define EV_USER_REGISTERED "user-registered"
#define EV_SESSION_STARTED "session-started"
#define EV_SESSION_ENDED   "session-ended"

/* ------------------------------------------------------------- email */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void cw_accounts_normalize_email(char *email)
{
    size_t start = 0, end = strlen(email);
    while (start < end && is_space(email[start]))
        start++;
    while (end > start && is_space(email[end - 1]))
        end--;
    memmove(email, email + start, end - start);
    email[end - start] = '\0';
    /* ASCII only, whatever the locale: the same bytes on every node. */
    for (char *p = email; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

/* NULL when email (normalised) has an acceptable shape, else the reason it has not. */
static const char *email_problem(const char *email)
{
    const char *at = strchr(email, '@');
    if (!at || strchr(at + 1, '@'))
        return "must contain exactly one @";
    if (at == email)
        return "must have a non-empty part before the @";
    for (const char *p = email; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "must not contain spaces or control characters";
    const char *domain = at + 1;
    if (!strchr(domain, '.'))
        return "must have a domain containing a dot";
    if (domain[0] == '.' || domain[strlen(domain) - 1] == '.' || strstr(domain, ".."))
        return "must not have an empty label in its domain";
    return NULL;
}

/* CW_ERR_INVALID with details [{"field","reason"}], as the generic validation reports. */
static int field_error(struct cw_error *err, const char *field, const char *reason)
{
    json_t *details = json_pack("[{s:s,s:s}]", "field", field, "reason", reason);
    return cw_error_set_details_take(err, CW_ERR_INVALID, NULL, details, "%s %s", field, reason);
}

/* ----------------------------------------------------- register-user */

static const struct cw_field register_fields[] = {
    {.name = "email", .type = CW_FIELD_STRING, .required = true, .max_length = 254},
    {.name = "first_name",
     .type = CW_FIELD_STRING,
     .required = true,
     .min_length = 1,
     .max_length = 100},
    {.name = "last_name",
     .type = CW_FIELD_STRING,
     .required = true,
     .min_length = 1,
     .max_length = 100},
    {.name = "password",
     .type = CW_FIELD_STRING,
     .required = true,
     .min_length = 8,
     .max_length = 1024},
    {0},
};

int cw_accounts_coerce_email(json_t *data, struct cw_error *err)
{
    const char *given = cw_domain_str(data, "email");
    if (!given)
        return field_error(err, "email", "must be a string");
    char email[255]; /* the declared maximum is 254 bytes */
    snprintf(email, sizeof(email), "%s", given);
    cw_accounts_normalize_email(email);
    const char *problem = email_problem(email);
    if (problem)
        return field_error(err, "email", problem);
    json_object_set_new(data, "email", json_string(email));
    /* Only prepare may supply a hash: a client's own would let it choose the password. */
    json_object_del(data, "password_hash");
    return CW_OK;
}

int cw_accounts_hash_password(json_t *data, struct cw_error *err)
{
    const char *password = cw_domain_str(data, "password");
    if (!password)
        return field_error(err, "password", "is required");
    char hash[crypto_pwhash_STRBYTES];
    if (cw_password_hash(password, hash))
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "the password could not be hashed");
    json_object_set_new(data, "password_hash", json_string(hash));
    json_object_del(data, "password");
    return CW_OK;
}

static int handle_register(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                           struct cw_error *err)
{
    const char *email = cw_domain_str(cmd->data, "email");
    const char *first = cw_domain_str(cmd->data, "first_name");
    const char *last = cw_domain_str(cmd->data, "last_name");
    const char *hash = cw_domain_str(cmd->data, "password_hash");
    if (!email || !first || !last || !hash)
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command",
                            "register-user needs email, names and a prepared password_hash");
    int64_t one;
    int rc = cw_db_query_int(db, &one, err, "SELECT 1 FROM users WHERE email = ?", "t", email);
    if (rc == CW_OK)
        return cw_error_set(err, CW_ERR_REJECTED, "email-taken",
                            "that email is already registered");
    if (rc != CW_ERR_NOT_FOUND)
        return rc;
    char user_uuid[CW_UUID_LEN + 1];
    cw_uuid_v7(user_uuid);
    return cw_emit_take(out, EV_USER_REGISTERED,
                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "user_uuid", user_uuid, "email", email,
                                  "first_name", first, "last_name", last, "password_hash", hash));
}

static int aggregate_registered(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    const json_t *d = ev->data;
    return cw_db_exec(db, err,
                      "INSERT INTO users(user_uuid, email, first_name, last_name, password_hash,"
                      " registered_at, position) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      "tttttii", cw_domain_str(d, "user_uuid"), cw_domain_str(d, "email"),
                      cw_domain_str(d, "first_name"), cw_domain_str(d, "last_name"),
                      cw_domain_str(d, "password_hash"), ev->recorded_at, ev->position);
}

/* ---------------------------------------------------------- sessions */

static const struct cw_field start_session_fields[] = {
    {.name = "user_uuid", .type = CW_FIELD_UUID, .required = true},
    {.name = "session_uuid", .type = CW_FIELD_UUID, .required = true},
    {0},
};

static const struct cw_field end_session_fields[] = {
    {.name = "session_uuid", .type = CW_FIELD_UUID, .required = true},
    {0},
};

static int handle_start_session(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                                struct cw_error *err)
{
    const char *session = cw_domain_str(cmd->data, "session_uuid");
    const char *user = cw_domain_str(cmd->data, "user_uuid");
    if (!session || !user)
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command",
                            "start-session needs user_uuid and session_uuid");
    int64_t one;
    int rc = cw_db_query_int(db, &one, err, "SELECT 1 FROM sessions WHERE session_uuid = ?", "t",
                             session);
    if (rc == CW_OK)
        return cw_error_set(err, CW_ERR_REJECTED, "session-exists",
                            "a session with that uuid was already started");
    if (rc != CW_ERR_NOT_FOUND)
        return rc;
    /* A login checked before the user was disabled and committed after: refused here. */
    rc = cw_db_query_int(db, &one, err,
                         "SELECT 1 FROM users WHERE user_uuid = ? AND disabled_at IS NOT NULL", "t",
                         user);
    if (rc == CW_OK)
        return cw_error_set(err, CW_ERR_REJECTED, "user-disabled", "the user is disabled");
    if (rc != CW_ERR_NOT_FOUND)
        return rc;
    return cw_emit_take(out, EV_SESSION_STARTED,
                        json_pack("{s:s,s:s}", "session_uuid", session, "user_uuid", user));
}

static int handle_end_session(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                              struct cw_error *err)
{
    const char *session = cw_domain_str(cmd->data, "session_uuid");
    if (!session)
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command",
                            "end-session needs session_uuid");
    int64_t one;
    int rc = cw_db_query_int(db, &one, err,
                             "SELECT 1 FROM sessions WHERE session_uuid = ? AND ended_at IS NULL",
                             "t", session);
    if (rc == CW_ERR_NOT_FOUND)
        return cw_error_set(err, CW_ERR_REJECTED, "no-session", "no open session with that uuid");
    if (rc)
        return rc;
    return cw_emit_take(out, EV_SESSION_ENDED, json_pack("{s:s}", "session_uuid", session));
}

static int aggregate_session_started(struct cw_db *db, const struct cw_event *ev,
                                     struct cw_error *err)
{
    return cw_db_exec(
        db, err,
        "INSERT INTO sessions(session_uuid, user_uuid, started_at, ended_at, position)"
        " VALUES (?, ?, ?, NULL, ?)",
        "ttii", cw_domain_str(ev->data, "session_uuid"), cw_domain_str(ev->data, "user_uuid"),
        ev->recorded_at, ev->position);
}

static int aggregate_session_ended(struct cw_db *db, const struct cw_event *ev,
                                   struct cw_error *err)
{
    return cw_db_exec(
        db, err, "UPDATE sessions SET ended_at = ?, position = ? WHERE session_uuid = ?", "iit",
        ev->recorded_at, ev->position, cw_domain_str(ev->data, "session_uuid"));
}

/* ------------------------------------------------------------ queries */

static int run_list_users(struct cw_db *db, const struct cw_query *q, json_t **result,
                          struct cw_error *err)
{
    return cw_db_query_json(db, result, err,
                            "SELECT user_uuid, email, first_name, last_name FROM users"
                            " ORDER BY email",
                            NULL);
}

/* whoami: the asking user, for a client that cannot read its HttpOnly cookie. */
static int run_whoami(struct cw_db *db, const struct cw_query *q, json_t **result,
                      struct cw_error *err)
{
    json_t *rows = NULL;
    int rc = cw_db_query_json(db, &rows, err,
                              "SELECT user_uuid, email, first_name, last_name FROM users"
                              " WHERE user_uuid = ?",
                              "t", q->user_uuid);
    if (rc)
        return rc;
    json_t *me = json_array_get(rows, 0);
    *result = me ? json_incref(me)
                 : json_pack("{s:s,s:n,s:n,s:n}", "user_uuid", q->user_uuid, "email", "first_name",
                             "last_name");
    json_decref(rows);
    return CW_OK;
}

/* ------------------------------------------------------------ lookups */

/* Copies src into dst of size len; CW_ERR_TOO_LARGE when it does not fit. */
static int copy_out(char *dst, size_t len, const char *src, struct cw_error *err)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= len)
        return cw_error_set(err, CW_ERR_TOO_LARGE, NULL, "stored value of %zu bytes does not fit",
                            n);
    memcpy(dst, src ? src : "", n + 1);
    return CW_OK;
}

/*
 * Steps a one-row lookup (a key or unique column) past its row, so the
 * statement ends and holds no read lock; rc is the result so far.
 */
static int finish(struct cw_stmt *st, int rc, struct cw_error *err)
{
    int end = cw_stmt_step(st, err);
    if (rc)
        return rc;
    return end == CW_DONE || end == CW_ROW ? CW_OK : end;
}

int cw_accounts_find_login(struct cw_db *db, const char *email, char user_uuid[CW_UUID_LEN + 1],
                           char *hash, size_t hash_len, struct cw_error *err)
{
    /* A disabled user is not found: the login answers as for a wrong password. */
    struct cw_stmt *st = cw_db_prepare(
        db, "SELECT user_uuid, password_hash FROM users WHERE email = ? AND disabled_at IS NULL",
        err);
    if (!st)
        return CW_ERR_STORE;
    cw_stmt_bind_text(st, 1, email);
    int rc = cw_stmt_step(st, err);
    if (rc == CW_DONE)
        return cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "no user with that email");
    if (rc != CW_ROW)
        return rc;
    rc = copy_out(user_uuid, CW_UUID_LEN + 1, cw_stmt_text(st, 0), err);
    if (!rc)
        rc = copy_out(hash, hash_len, cw_stmt_text(st, 1), err);
    return finish(st, rc, err);
}

int cw_accounts_session_user(struct cw_db *db, const char *session_uuid,
                             char user_uuid[CW_UUID_LEN + 1], struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(
        db, "SELECT user_uuid FROM sessions WHERE session_uuid = ? AND ended_at IS NULL", err);
    if (!st)
        return CW_ERR_STORE;
    cw_stmt_bind_text(st, 1, session_uuid);
    int rc = cw_stmt_step(st, err);
    if (rc == CW_DONE)
        return cw_error_set(err, CW_ERR_UNAUTHORIZED, NULL, "no open session");
    if (rc != CW_ROW)
        return rc;
    rc = copy_out(user_uuid, CW_UUID_LEN + 1, cw_stmt_text(st, 0), err);
    return finish(st, rc, err);
}

/* ------------------------------------------------------- registration */

static const struct cw_migration migrations[] = {
    {.id = "001-users",
     .sql = "CREATE TABLE users ("
            " user_uuid TEXT PRIMARY KEY,"
            " email TEXT NOT NULL UNIQUE,"
            " first_name TEXT NOT NULL,"
            " last_name TEXT NOT NULL,"
            " password_hash TEXT NOT NULL,"
            " registered_at BIGINT NOT NULL,"
            " position BIGINT NOT NULL);"},
    {.id = "002-sessions",
     .sql = "CREATE TABLE sessions ("
            " session_uuid TEXT PRIMARY KEY,"
            " user_uuid TEXT NOT NULL,"
            " started_at BIGINT NOT NULL,"
            " ended_at BIGINT,"
            " position BIGINT NOT NULL);"
            "CREATE INDEX sessions_by_user ON sessions(user_uuid);"},
    /* user-disabled and user-enabled (admin.c): NULL while the user may log in. */
    {.id = "003-users-disabled", .sql = "ALTER TABLE users ADD COLUMN disabled_at BIGINT;"},
};

static const char *const user_private[] = {"password_hash", NULL};

static const struct cw_event_def events[] = {
    {.name = EV_USER_REGISTERED,
     .version = 1,
     .aggregate = aggregate_registered,
     .private_fields = user_private},
    {.name = EV_SESSION_STARTED, .version = 1, .aggregate = aggregate_session_started},
    {.name = EV_SESSION_ENDED, .version = 1, .aggregate = aggregate_session_ended},
};

static const struct cw_command_def commands[] = {
    {.name = "register-user",
     .fields = register_fields,
     .coerce = cw_accounts_coerce_email,
     .prepare = cw_accounts_hash_password,
     .handle = handle_register},
    {.name = "start-session",
     .fields = start_session_fields,
     .handle = handle_start_session,
     .internal = true},
    {.name = "end-session",
     .fields = end_session_fields,
     .handle = handle_end_session,
     .internal = true},
};

static const struct cw_query_def queries[] = {
    {.name = "list-users", .run = run_list_users},
    {.name = "whoami", .run = run_whoami},
};

int cw_accounts_register(struct cw_domain *d)
{
    const struct cw_domain_part part =
        CW_DOMAIN_PART("accounts", migrations, events, commands, queries);
    int rc = cw_domain_part_add(d, &part);
    return rc ? rc : cw_accounts_admin_register(d);
}
