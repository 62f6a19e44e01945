/*  test_err: gbx_err_t (include/gbx/err.h) against the wire enum Reason of
    proto/gbx/v1/envelope.proto and the table of proto/spec/4-reasons.md.

    Cases:
      proto_reasons_are_errors   every Reason value is a gbx_err_t of the same number,
                                 the same name, on the wire
      wire_errors_are_reasons    every on-wire gbx_err_t is a Reason value
      local_errors_off_wire      9xx codes are not on the wire and not Reasons
      unknown_codes              a number that is no code is "UNKNOWN", off the wire
      spec_table_matches_proto   4-reasons.md has one table whose (number, NAME) rows
                                 equal the Reason enum exactly */
#include "tu_cmocka.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define S_REASONS_MD GBX_SOURCE_DIR "/proto/spec/4-reasons.md"

/* Every gbx_err_t, from the X-macro table of err.h. */
typedef struct {
    int num;
    int wire;
    const char *name;
} s_code_t;

static const s_code_t s_codes[] = {
#define S_ROW_(name, num, wire, text) {num, wire, #name},
    GBX_ERRORS(S_ROW_)
#undef S_ROW_
};
#define S_NCODES (sizeof s_codes / sizeof s_codes[0])

static const ProtobufCEnumDescriptor *s_reason = &gbx__v1__reason__descriptor;

static const ProtobufCEnumValue *s_reason_by_number(int num)
{
    for (unsigned i = 0; i < s_reason->n_values; i++)
        if (s_reason->values[i].value == num)
            return &s_reason->values[i];
    return NULL;
}

static void test_proto_reasons_are_errors(void **state)
{
    assert_true(s_reason->n_values > 0);
    for (unsigned i = 0; i < s_reason->n_values; i++) {
        const ProtobufCEnumValue *v = &s_reason->values[i];
        const s_code_t *c = NULL;
        for (size_t k = 0; k < S_NCODES; k++)
            if (s_codes[k].num == v->value)
                c = &s_codes[k];
        if (!c)
            fail_msg("Reason %s = %d has no gbx_err_t", v->name, v->value);
        if (strcmp(gbx_err_name((gbx_err_t)v->value), v->name) != 0)
            fail_msg("Reason %d: gbx_err_name gives %s, the proto says %s", v->value,
                     gbx_err_name((gbx_err_t)v->value), v->name);
        if (gbx_err_on_wire((gbx_err_t)v->value) != 1)
            fail_msg("Reason %s = %d: gbx_err_on_wire is not 1", v->name, v->value);
        assert_non_null(gbx_strerror((gbx_err_t)v->value));
        assert_string_not_equal(gbx_strerror((gbx_err_t)v->value), "unknown error");
    }
}

static void test_wire_errors_are_reasons(void **state)
{
    size_t on_wire = 0;
    for (size_t k = 0; k < S_NCODES; k++) {
        const s_code_t *c = &s_codes[k];
        assert_int_equal(gbx_err_on_wire((gbx_err_t)c->num), c->wire);
        assert_string_equal(gbx_err_name((gbx_err_t)c->num), c->name);
        if (!c->wire)
            continue;
        on_wire++;
        const ProtobufCEnumValue *v = s_reason_by_number(c->num);
        if (!v)
            fail_msg("GBX_E_%s = %d is on the wire but not in enum Reason", c->name, c->num);
        assert_string_equal(v->name, c->name);
    }
    assert_int_equal(on_wire, s_reason->n_values);
}

static void test_local_errors_off_wire(void **state)
{
    for (size_t k = 0; k < S_NCODES; k++) {
        const s_code_t *c = &s_codes[k];
        int local = c->num >= 900 && c->num <= 999;
        if (local != !c->wire)
            fail_msg("GBX_E_%s = %d: on_wire=%d, but 9xx codes and only they stay local", c->name,
                     c->num, c->wire);
        if (local && s_reason_by_number(c->num))
            fail_msg("local code GBX_E_%s = %d is in enum Reason", c->name, c->num);
    }
}

static void test_unknown_codes(void **state)
{
    static const int nums[] = {-1, 1, 99, 107, 199, 299, 999, 1000, 100000};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        assert_string_equal(gbx_err_name((gbx_err_t)nums[i]), "UNKNOWN");
        assert_int_equal(gbx_err_on_wire((gbx_err_t)nums[i]), 0);
        assert_non_null(gbx_strerror((gbx_err_t)nums[i]));
    }
}

