/*
 * admin.c - the accounts' administration: commands only the operator
 * issues (`calderwood user passwd|disable|enable`, `calderwood session
 * end`), taking the command path like any other so that each one is events
 * in the log, the audit trail of who changed what and when. All internal:
 * no client can send them; the admin socket (src/admin/) and the CLI do.
 *
 *   change-password   {email, password} -> user-password-changed, session-ended for each
 *                                          open session
 *   disable-user      {email}           -> user-disabled, session-ended for each open session
 *   enable-user       {email}           -> user-enabled
 *   end-user-sessions {email}           -> session-ended for each open session
 *   (end-session {session_uuid}, the logout's command, ends one session: accounts.c)
 *
 * A user is named by email and looked up in handle, inside the batch's
 * transaction, so the answer is the state the command really met. Ending a
 * session here is the same session-ended event a logout writes: the gateway
 * closes that session's sockets when it sees it.
 */
#include "domain.h"

#include <stdio.h>
#include <string.h>

#define EV_PASSWORD_CHANGED "user-password-changed"
#define EV_USER_DISABLED    "user-disabled"
#define EV_USER_ENABLED     "user-enabled"
#define EV_SESSION_ENDED    "session-ended"

static const struct cw_field email_fields[] = {
    {.name = "email", .type = CW_FIELD_STRING, .required = true, .max_length = 254},
    {0},
};

static const struct cw_field password_fields[] = {
    {.name = "email", .type = CW_FIELD_STRING, .required = true, .max_length = 254},
    {.name = "password",
     .type = CW_FIELD_STRING,
     .required = true,
     .min_length = 8,
     .max_length = 1024},
    {0},
};

/* The user whose email is the command's: uuid and state; rejected unknown-user when none. */
static int find_user(struct cw_db *db, const struct cw_command *cmd,
                     char user_uuid[CW_UUID_LEN + 1], bool *disabled, struct cw_error *err)
{
    const char *email = cw_domain_str(cmd->data, "email");
    json_t *rows = NULL;
    int rc =
        cw_db_query_json(db, &rows, err, "SELECT user_uuid, disabled_at FROM users WHERE email = ?",
                         "t", email ? email : "");
    if (rc)
        return rc;
    json_t *row = json_array_get(rows, 0);
    if (row) {
        snprintf(user_uuid, CW_UUID_LEN + 1, "%s",
                 json_string_value(json_object_get(row, "user_uuid")));
        *disabled = !json_is_null(json_object_get(row, "disabled_at"));
    }
    json_decref(rows);
    if (!row)
        return cw_error_set(err, CW_ERR_REJECTED, "unknown-user", "no user with that email");
    return CW_OK;
}

/* Emits session-ended for each open session of user_uuid; *n receives how many. */
static int end_sessions(struct cw_db *db, const char *user_uuid, struct cw_emit *out, size_t *n,
                        struct cw_error *err)
{
    json_t *rows = NULL;
    int rc = cw_db_query_json(db, &rows, err,
                              "SELECT session_uuid FROM sessions WHERE user_uuid = ?"
                              " AND ended_at IS NULL ORDER BY started_at, session_uuid",
                              "t", user_uuid);
    *n = 0;
    for (size_t i = 0; !rc && i < json_array_size(rows); i++) {
        const char *session = cw_domain_str(json_array_get(rows, i), "session_uuid");
        rc = cw_emit_take(out, EV_SESSION_ENDED, json_pack("{s:s}", "session_uuid", session));
        if (!rc)
            (*n)++;
    }
    json_decref(rows);
    return rc;
}

/* The data of user-disabled, user-enabled and user-password-changed. */
static json_t *user_data(const char *user_uuid, const struct cw_command *cmd)
{
    return json_pack("{s:s,s:s}", "user_uuid", user_uuid, "email",
                     cw_domain_str(cmd->data, "email"));
}

static int handle_change_password(struct cw_db *db, const struct cw_command *cmd,
                                  struct cw_emit *out, struct cw_error *err)
{
    const char *hash = cw_domain_str(cmd->data, "password_hash");
    if (!hash)
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command",
                            "change-password needs a prepared password_hash");
    char user[CW_UUID_LEN + 1];
    bool disabled;
    size_t n;
    int rc = find_user(db, cmd, user, &disabled, err);
    if (!rc) {
        json_t *data = user_data(user, cmd);
        json_object_set_new(data, "password_hash", json_string(hash));
        rc = cw_emit_take(out, EV_PASSWORD_CHANGED, data);
    }
    return rc ? rc : end_sessions(db, user, out, &n, err);
}

static int handle_disable(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                          struct cw_error *err)
{
    char user[CW_UUID_LEN + 1];
    bool disabled;
    size_t n;
    int rc = find_user(db, cmd, user, &disabled, err);
    if (!rc && disabled)
        rc = cw_error_set(err, CW_ERR_REJECTED, "already-disabled", "the user is already disabled");
    if (!rc)
        rc = cw_emit_take(out, EV_USER_DISABLED, user_data(user, cmd));
    return rc ? rc : end_sessions(db, user, out, &n, err);
}

