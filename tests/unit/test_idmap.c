/*
 * test_idmap.c - the id map (src/core/idmap.h) and deletion from the string
 * map (cw_strmap_del, src/core/strmap.h): long random operation sequences
 * checked against a plain array, and hand-built probe chains (found through
 * the public table layout) where an entry in the middle of a chain, or of a
 * chain that wraps around the end of the table, is deleted.
 */
#include "core/idmap.h"
#include "core/strmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Distinct values to store: addresses inside one array. */
static char slots[1 << 16];
#define VAL(i) ((void *)&slots[(i) + 1])

/* ---------------------------------------------------------------- idmap */

#define POOL 3000

struct idref {
    uint64_t ids[POOL];
    void *vals[POOL]; /* NULL: absent */
    size_t len;
};

static void idref_init(struct idref *r)
{
    memset(r, 0, sizeof(*r));
    /* Sequential ids (as the gateway hands out), large random ones, and neighbours of both. */
    for (size_t i = 0; i < POOL; i++) {
        uint64_t id;
        bool dup;
        do {
            if (i < POOL / 3)
                id = i + 1;
            else if (i < 2 * POOL / 3)
                id = next() | 1;
            else
                id = (next() & 0xffff) << 20; /* same low bits */
            dup = id == 0;
            for (size_t k = 0; k < i && !dup; k++)
                dup = r->ids[k] == id;
        } while (dup);
        r->ids[i] = id;
    }
}

/* Every id of the pool maps to what the reference says; foreach visits each entry once. */
static void idmap_check(const struct cw_idmap *m, const struct idref *r)
{
    assert_int_equal(m->len, r->len);
    for (size_t i = 0; i < POOL; i++)
        if (cw_idmap_get(m, r->ids[i]) != r->vals[i])
            fail_msg("id %llu: got %p, expected %p", (unsigned long long)r->ids[i],
                     cw_idmap_get(m, r->ids[i]), r->vals[i]);
    static unsigned char seen[POOL];
    memset(seen, 0, sizeof(seen));
    size_t visits = 0;
    void *val;
    cw_idmap_foreach(m, idx, val)
    {
        visits++;
        uint64_t id = m->keys[idx];
        size_t k = 0;
        while (k < POOL && r->ids[k] != id)
            k++;
        if (k == POOL)
            fail_msg("foreach visited id %llu, which was never inserted", (unsigned long long)id);
        assert_ptr_equal(val, r->vals[k]);
        assert_non_null(r->vals[k]);
        seen[k]++;
    }
    assert_int_equal(visits, r->len);
    for (size_t k = 0; k < POOL; k++)
        assert_int_equal(seen[k], r->vals[k] ? 1 : 0);
    assert_null(cw_idmap_get(m, 0));
}

static void test_idmap_empty(void **state)
{
    struct cw_idmap m;
    cw_idmap_init(&m);
    assert_null(cw_idmap_get(&m, 1));
    assert_null(cw_idmap_get(&m, 0));
    assert_null(cw_idmap_del(&m, 1));
    assert_null(cw_idmap_del(&m, 0));
    size_t visits = 0;
    void *val;
    cw_idmap_foreach(&m, idx, val) visits++;
    (void)val;
    assert_int_equal(visits, 0);
    cw_idmap_release(&m);
}

static void test_idmap_basic(void **state)
{
    struct cw_idmap m;
    cw_idmap_init(&m);
    cw_idmap_put(&m, 1, VAL(1));
    cw_idmap_put(&m, 2, VAL(2));
    cw_idmap_put(&m, UINT64_MAX, VAL(3));
    assert_int_equal(m.len, 3);
    assert_ptr_equal(cw_idmap_get(&m, 1), VAL(1));
    assert_ptr_equal(cw_idmap_get(&m, 2), VAL(2));
    assert_ptr_equal(cw_idmap_get(&m, UINT64_MAX), VAL(3));
    assert_null(cw_idmap_get(&m, 3));
    assert_null(cw_idmap_get(&m, 0));
    /* Replace: same length, new value. */
    cw_idmap_put(&m, 2, VAL(20));
    assert_int_equal(m.len, 3);
    assert_ptr_equal(cw_idmap_get(&m, 2), VAL(20));
    /* Delete returns the value once. */
    assert_ptr_equal(cw_idmap_del(&m, 2), VAL(20));
    assert_null(cw_idmap_del(&m, 2));
    assert_null(cw_idmap_get(&m, 2));
    assert_int_equal(m.len, 2);
    assert_null(cw_idmap_del(&m, 0));
    assert_int_equal(m.len, 2);
    cw_idmap_release(&m);
    assert_int_equal(m.len, 0);
    assert_null(cw_idmap_get(&m, 1));
}

