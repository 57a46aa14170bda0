/*
 * domain.h - the built-in example domain of PROTOCOL.md, written against the
 * public API of calderwood.h like any user's module.
 *
 *   accounts (always registered: login needs them)
 *     register-user -> user-registered        users(user_uuid, email, ...)
 *     start-session -> session-started        sessions(session_uuid, user_uuid, ...)
 *     end-session   -> session-ended          (both internal: only the server issues them)
 *     change-password, disable-user, enable-user, end-user-sessions
 *                   -> user-password-changed, user-disabled, user-enabled, session-ended
 *                      (admin.c; internal: the operator issues them through the CLI)
 *     list-users
 *   demo
 *     visit-page    -> page-view (audience: every user)   page_views(position, url, ...)
 *     add-to-cart, remove-from-cart -> item-added-to-cart, item-removed-from-cart
 *                                              cart_items(user_uuid, sku, ...), carts(user_uuid,
 * position) list-page-views, get-cart (as_of_position), cart-history
 *
 * Ownership: arguments are borrowed; output buffers are the caller's.
 * Thread: registration at start-up, before the domain is shared; the lookups
 * on whichever thread owns the cw_db they are given.
 */
#ifndef CW_DOMAIN_H
#define CW_DOMAIN_H

#include "calderwood.h"

/* Registers users and sessions (migrations namespace "accounts"). */
int cw_accounts_register(struct cw_domain *d);
/*
 * Registers page views and the cart (migrations namespace "demo"). Needs the
 * accounts registered first: list-page-views joins the users table.
 */
int cw_demo_register(struct cw_domain *d);
/* The two halves of the demo, for a server that wants only one of them. */
int cw_pages_register(struct cw_domain *d);
int cw_cart_register(struct cw_domain *d);

/*
 * Trims ASCII white space from both ends of email and lower-cases its ASCII
 * letters, in place. Login and register-user both compare emails in this form.
 */
void cw_accounts_normalize_email(char *email);

/*
 * Registers the administration commands and their events (admin.c);
 * cw_accounts_register calls it.
 */
int cw_accounts_admin_register(struct cw_domain *d);

/*
 * coerce of every command naming a user by "email": normalises it and
 * checks its shape (CW_ERR_INVALID with details naming the field), and
 * drops any "password_hash" the sender put in.
 */
int cw_accounts_coerce_email(json_t *data, struct cw_error *err);

/*
 * prepare of every command carrying a "password": replaces it by its
 * argon2id "password_hash". Slow (a worker's job).
 */
int cw_accounts_hash_password(json_t *data, struct cw_error *err);

/*
 * For the CLI: every user as {user_uuid, email, first_name, last_name,
 * registered_at, disabled_at (null while enabled), open_sessions}, by
 * email; and every open session as {session_uuid, user_uuid, email,
 * started_at}, oldest first, only those of email when it is not NULL.
 * *rows belongs to the caller.
 */
int cw_accounts_list_users(struct cw_db *db, json_t **rows, struct cw_error *err);
int cw_accounts_list_sessions(struct cw_db *db, const char *email, json_t **rows,
                              struct cw_error *err);

/*
 * Login lookup: the user whose email is email (already normalised) and their
 * password hash. db is a read connection, normally inside a snapshot the
 * caller began. Returns CW_OK with user_uuid and hash filled,
 * CW_ERR_NOT_FOUND when no user has that email or that user is disabled, CW_ERR_TOO_LARGE when the
 * stored hash does not fit hash_len (crypto_pwhash_STRBYTES always does), or
 * a store error (CW_ERR_AGAIN, CW_ERR_STORE). err is filled on failure.
 */
int cw_accounts_find_login(struct cw_db *db, const char *email, char user_uuid[CW_UUID_LEN + 1],
                           char *hash, size_t hash_len, struct cw_error *err);

/*
 * Session check: CW_OK with user_uuid filled when the session exists and has
 * not ended; CW_ERR_UNAUTHORIZED (code "unauthorized") otherwise; or a store
 * error. db as for cw_accounts_find_login.
 */
int cw_accounts_session_user(struct cw_db *db, const char *session_uuid,
                             char user_uuid[CW_UUID_LEN + 1], struct cw_error *err);

/*
 * What one file of the domain registers, in this order: migrations (under
 * ns), events, commands, queries. Arrays of definitions, with their lengths.
 */
struct cw_domain_part {
    const char *ns;
    const struct cw_migration *migrations;
    size_t n_migrations;
    const struct cw_event_def *events;
    size_t n_events;
    const struct cw_command_def *commands;
    size_t n_commands;
    const struct cw_query_def *queries;
    size_t n_queries;
};

/* A part from four arrays (not pointers: their lengths are taken with sizeof). */
#define CW_DOMAIN_PART(ns_, m, e, c, q)                                                            \
    {                                                                                              \
        .ns = (ns_), .migrations = (m), .n_migrations = sizeof(m) / sizeof((m)[0]), .events = (e), \
        .n_events = sizeof(e) / sizeof((e)[0]), .commands = (c),                                   \
        .n_commands = sizeof(c) / sizeof((c)[0]), .queries = (q),                                  \
        .n_queries = sizeof(q) / sizeof((q)[0]),                                                   \
    }

/* Registers every definition of part; stops at and returns the first failure. */
int cw_domain_part_add(struct cw_domain *d, const struct cw_domain_part *part);

/* The string value of key in data, or NULL when absent or not a string. */
const char *cw_domain_str(const json_t *data, const char *key);

#endif
