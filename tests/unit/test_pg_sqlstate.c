/*
 * test_pg_sqlstate.c - which PostgreSQL errors the processor waits out and
 * retries, and which are final (cw_pg_transient, src/store/store_pg.c).
 * Issue 10 names the transient ones; a constraint violation or an error in
 * the SQL must never be retried.
 */
#include "store/backend.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_transient(void **state)
{
    static const char *const states[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "57P01", /* admin_shutdown */
        "57P02", /* crash_shutdown */
        "57P03", /* cannot_connect_now */
        "53100", /* disk_full */
        "53200", /* out_of_memory */
        "53300", /* too_many_connections */
        "57014", /* query_canceled: statement_timeout */
        "55P03", /* lock_not_available: lock_timeout */
        "08006", /* connection_failure */
        "08001", /* sqlclient_unable_to_establish_sqlconnection */
        "58030", /* io_error */
    };
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (!cw_pg_transient(states[i]))
            fail_msg("%s should be transient", states[i]);
    /* No SQLSTATE at all: libpq's own error, the connection is gone. */
    assert_true(cw_pg_transient(NULL));
}

static void test_permanent(void **state)
{
    static const char *const states[] = {
        "23505", /* unique_violation */
        "23502", /* not_null_violation */
        "23503", /* foreign_key_violation */
        "42601", /* syntax_error */
        "42P01", /* undefined_table */
        "22P02", /* invalid_text_representation */
        "25P02", /* in_failed_sql_transaction */
        "40002", /* transaction_integrity_constraint_violation: class 40, not retried */
        "55000", /* object_not_in_prerequisite_state: class 55, only 55P03 is a wait */
        "57000", /* operator_intervention: class 57, only the named ones are */
    };
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (cw_pg_transient(states[i]))
            fail_msg("%s should be permanent", states[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transient),
        cmocka_unit_test(test_permanent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