static void test_idmap_zero_never_found(void **state)
{
    struct cw_idmap m;
    cw_idmap_init(&m);
    for (uint64_t id = 1; id <= 1000; id++)
        cw_idmap_put(&m, id, VAL(id));
    assert_null(cw_idmap_get(&m, 0));
    assert_null(cw_idmap_del(&m, 0));
    assert_int_equal(m.len, 1000);
    for (uint64_t id = 1; id <= 1000; id++)
        assert_ptr_equal(cw_idmap_get(&m, id), VAL(id));
    /* An empty slot's key is 0: looking 0 up must not land on one and report a value. */
    for (uint64_t id = 1; id <= 1000; id += 2)
        assert_ptr_equal(cw_idmap_del(&m, id), VAL(id));
    assert_null(cw_idmap_get(&m, 0));
    assert_null(cw_idmap_del(&m, 0));
    assert_int_equal(m.len, 500);
    cw_idmap_release(&m);
}

static void test_idmap_sequential(void **state)
{
    /* The gateway's pattern: ids counting up, old ones going away. */
    struct cw_idmap m;
    cw_idmap_init(&m);
    uint64_t lo = 1, hi = 1;
    for (int step = 0; step < 200000; step++) {
        cw_idmap_put(&m, hi, VAL(hi & 0xfff));
        hi++;
        if (hi - lo > 1000) {
            assert_ptr_equal(cw_idmap_del(&m, lo), VAL(lo & 0xfff));
            lo++;
        }
    }
    assert_int_equal(m.len, hi - lo);
    for (uint64_t id = lo; id < hi; id++)
        assert_ptr_equal(cw_idmap_get(&m, id), VAL(id & 0xfff));
    assert_null(cw_idmap_get(&m, lo - 1));
    assert_null(cw_idmap_get(&m, hi));
    cw_idmap_release(&m);
}

static void test_idmap_random(void **state)
{
    static struct idref r;
    rng = 0x9e3779b97f4a7c15ull;
    idref_init(&r);
    struct cw_idmap m;
    cw_idmap_init(&m);
    for (int op = 0; op < 100000; op++) {
        size_t k = next() % POOL;
        /* Phases that mostly insert, then mostly delete, so the map grows and drains. */
        bool draining = (op / 10000) % 2;
        int insert_pct = draining ? 15 : 70, delete_pct = draining ? 70 : 25;
        int roll = (int)(next() % 100);
        if (roll < insert_pct) {
            void *v = VAL(next() % 60000);
            cw_idmap_put(&m, r.ids[k], v);
            if (!r.vals[k])
                r.len++;
            r.vals[k] = v;
        } else if (roll < insert_pct + delete_pct) {
            void *got = cw_idmap_del(&m, r.ids[k]);
            if (got != r.vals[k])
                fail_msg("op %d: del(%llu) returned %p, expected %p", op,
                         (unsigned long long)r.ids[k], got, r.vals[k]);
            if (r.vals[k])
                r.len--;
            r.vals[k] = NULL;
        } else {
            assert_ptr_equal(cw_idmap_get(&m, r.ids[k]), r.vals[k]);
        }
        assert_int_equal(m.len, r.len);
        if (op % 2000 == 0)
            idmap_check(&m, &r);
    }
    idmap_check(&m, &r);
    /* Drain completely, checking after each deletion in a stretch. */
    for (size_t k = 0; k < POOL; k++) {
        assert_ptr_equal(cw_idmap_del(&m, r.ids[k]), r.vals[k]);
        if (r.vals[k])
            r.len--;
        r.vals[k] = NULL;
        if (k % 97 == 0)
            idmap_check(&m, &r);
    }
    assert_int_equal(m.len, 0);
    idmap_check(&m, &r);
    cw_idmap_release(&m);
}

/* Index of id in m's table (it must be there). */
static size_t id_slot(const struct cw_idmap *m, uint64_t id)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] == id)
            return i;
    fail_msg("id %llu not in the table", (unsigned long long)id);
    return 0;
}

/*
 * Builds chains by hand: the home slot of an id is where it lands in an
 * empty table of the smallest size. Picks ids homed at the last slots and
 * the first ones, so the cluster wraps around the end of the table, then
 * deletes each member in turn (every position of the chain) and checks the
 * rest, and re-inserts it.
 */
