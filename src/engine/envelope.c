/*
 * envelope.c - a command plus its routing (see envelope.h).
 */
#include "envelope.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_envelope *cw_envelope_new(const struct cw_command_def *def, const char *user_uuid,
                                    const char *client_id, int64_t client_seq, json_t *data,
                                    json_t *meta, uint64_t origin)
{
    size_t id_len = strlen(client_id);
    struct cw_envelope *env = cw_xmalloc(sizeof(*env) + id_len + 1);
    memset(env, 0, sizeof(*env));
    memcpy(env->client_id, client_id, id_len + 1);
    env->def = def;
    env->origin = origin;
    cw_uuid_v7(env->cmd.uuid);
    size_t user_len = user_uuid ? strnlen(user_uuid, CW_UUID_LEN) : 0;
    memcpy(env->cmd.user_uuid, user_uuid ? user_uuid : "", user_len);
    env->cmd.user_uuid[user_len] = '\0';
    env->cmd.name = def->name;
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
    if (env->done)
        env->done(NULL, env->done_arg);
    json_decref(env->cmd.data);
    json_decref(env->cmd.meta);
    free(env);
}
