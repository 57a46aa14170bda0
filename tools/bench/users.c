/*
 * users.c - logging in, and creating the extra users of --users U.
 *
 * Connections are spread round-robin over U sessions: the main user
 * (--email, --password) and U-1 users named by --user-pattern
 * (bench-%d@bench.test, %d = 1..U-1) with the same password. With
 * --create-users (the default) those are registered first through
 * `register-user` commands sent over one WebSocket of the main user, so the
 * benchmark can run against a server that is already up; a user that
 * exists is answered `rejected` / `email-taken`, which is fine. Each user
 * then logs in with POST /login (JSON). A 429 from the login rate limit is
 * waited out (Retry-After), within a bounded time; run-suite.sh starts the
 * server with a login limit high enough for 50 users.
 */
#include "bench.h"
#include "clock.h"
#include "http.h"
#include "scan.h"
#include "ws.h"
#include "wsblock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOGIN_TIMEOUT_S 120

static void json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = 0;
}

static int await_session(const struct bench_opts *o, const char *cookie);

static int login(const struct bench_opts *o, const char *email, char *cookie, size_t cap)
{
    char e[600], p[2100], body[2800], req[4096];
    json_escape(e, sizeof(e), email);
    json_escape(p, sizeof(p), o->password);
    int blen = snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", e, p);
    int len = snprintf(req, sizeof(req),
                       "POST /login HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                       o->target.host, o->target.port, blen, body);
    int64_t deadline = now_ns() + LOGIN_TIMEOUT_S * NS_PER_S;
    while (now_ns() < deadline) {
        char *ans = NULL;
        size_t alen = 0;
        struct http_resp r;
        if (http_exchange(&o->target, req, (size_t)len, &ans, &alen, &r, 30000)) {
            fprintf(stderr, "calderwood-bench: POST /login to %s:%d failed: %s\n", o->target.host,
                    o->target.port, strerror(errno ? errno : ETIMEDOUT));
            return -1;
        }
        if (r.status == 429) {
            char v[32] = "1";
            http_header(ans, alen, "retry-after", v, sizeof(v));
            free(ans);
            int wait = atoi(v) > 0 ? atoi(v) : 1;
            sleep_ns(wait * NS_PER_S);
            continue;
        }
        char sc[1024];
        /* The first Set-Cookie is the session (the only one the server sends on login). */
        bool have = r.status == 200 && http_header(ans, alen, "set-cookie", sc, sizeof(sc)) &&
                    !strncmp(sc, "cw_session=", 11);
        if (!have) {
            fprintf(stderr, "calderwood-bench: login as %s answered %d: %.*s\n", email, r.status,
                    (int)r.body_len, ans + r.body_off);
            free(ans);
            return -1;
        }
        sc[strcspn(sc, ";")] = 0;
        snprintf(cookie, cap, "%s", sc);
        free(ans);
        return await_session(o, cookie);
    }
    fprintf(stderr, "calderwood-bench: login as %s still rate-limited after %d s\n", email,
            LOGIN_TIMEOUT_S);
    return -1;
}

/*
 * Behind a load balancer the login may be answered by one gateway before
 * the others know the session (it travels with the feed once committed),
 * and an upgrade on another answers 401 meanwhile. So the session is tried
 * until it opens twice in a row (round robin: on two gateways). One server
 * opens it at once.
 */
static int await_session(const struct bench_opts *o, const char *cookie)
{
    int64_t deadline = now_ns() + 10 * NS_PER_S;
    int ok = 0, status = 0;
    while (ok < 2 && now_ns() < deadline) {
        struct wsblock w;
        if (!wsb_try_open(&w, &o->target, cookie, 5000, &status)) {
            wsb_close(&w);
            ok++;
        } else {
            ok = 0;
            sleep_ns(20 * NS_PER_MS);
        }
    }
    if (ok < 2)
        fprintf(stderr, "calderwood-bench: the session does not open /ws (HTTP status %d)\n",
                status);
    return ok < 2 ? -1 : 0;
}

static int create_users(const struct bench_opts *o, const char *cookie)
{
    int64_t deadline = now_ns() + 300 * NS_PER_S;
    struct wsblock w;
    if (wsb_open(&w, &o->target, cookie, 10000))
        return -1;
    int rc = -1;
    uint64_t rng = (uint64_t)now_ns() | 1;
    char cid[64];
    snprintf(cid, sizeof(cid), "bench-setup-%llx", (unsigned long long)ws_rand(&rng));
    char pw[2100];
    json_escape(pw, sizeof(pw), o->password);
    for (int u = 1; u < o->users; u++) {
        char email[256], e[600], msg[4096];
        snprintf(email, sizeof(email), o->user_pattern, u);
        json_escape(e, sizeof(e), email);
        int n =
            snprintf(msg, sizeof(msg),
                     "[\"cmd\",\"%s\",%d,{\"name\":\"register-user\",\"data\":{\"email\":\"%s\","
                     "\"first_name\":\"Bench\",\"last_name\":\"User %d\",\"password\":\"%s\"}}]",
                     cid, u, e, u, pw);
        if (wsb_send(&w, msg, (size_t)n))
            goto out;
    }
    int done = 0, created = 0, existed = 0;
    while (done < o->users - 1) {
        struct ws_frame f;
        if (wsb_read(&w, &f, deadline)) {
            fprintf(stderr, "calderwood-bench: no answer to register-user (%d of %d answered)\n",
                    done, o->users - 1);
            goto out;
        }
        struct msg m;
        if (f.opcode == WS_CLOSE)
            goto out;
        if (f.opcode != WS_TEXT || !scan_msg(f.payload, f.len, &m) || !m.cid ||
            m.cid_len != strlen(cid) || memcmp(m.cid, cid, m.cid_len))
            continue;
        char code[64] = "";
        if (m.type == MSG_UPDATE) {
            done++;
            created++;
        } else if (m.type == MSG_REJECTED || m.type == MSG_ERROR) {
            scan_code(m.rest, m.rest_len, code, sizeof(code));
            if (strcmp(code, "email-taken")) {
                fprintf(stderr, "calderwood-bench: register-user %lld: %.*s\n", (long long)m.seq,
                        (int)f.len, f.payload);
                goto out;
            }
            done++;
            existed++;
        }
    }
    if (!o->quiet)
        fprintf(stderr, "calderwood-bench: users: %d registered, %d already there\n", created,
                existed);
    rc = 0;
out:
    wsb_close(&w);
    return rc;
}

int bench_sessions(const struct bench_opts *o, struct sessions *s)
{
    s->n = o->users < 1 ? 1 : o->users;
    s->cookies = xcalloc((size_t)s->n, sizeof(char *));
    char cookie[1024];
    if (login(o, o->email, cookie, sizeof(cookie)))
        return -1;
    s->cookies[0] = xstrdup(cookie);
    if (s->n > 1 && o->create_users && create_users(o, s->cookies[0]))
        return -1;
    for (int u = 1; u < s->n; u++) {
        char email[256];
        snprintf(email, sizeof(email), o->user_pattern, u);
        if (login(o, email, cookie, sizeof(cookie)))
            return -1;
        s->cookies[u] = xstrdup(cookie);
    }
    return 0;
}

void bench_sessions_free(struct sessions *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->cookies[i]);
    free(s->cookies);
    s->cookies = NULL;
    s->n = 0;
}