static void test_idmap_chains(void **state)
{
    struct cw_idmap probe;
    cw_idmap_init(&probe);
    cw_idmap_put(&probe, 1, VAL(0));
    size_t cap = probe.cap;
    assert_true(cap >= 8);
    cw_idmap_del(&probe, 1);

    /* Homes wanted, in insertion order: a crowded run across the wrap. */
    const size_t want[] = {cap - 3, cap - 3, cap - 2, cap - 3, cap - 1, 0,
                           cap - 1, 0,       1,       cap - 2, 2,       1};
    const size_t n = sizeof(want) / sizeof(want[0]);
    assert_true(n * 2 <= cap); /* stays in this table size */
    uint64_t ids[sizeof(want) / sizeof(want[0])];
    uint64_t candidate = 1;
    for (size_t i = 0; i < n; i++) {
        for (;; candidate++) {
            cw_idmap_put(&probe, candidate, VAL(0));
            size_t home = id_slot(&probe, candidate);
            cw_idmap_del(&probe, candidate);
            if (home == want[i])
                break;
        }
        assert_int_equal(probe.cap, cap);
        ids[i] = candidate++;
    }
    cw_idmap_release(&probe);

    for (size_t victim = 0; victim < n; victim++) {
        struct cw_idmap m;
        cw_idmap_init(&m);
        for (size_t i = 0; i < n; i++)
            cw_idmap_put(&m, ids[i], VAL(i));
        assert_int_equal(m.cap, cap);
        /* The cluster really wraps: the last and the first slot are both taken. */
        assert_true(m.keys[cap - 1] != 0 && m.keys[0] != 0);
        assert_ptr_equal(cw_idmap_del(&m, ids[victim]), VAL(victim));
        assert_int_equal(m.len, n - 1);
        for (size_t i = 0; i < n; i++)
            if (cw_idmap_get(&m, ids[i]) != (i == victim ? NULL : VAL(i)))
                fail_msg("after deleting #%zu, #%zu (id %llu) is %s", victim, i,
                         (unsigned long long)ids[i], i == victim ? "still there" : "lost");
        /* Delete a second one further down, then put both back. */
        size_t second = (victim + 5) % n;
        assert_ptr_equal(cw_idmap_del(&m, ids[second]), VAL(second));
        for (size_t i = 0; i < n; i++)
            assert_ptr_equal(cw_idmap_get(&m, ids[i]), i == victim || i == second ? NULL : VAL(i));
        cw_idmap_put(&m, ids[victim], VAL(100 + victim));
        cw_idmap_put(&m, ids[second], VAL(100 + second));
        assert_int_equal(m.len, n);
        for (size_t i = 0; i < n; i++)
            assert_ptr_equal(cw_idmap_get(&m, ids[i]),
                             i == victim || i == second ? VAL(100 + i) : VAL(i));
        cw_idmap_release(&m);
    }

    /* Every deletion order of a shorter wrapped chain (all 7! = 5040). */
    enum { K = 7 };
    size_t perm[K];
    for (size_t i = 0; i < K; i++)
        perm[i] = i;
    for (;;) {
        struct cw_idmap m;
        cw_idmap_init(&m);
        for (size_t i = 0; i < K; i++)
            cw_idmap_put(&m, ids[i + 2], VAL(i));
        bool gone[K] = {false};
        for (size_t step = 0; step < K; step++) {
            assert_ptr_equal(cw_idmap_del(&m, ids[perm[step] + 2]), VAL(perm[step]));
            gone[perm[step]] = true;
            for (size_t i = 0; i < K; i++)
                assert_ptr_equal(cw_idmap_get(&m, ids[i + 2]), gone[i] ? NULL : VAL(i));
        }
        assert_int_equal(m.len, 0);
        cw_idmap_release(&m);
        /* Next permutation. */
        size_t i = K - 1;
        while (i > 0 && perm[i - 1] > perm[i])
            i--;
        if (i == 0)
            break;
        size_t j = K - 1;
        while (perm[j] < perm[i - 1])
            j--;
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
        for (size_t a = i, b = K - 1; a < b; a++, b--) {
            t = perm[a];
            perm[a] = perm[b];
            perm[b] = t;
        }
    }
}

