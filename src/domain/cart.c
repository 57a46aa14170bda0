/*
 * cart.c - the shopping cart of the built-in domain, and its time travel.
 *
 * add-to-cart and remove-from-cart emit item-added-to-cart and
 * item-removed-from-cart; removing more than the cart holds is rejected
 * (not-in-cart). Two projections: cart_items holds each user's current
 * quantities (a row reaching 0 is deleted), carts the position of each
 * user's latest cart event, so get-cart can say which state it shows even
 * when that event emptied a row.
 *
 * get-cart with as_of_position does not read the projections: it folds the
 * user's cart events up to that position from the log. Both paths end in the
 * same sku -> quantity map and the same byte-order sort (not the database's
 * collation, which differs between backends), so they agree for one state.
 */
#include "core/alloc.h"
#include "domain.h"

#include <stdlib.h>
#include <string.h>

#define EV_ADDED   "item-added-to-cart"
#define EV_REMOVED "item-removed-from-cart"

static const char *const cart_events[] = {EV_ADDED, EV_REMOVED, NULL};

static const struct cw_field item_fields[] = {
    {.name = "sku", .type = CW_FIELD_STRING, .required = true, .min_length = 1, .max_length = 128},
    {.name = "quantity",
     .type = CW_FIELD_INTEGER,
     .required = true,
     .ranged = true,
     .min = 1,
     .max = 1000},
    {0},
};

/*
 * The cart's owner. Carts belong to users: a command without one is
 * rejected (the log stores no user for it, so no fold could find it), and a
 * query without one sees the empty cart of "".
 */
static const char *owner(const char *user_uuid)
{
    return user_uuid ? user_uuid : "";
}

/* ----------------------------------------------------------- commands */

/* Reads sku and quantity of a command or event; false when either is missing. */
static bool item_of(const json_t *data, const char **sku, int64_t *quantity)
{
    json_t *q = json_object_get(data, "quantity");
    *sku = cw_domain_str(data, "sku");
    *quantity = json_is_integer(q) ? json_integer_value(q) : 0;
    return *sku && json_is_integer(q);
}

/* The item of a cart command, or a rejection when it has no user or no item. */
static int command_item(const struct cw_command *cmd, const char **sku, int64_t *quantity,
                        struct cw_error *err)
{
    if (!cmd->user_uuid[0])
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command", "a cart needs a user");
    if (!item_of(cmd->data, sku, quantity))
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command", "needs sku and quantity");
    return CW_OK;
}

static int emit_item(struct cw_emit *out, const char *event, const char *sku, int64_t quantity)
{
    return cw_emit_take(out, event,
                        json_pack("{s:s,s:I}", "sku", sku, "quantity", (json_int_t)quantity));
}

static int handle_add(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                      struct cw_error *err)
{
    const char *sku;
    int64_t quantity;
    int rc = command_item(cmd, &sku, &quantity, err);
    return rc ? rc : emit_item(out, EV_ADDED, sku, quantity);
}

static int handle_remove(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                         struct cw_error *err)
{
    const char *sku;
    int64_t quantity, have = 0;
    int rc = command_item(cmd, &sku, &quantity, err);
    if (!rc)
        rc = cw_db_query_int(db, &have, err,
                             "SELECT quantity FROM cart_items WHERE user_uuid = ? AND sku = ?",
                             "tt", owner(cmd->user_uuid), sku);
    if (rc == CW_ERR_NOT_FOUND)
        return cw_error_set(err, CW_ERR_REJECTED, "not-in-cart", "that sku is not in the cart");
    if (rc)
        return rc;
    if (have < quantity)
        return cw_error_set(err, CW_ERR_REJECTED, "not-in-cart",
                            "the cart holds only %lld of that sku", (long long)have);
    return emit_item(out, EV_REMOVED, sku, quantity);
}

/* --------------------------------------------------------- aggregates */

static int touch_cart(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err,
                      "INSERT INTO carts(user_uuid, position) VALUES (?, ?)"
                      " ON CONFLICT (user_uuid) DO UPDATE SET position = excluded.position",
                      "ti", owner(ev->user_uuid), ev->position);
}

static int aggregate_added(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    const char *sku;
    int64_t quantity;
    item_of(ev->data, &sku, &quantity);
    int rc = cw_db_exec(db, err,
                        "INSERT INTO cart_items(user_uuid, sku, quantity, position)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (user_uuid, sku) DO UPDATE SET"
                        " quantity = cart_items.quantity + excluded.quantity,"
                        " position = excluded.position",
                        "ttii", owner(ev->user_uuid), sku, quantity, ev->position);
    return rc ? rc : touch_cart(db, ev, err);
}

static int aggregate_removed(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    const char *sku;
    int64_t quantity;
    item_of(ev->data, &sku, &quantity);
    const char *user = owner(ev->user_uuid);
    int rc = cw_db_exec(db, err,
                        "UPDATE cart_items SET quantity = quantity - ?, position = ?"
                        " WHERE user_uuid = ? AND sku = ?",
                        "iitt", quantity, ev->position, user, sku);
    if (!rc)
        rc = cw_db_exec(db, err,
                        "DELETE FROM cart_items WHERE user_uuid = ? AND sku = ? AND quantity <= 0",
                        "tt", user, sku);
    return rc ? rc : touch_cart(db, ev, err);
}

/* ------------------------------------------------------------ get-cart */

