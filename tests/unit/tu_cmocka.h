/*  tu_cmocka.h: cmocka and the assertions the unit tests share. */
#ifndef GBX_TU_CMOCKA_H
#define GBX_TU_CMOCKA_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "testutil.h"

/*  Asserts that an expression yields the gbx_err_t WANT, naming both codes. */
#define assert_rc(expr, want)                                                                      \
    do {                                                                                           \
        gbx_err_t got_ = (expr), want_ = (want);                                                   \
        if (got_ != want_)                                                                         \
            fail_msg("%s: got %s (%d), want %s (%d)", #expr, gbx_err_name(got_), (int)got_,        \
                     gbx_err_name(want_), (int)want_);                                             \
    } while (0)

/*  The same, with the name of the table case that failed. */
#define assert_case_rc(case_name, got, want)                                                       \
    do {                                                                                           \
        gbx_err_t got_ = (got), want_ = (want);                                                    \
        if (got_ != want_)                                                                         \
            fail_msg("case \"%s\": got %s (%d), want %s (%d)", (case_name), gbx_err_name(got_),    \
                     (int)got_, gbx_err_name(want_), (int)want_);                                  \
    } while (0)

/*  For tables: reports a case whose result differs and counts it in FAILS, so
    that one run lists every failing case; the test fails at its end. */
#define check_case_rc(fails, case_name, got, want)                                                 \
    do {                                                                                           \
        gbx_err_t got_ = (got), want_ = (want);                                                    \
        if (got_ != want_) {                                                                       \
            print_error("case \"%s\": got %s (%d), want %s (%d)\n", (case_name),                   \
                        gbx_err_name(got_), (int)got_, gbx_err_name(want_), (int)want_);           \
            (fails)++;                                                                             \
        }                                                                                          \
    } while (0)

/*  1 when GBX_TEST_QUICK=1 (skips the 64 MiB payload, e.g. under valgrind). */
static inline int tu_quick(void)
{
    const char *q = getenv("GBX_TEST_QUICK");
    return q && *q && *q != '0';
}

#endif