/* ------------------------------------------------------- the spec's table */

typedef struct {
    int num;
    char name[64];
} s_row_t;

/*  Splits a markdown table line into trimmed cells (without the outer
    pipes). Returns the number of cells, at most MAX. */
static int s_cells(char *line, char *cells[], int max)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '|')
        return 0;
    p++;
    int n = 0;
    while (*p && n < max) {
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        char *c = p;
        while (*c == ' ' || *c == '\t')
            c++;
        size_t len = strlen(c);
        while (len > 0 && (c[len - 1] == ' ' || c[len - 1] == '\t'))
            c[--len] = '\0';
        /* `NAME` and **NAME** are the same name */
        while (len >= 2 &&
               ((c[0] == '`' && c[len - 1] == '`') || (c[0] == '*' && c[len - 1] == '*'))) {
            c[len - 1] = '\0';
            c++;
            len -= 2;
        }
        cells[n++] = c;
        p = bar + 1;
    }
    return n;
}

static int s_is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static void test_spec_table_matches_proto(void **state)
{
    FILE *f = fopen(S_REASONS_MD, "r");
    if (!f)
        fail_msg("cannot open %s: the reason table of the spec is missing (err.h and "
                 "envelope.proto name it as the table of reason codes)",
                 S_REASONS_MD);
    s_row_t rows[256];
    size_t nrows = 0;
    int tables = 0, in_reason_table = 0; /* a table: consecutive lines starting with '|' */
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", line);
        copy[strcspn(copy, "\r\n")] = '\0';
        char *cells[16];
        int n = s_cells(copy, cells, 16);
        if (n == 0) {
            in_reason_table = 0;
            continue;
        }
        if (n >= 2 && s_is_number(cells[0])) {
            if (!in_reason_table) {
                in_reason_table = 1;
                tables++;
            }
            if (tables > 1)
                continue; /* reported below */
            if (nrows == sizeof rows / sizeof rows[0])
                fail_msg("%s: more than %zu rows", S_REASONS_MD, nrows);
            rows[nrows].num = atoi(cells[0]);
            snprintf(rows[nrows].name, sizeof rows[nrows].name, "%s", cells[1]);
            for (size_t k = 0; k < nrows; k++)
                if (rows[k].num == rows[nrows].num)
                    fail_msg("%s:%d: number %d appears twice", S_REASONS_MD, lineno,
                             rows[nrows].num);
            nrows++;
        }
    }
    fclose(f);
    if (tables == 0)
        fail_msg("%s: no table with rows \"| <number> | <NAME> | ...\"", S_REASONS_MD);
    if (tables > 1)
        fail_msg("%s: %d tables with \"| <number> | <NAME> |\" rows; the spec has one reason "
                 "table",
                 S_REASONS_MD, tables);

    int bad = 0;
    for (size_t k = 0; k < nrows; k++) {
        const ProtobufCEnumValue *v = s_reason_by_number(rows[k].num);
        if (!v) {
            print_error("spec row %d %s: not in enum Reason\n", rows[k].num, rows[k].name);
            bad++;
        } else if (strcmp(v->name, rows[k].name) != 0) {
            print_error("spec row %d: spec says %s, enum Reason says %s\n", rows[k].num,
                        rows[k].name, v->name);
            bad++;
        }
    }
    for (unsigned i = 0; i < s_reason->n_values; i++) {
        int found = 0;
        for (size_t k = 0; k < nrows; k++)
            found |= rows[k].num == s_reason->values[i].value;
        if (!found) {
            print_error("enum Reason %s = %d: no row in the spec table\n", s_reason->values[i].name,
                        s_reason->values[i].value);
            bad++;
        }
    }
    if (bad)
        fail_msg("%s and enum Reason differ in %d places (listed above)", S_REASONS_MD, bad);
    assert_int_equal(nrows, s_reason->n_values);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_reasons_are_errors),
        cmocka_unit_test(test_wire_errors_are_reasons),
        cmocka_unit_test(test_local_errors_off_wire),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_spec_table_matches_proto),
    };
    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