static int by_sku(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* {"items": [{"sku","quantity"}...] in byte order of sku, "position": position}. */
static json_t *cart_json(json_t *map, int64_t position)
{
    size_t n = json_object_size(map), i = 0;
    const char **skus = cw_xcalloc(n ? n : 1, sizeof(*skus));
    const char *sku;
    json_t *v;
    json_object_foreach(map, sku, v)
    {
        skus[i++] = sku;
    }
    qsort(skus, n, sizeof(*skus), by_sku);
    json_t *items = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(items, json_pack("{s:s,s:O}", "sku", skus[i], "quantity",
                                               json_object_get(map, skus[i])));
    free(skus);
    return json_pack("{s:o,s:I}", "items", items, "position", (json_int_t)position);
}

/* Applies one cart event to a sku -> quantity map, as the aggregates do to cart_items. */
static int fold(const struct cw_event *ev, void *arg)
{
    json_t *map = arg;
    const char *sku;
    int64_t quantity;
    if (!item_of(ev->data, &sku, &quantity))
        return CW_OK;
    int64_t have = json_integer_value(json_object_get(map, sku));
    int64_t now = strcmp(ev->name, EV_ADDED) == 0 ? have + quantity : have - quantity;
    if (now > 0)
        json_object_set_new(map, sku, json_integer(now));
    else
        json_object_del(map, sku);
    return CW_OK;
}

static int cart_as_of(struct cw_db *db, const char *user, int64_t position, json_t **result,
                      struct cw_error *err)
{
    json_t *map = json_object();
    int rc = CW_OK;
    /* until = 0 means "no bound" to the scan; as of position 0 the cart is empty. */
    if (position > 0)
        rc = cw_db_scan_events(db, 0, position, user, cart_events, fold, map, err);
    if (!rc)
        *result = cart_json(map, position);
    json_decref(map);
    return rc;
}

static int cart_now(struct cw_db *db, const char *user, json_t **result, struct cw_error *err)
{
    json_t *rows = NULL, *map = json_object(), *row;
    int64_t position = 0;
    int rc = cw_db_query_json(
        db, &rows, err, "SELECT sku, quantity FROM cart_items WHERE user_uuid = ?", "t", user);
    if (!rc)
        rc = cw_db_query_int(db, &position, err, "SELECT position FROM carts WHERE user_uuid = ?",
                             "t", user);
    if (rc == CW_ERR_NOT_FOUND)
        rc = CW_OK; /* no cart event yet: position 0 */
    size_t i;
    json_array_foreach(rows, i, row)
        json_object_set(map, cw_domain_str(row, "sku"), json_object_get(row, "quantity"));
    if (!rc)
        *result = cart_json(map, position);
    json_decref(rows);
    json_decref(map);
    return rc;
}

static const struct cw_field get_cart_fields[] = {
    {.name = "as_of_position",
     .type = CW_FIELD_INTEGER,
     .ranged = true,
     .min = 0,
     .max = INT64_MAX},
    {0},
};

static int run_get_cart(struct cw_db *db, const struct cw_query *q, json_t **result,
                        struct cw_error *err)
{
    json_t *as_of = json_object_get(q->data, "as_of_position");
    if (json_is_integer(as_of))
        return cart_as_of(db, owner(q->user_uuid), json_integer_value(as_of), result, err);
    return cart_now(db, owner(q->user_uuid), result, err);
}

/* -------------------------------------------------------- cart-history */

static int add_history(const struct cw_event *ev, void *arg)
{
    json_t *quantity = json_object_get(ev->data, "quantity");
    json_array_append_new(arg, json_pack("{s:I,s:s,s:s?,s:O?,s:I}", "position",
                                         (json_int_t)ev->position, "name", ev->name, "sku",
                                         cw_domain_str(ev->data, "sku"), "quantity", quantity,
                                         "recorded_at", (json_int_t)ev->recorded_at));
    return CW_OK;
}

static int run_cart_history(struct cw_db *db, const struct cw_query *q, json_t **result,
                            struct cw_error *err)
{
    json_t *out = json_array();
    int rc = cw_db_scan_events(db, 0, 0, owner(q->user_uuid), cart_events, add_history, out, err);
    if (rc) {
        json_decref(out);
        return rc;
    }
    *result = out;
    return CW_OK;
}

/* ------------------------------------------------------- registration */

static const struct cw_migration migrations[] = {
    {.id = "002-cart",
     .sql = "CREATE TABLE cart_items ("
            " user_uuid TEXT NOT NULL,"
            " sku TEXT NOT NULL,"
            " quantity BIGINT NOT NULL,"
            " position BIGINT NOT NULL,"
            " PRIMARY KEY (user_uuid, sku));"
            "CREATE TABLE carts ("
            " user_uuid TEXT PRIMARY KEY,"
            " position BIGINT NOT NULL);"},
};

static const struct cw_event_def events[] = {
    {.name = EV_ADDED, .version = 1, .aggregate = aggregate_added},
    {.name = EV_REMOVED, .version = 1, .aggregate = aggregate_removed},
};

static const struct cw_command_def commands[] = {
    {.name = "add-to-cart", .fields = item_fields, .handle = handle_add},
    {.name = "remove-from-cart", .fields = item_fields, .handle = handle_remove},
};

static const struct cw_query_def queries[] = {
    {.name = "get-cart", .fields = get_cart_fields, .run = run_get_cart},
    {.name = "cart-history", .run = run_cart_history},
};

int cw_cart_register(struct cw_domain *d)
{
    const struct cw_domain_part part =
        CW_DOMAIN_PART("demo", migrations, events, commands, queries);
    return cw_domain_part_add(d, &part);
}
