/*
 * envelope.c - a command plus its routing (see envelope.h).
 */
#include "envelope.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>

struct cw_envelope *cw_envelope_new(const struct cw_command_def *def, const char *user_uuid,
                                    const char *client_id, int64_t client_seq, json_t *data,
                                    json_t *meta, uint64_t origin)
{
    struct cw_envelope *env = cw_xcalloc(1, sizeof(*env));
    env->def = def;
    env->origin = origin;
    env->name = cw_xstrdup(def->name);
    env->client_id = cw_xstrdup(client_id);
    cw_uuid_v7(env->cmd.uuid);
    snprintf(env->cmd.user_uuid, sizeof(env->cmd.user_uuid), "%s", user_uuid ? user_uuid : "");
    env->cmd.name = env->name;
    env->cmd.client_id = env->client_id;
    env->cmd.client_seq = client_seq;
    env->cmd.received_at = cw_now_us();
    env->cmd.data = data ? data : json_object();
    env->cmd.meta = meta ? meta : json_object();
    return env;
}

void cw_envelope_free(struct cw_envelope *env)
{
    if (!env)
        return;
    json_decref(env->cmd.data);
    json_decref(env->cmd.meta);
    free(env->name);
    free(env->client_id);
    free(env);
}