static int handle_enable(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                         struct cw_error *err)
{
    char user[CW_UUID_LEN + 1];
    bool disabled;
    int rc = find_user(db, cmd, user, &disabled, err);
    if (!rc && !disabled)
        rc = cw_error_set(err, CW_ERR_REJECTED, "not-disabled", "the user is not disabled");
    return rc ? rc : cw_emit_take(out, EV_USER_ENABLED, user_data(user, cmd));
}

static int handle_end_user_sessions(struct cw_db *db, const struct cw_command *cmd,
                                    struct cw_emit *out, struct cw_error *err)
{
    char user[CW_UUID_LEN + 1];
    bool disabled;
    size_t n = 0;
    int rc = find_user(db, cmd, user, &disabled, err);
    if (!rc)
        rc = end_sessions(db, user, out, &n, err);
    if (!rc && !n) /* a command ends in events or a rejection, never in nothing */
        rc = cw_error_set(err, CW_ERR_REJECTED, "no-session", "the user has no open session");
    return rc;
}

static int aggregate_password_changed(struct cw_db *db, const struct cw_event *ev,
                                      struct cw_error *err)
{
    return cw_db_exec(db, err,
                      "UPDATE users SET password_hash = ?, position = ? WHERE user_uuid = ?", "tit",
                      cw_domain_str(ev->data, "password_hash"), ev->position,
                      cw_domain_str(ev->data, "user_uuid"));
}

static int aggregate_disabled(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err, "UPDATE users SET disabled_at = ?, position = ? WHERE user_uuid = ?",
                      "iit", ev->recorded_at, ev->position, cw_domain_str(ev->data, "user_uuid"));
}

static int aggregate_enabled(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err,
                      "UPDATE users SET disabled_at = NULL, position = ? WHERE user_uuid = ?", "it",
                      ev->position, cw_domain_str(ev->data, "user_uuid"));
}

/* ------------------------------------------------------------- lists */

int cw_accounts_list_users(struct cw_db *db, json_t **rows, struct cw_error *err)
{
    return cw_db_query_json(
        db, rows, err,
        "SELECT u.user_uuid, u.email, u.first_name, u.last_name, u.registered_at, u.disabled_at,"
        " (SELECT COUNT(*) FROM sessions s WHERE s.user_uuid = u.user_uuid"
        " AND s.ended_at IS NULL) AS open_sessions"
        " FROM users u ORDER BY u.email",
        NULL);
}

int cw_accounts_list_sessions(struct cw_db *db, const char *email, json_t **rows,
                              struct cw_error *err)
{
#define SESSIONS                                                                                   \
    "SELECT s.session_uuid, s.user_uuid, u.email, s.started_at FROM sessions s"                    \
    " LEFT JOIN users u ON u.user_uuid = s.user_uuid WHERE s.ended_at IS NULL"
    if (email)
        return cw_db_query_json(db, rows, err,
                                SESSIONS " AND u.email = ? ORDER BY s.started_at, s.session_uuid",
                                "t", email);
    return cw_db_query_json(db, rows, err, SESSIONS " ORDER BY s.started_at, s.session_uuid", NULL);
#undef SESSIONS
}

/* ------------------------------------------------------- registration */

static const char *const password_private[] = {"password_hash", NULL};

static const struct cw_event_def events[] = {
    {.name = EV_PASSWORD_CHANGED,
     .version = 1,
     .aggregate = aggregate_password_changed,
     .private_fields = password_private},
    {.name = EV_USER_DISABLED, .version = 1, .aggregate = aggregate_disabled},
    {.name = EV_USER_ENABLED, .version = 1, .aggregate = aggregate_enabled},
};

static const struct cw_command_def commands[] = {
    {.name = "change-password",
     .fields = password_fields,
     .coerce = cw_accounts_coerce_email,
     .prepare = cw_accounts_hash_password,
     .handle = handle_change_password,
     .internal = true},
    {.name = "disable-user",
     .fields = email_fields,
     .coerce = cw_accounts_coerce_email,
     .handle = handle_disable,
     .internal = true},
    {.name = "enable-user",
     .fields = email_fields,
     .coerce = cw_accounts_coerce_email,
     .handle = handle_enable,
     .internal = true},
    {.name = "end-user-sessions",
     .fields = email_fields,
     .coerce = cw_accounts_coerce_email,
     .handle = handle_end_user_sessions,
     .internal = true},
};

int cw_accounts_admin_register(struct cw_domain *d)
{
    int rc = CW_OK;
    for (size_t i = 0; !rc && i < sizeof(events) / sizeof(events[0]); i++)
        rc = cw_domain_add_event(d, &events[i]);
    for (size_t i = 0; !rc && i < sizeof(commands) / sizeof(commands[0]); i++)
        rc = cw_domain_add_command(d, &commands[i]);
    return rc;
}
