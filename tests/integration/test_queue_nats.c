/*
 * test_queue_nats.c - the JetStream command queue (src/engine/queue_nats.c)
 * against a real nats-server, one per test: started here on a free
 * loopback port with its store in a fresh temporary directory, waited for
 * by its log's "Server is ready", stopped by the PID it was given and its
 * directory removed. Covers what the processor and the gateway rely on:
 * put, take and ack in order; an unacked batch delivered again (to a new
 * consumer, as after a processor's death, and after a nak); the stream's
 * duplicate window keyed by Nats-Msg-Id; a full stream refusing a put.
 * Skipped, saying so, when nats-server is not installed.
 */
#include "core/registry.h"
#include "domain/domain.h"
#include "engine/envelope.h"
#include "engine/queue.h"

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define USER "0190a4b2-0000-7000-8000-000000000001"

struct fixture {
    char dir[256];
    char url[64];
    pid_t pid;
    struct cw_domain *d;
};

/* A port the kernel has just given out and taken back: free, barring a race. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        fail_msg("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

static bool log_says_ready(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    bool ready = false;
    while (f && !ready && fgets(line, sizeof(line), f))
        ready = strstr(line, "Server is ready") != NULL;
    if (f)
        fclose(f);
    return ready;
}

static int start_server(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof(fx->dir), "%s/cw-nats-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir))
        return -1;
    int port = free_port();
    char port_s[16], store[300], log[300];
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(store, sizeof(store), "%s/js", fx->dir);
    snprintf(log, sizeof(log), "%s/nats.log", fx->dir);
    snprintf(fx->url, sizeof(fx->url), "nats://127.0.0.1:%d", port);
    fx->pid = fork();
    if (fx->pid == 0) {
        execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port_s, "-js", "-sd", store,
               "-l", log, (char *)NULL);
        _exit(127);
    }
    /* Ready within 20 s, or the test fails (it never just sleeps and hopes). */
    for (int i = 0; i < 2000 && !log_says_ready(log); i++) {
        if (waitpid(fx->pid, NULL, WNOHANG) == fx->pid) {
            fprintf(stderr, "nats-server exited at start (log %s)\n", log);
            return -1;
        }
        usleep(10000);
    }
    if (!log_says_ready(log))
        return -1;
    fx->d = cw_domain_new();
    if (cw_pages_register(fx->d))
        return -1;
    *state = fx;
    return 0;
}

static int stop_server(void **state)
{
    struct fixture *fx = *state;
    kill(fx->pid, SIGTERM);
    waitpid(fx->pid, NULL, 0);
    cw_domain_free(fx->d);
    char cmd[400];
    if (!getenv("CW_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", fx->dir);
    }
    free(fx);
    return 0;
}

static struct cw_queue *open_queue(struct fixture *fx, bool consume, size_t capacity)
{
    struct cw_queue *q = NULL;
    struct cw_error err = {0};
    struct cw_queue_nats_config cfg = {
        .urls = fx->url, .d = fx->d, .node = 7, .consume = consume, .capacity = capacity};
    if (cw_queue_nats_open(&cfg, &q, &err))
        fail_msg("cw_queue_nats_open: %s", err.message);
    return q;
}

static struct cw_envelope *visit(struct fixture *fx, const char *cid, int64_t seq)
{
    char url[64];
    snprintf(url, sizeof(url), "/p/%lld", (long long)seq);
    return cw_envelope_new(cw_domain_command(fx->d, "visit-page"), USER, cid, seq,
                           json_pack("{s:s}", "url", url), json_object(), 42);
}

/* Puts env, which must succeed; returns its command uuid in uuid. */
static void put(struct cw_queue *q, struct cw_envelope *env, char uuid[CW_UUID_LEN + 1])
{
    memcpy(uuid, env->cmd.uuid, CW_UUID_LEN + 1);
    int rc = cw_queue_put(q, env);
    if (rc)
        fail_msg("put: %d", rc);
}

/* Takes until n envelopes came or 10 s passed; frees them, keeping their uuids. */
static size_t take(struct cw_queue *q, size_t n, char (*uuids)[CW_UUID_LEN + 1])
{
    struct cw_envelope *got[16];
    size_t total = 0;
    for (int round = 0; round < 40 && total < n; round++) {
        size_t k = cw_queue_take(q, got, 16, 250000);
        for (size_t i = 0; i < k; i++) {
            if (total < n) {
                memcpy(uuids[total], got[i]->cmd.uuid, CW_UUID_LEN + 1);
                assert_string_equal(got[i]->cmd.user_uuid, USER);
                assert_int_equal(got[i]->origin, 42);
                assert_int_equal(got[i]->node, 7);
            }
            total++;
            cw_envelope_free(got[i]);
        }
        if (k && total < n)
            cw_queue_done(q, true); /* a partial batch: ack it and pull the rest */
    }
    return total;
}