static void test_idmap_foreach_after_growth(void **state)
{
    struct cw_idmap m;
    cw_idmap_init(&m);
    for (uint64_t id = 1; id <= 5000; id++)
        cw_idmap_put(&m, id * 1000003, VAL(id));
    static unsigned char seen[5001];
    memset(seen, 0, sizeof(seen));
    void *val;
    size_t visits = 0;
    cw_idmap_foreach(&m, idx, val)
    {
        uint64_t id = m.keys[idx] / 1000003;
        assert_int_equal(m.keys[idx] % 1000003, 0);
        assert_true(id >= 1 && id <= 5000);
        assert_ptr_equal(val, VAL(id));
        seen[id]++;
        visits++;
    }
    assert_int_equal(visits, 5000);
    for (size_t id = 1; id <= 5000; id++)
        assert_int_equal(seen[id], 1);
    cw_idmap_release(&m);
}

/* --------------------------------------------------------------- strmap */

#define SPOOL 2000

static char skeys[SPOOL][24];

struct sref {
    void *vals[SPOOL];
    size_t len;
};

static void skeys_init(void)
{
    for (size_t i = 0; i < SPOOL; i++) {
        /* Short, long, shared prefixes, one empty key. */
        if (i == 0)
            skeys[i][0] = '\0';
        else if (i % 3 == 0)
            snprintf(skeys[i], sizeof(skeys[i]), "k%zu", i);
        else if (i % 3 == 1)
            snprintf(skeys[i], sizeof(skeys[i]), "connection-%zu", i);
        else
            snprintf(skeys[i], sizeof(skeys[i]), "%zx.%zu", i * 2654435761u, i);
    }
}

static void strmap_check(const struct cw_strmap *m, const struct sref *r)
{
    assert_int_equal(m->len, r->len);
    for (size_t i = 0; i < SPOOL; i++)
        if (cw_strmap_get(m, skeys[i]) != r->vals[i])
            fail_msg("key '%s': got %p, expected %p", skeys[i], cw_strmap_get(m, skeys[i]),
                     r->vals[i]);
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++)
        used += m->keys[i] != NULL;
    assert_int_equal(used, r->len);
}

static void test_strmap_del_basic(void **state)
{
    struct cw_strmap m;
    cw_strmap_init(&m);
    assert_null(cw_strmap_del(&m, "nothing")); /* empty, never allocated */
    assert_int_equal(cw_strmap_put(&m, "a", VAL(1)), 0);
    assert_int_equal(cw_strmap_put(&m, "b", VAL(2)), 0);
    assert_ptr_equal(cw_strmap_del(&m, "a"), VAL(1));
    assert_null(cw_strmap_del(&m, "a"));
    assert_null(cw_strmap_get(&m, "a"));
    assert_ptr_equal(cw_strmap_get(&m, "b"), VAL(2));
    assert_int_equal(m.len, 1);
    /* A deleted key can be put again (put refuses only present keys). */
    assert_int_equal(cw_strmap_put(&m, "a", VAL(3)), 0);
    assert_int_equal(cw_strmap_put(&m, "a", VAL(4)), -1);
    assert_ptr_equal(cw_strmap_get(&m, "a"), VAL(3));
    /* Deletion compares whole keys: a prefix or extension is another key. */
    assert_null(cw_strmap_del(&m, "aa"));
    assert_null(cw_strmap_del(&m, ""));
    assert_int_equal(m.len, 2);
    /* The key is matched by content, not by pointer. */
    char copy[] = "b";
    assert_ptr_equal(cw_strmap_del(&m, copy), VAL(2));
    assert_int_equal(m.len, 1);
    cw_strmap_release(&m);
}

static void test_strmap_random(void **state)
{
    static struct sref r;
    memset(&r, 0, sizeof(r));
    skeys_init();
    rng = 0x0123456789abcdefull;
    struct cw_strmap m;
    cw_strmap_init(&m);
    for (int op = 0; op < 100000; op++) {
        size_t k = next() % SPOOL;
        bool draining = (op / 10000) % 2;
        int insert_pct = draining ? 15 : 70, delete_pct = draining ? 70 : 25;
        int roll = (int)(next() % 100);
        if (roll < insert_pct) {
            void *v = VAL(next() % 60000);
            int rc = cw_strmap_put(&m, skeys[k], v);
            if (r.vals[k]) {
                assert_int_equal(rc, -1); /* present: unchanged */
            } else {
                assert_int_equal(rc, 0);
                r.vals[k] = v;
                r.len++;
            }
        } else if (roll < insert_pct + delete_pct) {
            void *got = cw_strmap_del(&m, skeys[k]);
            if (got != r.vals[k])
                fail_msg("op %d: del('%s') returned %p, expected %p", op, skeys[k], got, r.vals[k]);
            if (r.vals[k])
                r.len--;
            r.vals[k] = NULL;
        } else {
            assert_ptr_equal(cw_strmap_get(&m, skeys[k]), r.vals[k]);
            /* getn with the key inside longer text. */
            char longer[40];
            snprintf(longer, sizeof(longer), "%s#tail", skeys[k]);
            assert_ptr_equal(cw_strmap_getn(&m, longer, strlen(skeys[k])), r.vals[k]);
        }
        assert_int_equal(m.len, r.len);
        if (op % 2000 == 0)
            strmap_check(&m, &r);
    }
    strmap_check(&m, &r);
    for (size_t k = 0; k < SPOOL; k++) {
        assert_ptr_equal(cw_strmap_del(&m, skeys[k]), r.vals[k]);
        if (r.vals[k])
            r.len--;
        r.vals[k] = NULL;
        if (k % 89 == 0)
            strmap_check(&m, &r);
    }
    assert_int_equal(m.len, 0);
    strmap_check(&m, &r);
    cw_strmap_release(&m);
}