static void test_put_take_ack(void **state)
{
    struct fixture *fx = *state;
    struct cw_queue *prod = open_queue(fx, false, 0), *cons = open_queue(fx, true, 0);
    char sent[3][CW_UUID_LEN + 1], got[3][CW_UUID_LEN + 1];
    for (int i = 0; i < 3; i++)
        put(prod, visit(fx, "c1", i + 1), sent[i]);
    assert_int_equal(take(cons, 3, got), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(got[i], sent[i]); /* the order of the puts */
    cw_queue_done(cons, true);
    cw_queue_free(cons);
    /* Acked: a new consumer (a takeover) finds nothing. */
    cons = open_queue(fx, true, 0);
    struct cw_envelope *none[4];
    assert_int_equal(cw_queue_take(cons, none, 4, 1000000), 0);
    cw_queue_free(cons);
    cw_queue_free(prod);
}

static void test_redelivery_without_ack(void **state)
{
    struct fixture *fx = *state;
    struct cw_queue *prod = open_queue(fx, false, 0), *cons = open_queue(fx, true, 0);
    char sent[2][CW_UUID_LEN + 1], got[2][CW_UUID_LEN + 1];
    put(prod, visit(fx, "c2", 1), sent[0]);
    put(prod, visit(fx, "c2", 2), sent[1]);
    assert_int_equal(take(cons, 2, got), 2);
    /* A processor that dies before its batch committed: no ack, no nak. */
    cw_queue_free(cons);
    cons = open_queue(fx, true, 0);
    memset(got, 0, sizeof(got));
    assert_int_equal(take(cons, 2, got), 2);
    assert_string_equal(got[0], sent[0]);
    assert_string_equal(got[1], sent[1]);
    /* Abandoned (done without commit): delivered again at the next take. */
    cw_queue_done(cons, false);
    memset(got, 0, sizeof(got));
    assert_int_equal(take(cons, 2, got), 2);
    assert_string_equal(got[0], sent[0]);
    cw_queue_done(cons, true);
    cw_queue_free(cons);
    cw_queue_free(prod);
}

static void test_msg_id_dedupe(void **state)
{
    struct fixture *fx = *state;
    struct cw_queue *prod = open_queue(fx, false, 0), *cons = open_queue(fx, true, 0);
    char first[CW_UUID_LEN + 1], resend[CW_UUID_LEN + 1], got[3][CW_UUID_LEN + 1];
    put(prod, visit(fx, "c3", 1), first);
    /*
     * A client's resend (same key, a new envelope): the stream drops it as
     * a duplicate, and put publishes it once more under its own uuid, so
     * the processor answers this sender from the command log.
     */
    struct cw_envelope *again = visit(fx, "c3", 1);
    put(prod, again, resend);
    /* The same envelope published again (a gateway retrying): dropped both ways. */
    struct cw_envelope *copy = visit(fx, "c3", 1);
    memcpy(copy->cmd.uuid, resend, CW_UUID_LEN + 1);
    char ignored[CW_UUID_LEN + 1];
    put(prod, copy, ignored);
    char next[CW_UUID_LEN + 1];
    put(prod, visit(fx, "c3", 2), next);
    assert_int_equal(take(cons, 3, got), 3);
    assert_string_equal(got[0], first);
    assert_string_equal(got[1], resend);
    assert_string_equal(got[2], next);
    cw_queue_done(cons, true);
    struct cw_envelope *none[4];
    assert_int_equal(cw_queue_take(cons, none, 4, 1000000), 0); /* the third put: dropped */
    cw_queue_free(cons);
    cw_queue_free(prod);
}

static void test_full_stream_refuses(void **state)
{
    struct fixture *fx = *state;
    struct cw_queue *prod = open_queue(fx, false, 3);
    char uuid[CW_UUID_LEN + 1];
    for (int i = 0; i < 3; i++)
        put(prod, visit(fx, "c4", i + 1), uuid);
    struct cw_envelope *over = visit(fx, "c4", 4);
    assert_int_equal(cw_queue_put(prod, over), CW_ERR_OVERLOADED);
    cw_envelope_free(over); /* refused: still ours */
    /* Once the processor took and acked one, there is room again. */
    struct cw_queue *cons = open_queue(fx, true, 3);
    struct cw_envelope *got[1];
    assert_int_equal(cw_queue_take(cons, got, 1, 5000000), 1);
    cw_envelope_free(got[0]);
    cw_queue_done(cons, true);
    /* The ack reaches the stream a moment after the flush: room within 5 s. */
    int rc = CW_ERR_OVERLOADED;
    for (int i = 0; i < 50 && rc == CW_ERR_OVERLOADED; i++) {
        over = visit(fx, "c4", 4);
        rc = cw_queue_put(prod, over);
        if (rc) {
            cw_envelope_free(over);
            usleep(100000);
        }
    }
    assert_int_equal(rc, CW_OK);
    cw_queue_free(cons);
    cw_queue_free(prod);
}

/* Every field of a command crosses the queue as it was, whatever its client id holds. */
static void test_fields_survive(void **state)
{
    struct fixture *fx = *state;
    struct cw_queue *prod = open_queue(fx, false, 0), *cons = open_queue(fx, true, 0);
    const char *cid = "a b:12 \"\u00e9\" - 3:x";
    json_t *data =
        json_pack("{s:s,s:[i,f,b,n],s:{s:s}}", "url", "/p q", "list", 1, 2.5, 1, "o", "k", "v\nw");
    json_t *meta = json_pack("{s:I}", "bt", (json_int_t)1234567);
    struct cw_envelope *env = cw_envelope_new(cw_domain_command(fx->d, "visit-page"), USER, cid, 99,
                                              json_incref(data), json_incref(meta), 42);
    env->cmd.received_at = 1700000000123456;
    char uuid[CW_UUID_LEN + 1];
    put(prod, env, uuid);
    struct cw_envelope *got[2];
    size_t n = cw_queue_take(cons, got, 2, 5000000);
    assert_int_equal(n, 1);
    assert_string_equal(got[0]->cmd.uuid, uuid);
    assert_string_equal(got[0]->cmd.name, "visit-page");
    assert_string_equal(got[0]->cmd.user_uuid, USER);
    assert_string_equal(got[0]->cmd.client_id, cid);
    assert_int_equal(got[0]->cmd.client_seq, 99);
    assert_int_equal(got[0]->cmd.received_at, 1700000000123456);
    assert_int_equal(got[0]->origin, 42);
    assert_int_equal(got[0]->node, 7);
    assert_true(json_equal(got[0]->cmd.data, data));
    assert_true(json_equal(got[0]->cmd.meta, meta));
    cw_envelope_free(got[0]);
    cw_queue_done(cons, true);
    json_decref(data);
    json_decref(meta);
    cw_queue_free(cons);
    cw_queue_free(prod);
}

/* A command queued by a gateway of the first version (one JSON object) is still read. */
static void test_first_format_read(void **state)
{
    struct fixture *fx = *state;
    struct cw_queue *cons = open_queue(fx, true, 0); /* creates the stream */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, fx->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    const char *text = "{\"uuid\":\"0190a4b2-0000-7000-8000-0000000000aa\",\"name\":"
                       "\"visit-page\",\"user\":\"" USER "\",\"cid\":\"old\",\"seq\":5,"
                       "\"data\":{\"url\":\"/old\"},\"meta\":{},\"at\":17,\"node\":7,"
                       "\"origin\":42}";
    assert_int_equal(js_Publish(NULL, js, "cw.commands", text, (int)strlen(text), NULL, NULL),
                     NATS_OK);
    struct cw_envelope *got[2];
    assert_int_equal(cw_queue_take(cons, got, 2, 5000000), 1);
    assert_string_equal(got[0]->cmd.uuid, "0190a4b2-0000-7000-8000-0000000000aa");
    assert_string_equal(got[0]->cmd.client_id, "old");
    assert_int_equal(got[0]->cmd.client_seq, 5);
    assert_int_equal(got[0]->cmd.received_at, 17);
    assert_string_equal(json_string_value(json_object_get(got[0]->cmd.data, "url")), "/old");
    cw_envelope_free(got[0]);
    cw_queue_done(cons, true);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    cw_queue_free(cons);
}

int main(void)
{
    if (system("command -v nats-server >/dev/null 2>&1") != 0) {
        printf("test_queue_nats: SKIPPED: nats-server is not installed "
               "(apt-get install nats-server, or tools/install-deps.sh)\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_take_ack, start_server, stop_server),
        cmocka_unit_test_setup_teardown(test_redelivery_without_ack, start_server, stop_server),
        cmocka_unit_test_setup_teardown(test_msg_id_dedupe, start_server, stop_server),
        cmocka_unit_test_setup_teardown(test_full_stream_refuses, start_server, stop_server),
        cmocka_unit_test_setup_teardown(test_fields_survive, start_server, stop_server),
        cmocka_unit_test_setup_teardown(test_first_format_read, start_server, stop_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