static size_t key_slot(const struct cw_strmap *m, const char *key)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && strcmp(m->keys[i], key) == 0)
            return i;
    fail_msg("key '%s' not in the table", key);
    return 0;
}

/* As test_idmap_chains, for strings: a cluster across the end of the table. */
static void test_strmap_chains(void **state)
{
    struct cw_strmap probe;
    cw_strmap_init(&probe);
    assert_int_equal(cw_strmap_put(&probe, "x", VAL(0)), 0);
    size_t cap = probe.cap;
    assert_true(cap >= 8);
    cw_strmap_del(&probe, "x");

    size_t want[] = {cap - 2, cap - 1, cap - 2, 0, cap - 1, 1};
    enum { N = sizeof(want) / sizeof(want[0]) };
    assert_true(N * 2 <= cap);
    static char names[N][16];
    unsigned candidate = 0;
    for (size_t i = 0; i < N; i++) {
        for (;; candidate++) {
            snprintf(names[i], sizeof(names[i]), "c%u", candidate);
            assert_int_equal(cw_strmap_put(&probe, names[i], VAL(0)), 0);
            size_t home = key_slot(&probe, names[i]);
            cw_strmap_del(&probe, names[i]);
            if (home == want[i])
                break;
        }
        assert_int_equal(probe.cap, cap);
        candidate++;
    }
    cw_strmap_release(&probe);

    /* Each member deleted from a full cluster; then every pair in both orders. */
    for (size_t a = 0; a < N; a++) {
        for (size_t b = 0; b < N; b++) {
            struct cw_strmap m;
            cw_strmap_init(&m);
            for (size_t i = 0; i < N; i++)
                assert_int_equal(cw_strmap_put(&m, names[i], VAL(i)), 0);
            assert_int_equal(m.cap, cap);
            assert_true(m.keys[cap - 1] != NULL && m.keys[0] != NULL);
            assert_ptr_equal(cw_strmap_del(&m, names[a]), VAL(a));
            for (size_t i = 0; i < N; i++)
                if (cw_strmap_get(&m, names[i]) != (i == a ? NULL : VAL(i)))
                    fail_msg("after deleting '%s', '%s' is %s", names[a], names[i],
                             i == a ? "still there" : "lost");
            if (b != a) {
                assert_ptr_equal(cw_strmap_del(&m, names[b]), VAL(b));
                for (size_t i = 0; i < N; i++)
                    assert_ptr_equal(cw_strmap_get(&m, names[i]), i == a || i == b ? NULL : VAL(i));
                assert_int_equal(cw_strmap_put(&m, names[b], VAL(50)), 0);
            }
            assert_int_equal(cw_strmap_put(&m, names[a], VAL(60)), 0);
            for (size_t i = 0; i < N; i++)
                assert_ptr_equal(cw_strmap_get(&m, names[i]),
                                 i == a ? VAL(60) : (i == b ? VAL(50) : VAL(i)));
            assert_int_equal(m.len, N);
            cw_strmap_release(&m);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_empty),
        cmocka_unit_test(test_idmap_basic),
        cmocka_unit_test(test_idmap_zero_never_found),
        cmocka_unit_test(test_idmap_sequential),
        cmocka_unit_test(test_idmap_random),
        cmocka_unit_test(test_idmap_chains),
        cmocka_unit_test(test_idmap_foreach_after_growth),
        cmocka_unit_test(test_strmap_del_basic),
        cmocka_unit_test(test_strmap_random),
        cmocka_unit_test(test_strmap_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
