/*  yaml.c: owns the reading of YAML files with places for errors
    (yaml.h). */
#include "yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static gbx_err_t s_vfail_at(gbx_yaml_ctx_t *ctx, int line, int col, gbx_err_t rc,
                            const char *setting, const char *fmt, va_list ap)
{
    if (ctx->err && ctx->errlen) {
        int n = snprintf(ctx->err, ctx->errlen, "%s:%d:%d: %s: ", ctx->name, line, col, setting);
        if (n >= 0 && (size_t)n < ctx->errlen)
            vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
    }
    return rc;
}

gbx_err_t gbx_yaml_fail_at(gbx_yaml_ctx_t *ctx, int line, int col, gbx_err_t rc,
                           const char *setting, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = s_vfail_at(ctx, line, col, rc, setting, fmt, ap);
    va_end(ap);
    return rc;
}

gbx_err_t gbx_yaml_fail(gbx_yaml_ctx_t *ctx, struct fy_node *node, gbx_err_t rc,
                        const char *setting, const char *fmt, ...)
{
    int line, col;
    gbx_yaml_mark(node, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    rc = s_vfail_at(ctx, line, col, rc, setting, fmt, ap);
    va_end(ap);
    return rc;
}

void gbx_yaml_mark(struct fy_node *node, int *line, int *col)
{
    *line = 1, *col = 1;
    /* an empty collection has no scalar: the key it is the value of */
    struct fy_node *parent = node ? fy_node_get_parent(node) : NULL;
    if (parent && fy_node_get_type(node) != FYNT_SCALAR &&
        fy_node_get_type(parent) == FYNT_MAPPING &&
        (fy_node_get_type(node) == FYNT_SEQUENCE ? fy_node_sequence_item_count(node)
                                                 : fy_node_mapping_item_count(node)) == 0) {
        void *it = NULL;
        struct fy_node_pair *p;
        while ((p = fy_node_mapping_iterate(parent, &it)) != NULL)
            if (fy_node_pair_value(p) == node) {
                node = fy_node_pair_key(p);
                break;
            }
    }
    while (node) {
        void *it = NULL;
        switch (fy_node_get_type(node)) {
        case FYNT_SCALAR: {
            struct fy_token *t = fy_node_get_scalar_token(node);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (m)
                *line = m->line + 1, *col = m->column + 1;
            return;
        }
        case FYNT_MAPPING: {
            struct fy_node_pair *p = fy_node_mapping_iterate(node, &it);
            node = p ? fy_node_pair_key(p) : NULL;
            break;
        }
        case FYNT_SEQUENCE:
            node = fy_node_sequence_iterate(node, &it);
            break;
        default:
            return;
        }
    }
}

char *gbx_yaml_scalar(struct fy_node *node)
{
    size_t len = 0;
    const char *s =
        node && fy_node_get_type(node) == FYNT_SCALAR ? fy_node_get_scalar(node, &len) : NULL;
    if (!s || memchr(s, '\0', len))
        return NULL;
    return strndup(s, len);
}

typedef struct {
    const char *suffix;
    int64_t mult;
} s_unit_t;

static const s_unit_t s_duration_units[] = {{"ms", 1},      {"s", 1000},     {"min", 60000},
                                            {"h", 3600000}, {"d", 86400000}, {NULL, 0}};
static const s_unit_t s_bytes_units[] = {
    {"KiB", 1024}, {"MiB", INT64_C(1024) * 1024}, {"GiB", INT64_C(1024) * 1024 * 1024}, {NULL, 0}};

int gbx_yaml_number(const char *text, gbx_yaml_num_t kind, int64_t *out)
{
    const s_unit_t *units = kind == GBX_YAML_DURATION ? s_duration_units
                            : kind == GBX_YAML_BYTES  ? s_bytes_units
                                                      : NULL;
    const char *p = text;
    int64_t v = 0;
    if (!p || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    int64_t mult = 1;
    if (*p) {
        const s_unit_t *u = units;
        while (u && u->suffix && strcmp(p, u->suffix) != 0)
            u++;
        if (!u || !u->suffix)
            return -1;
        mult = u->mult;
    }
    if (v > INT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

gbx_err_t gbx_yaml_read(gbx_yaml_ctx_t *ctx, const char *setting, size_t max, char **buf_out,
                        size_t *len_out)
{
    gbx_err_t rc = GBX_OK;
    char *buf = NULL;
    FILE *f = fopen(ctx->name, "re");
    if (!f)
        return gbx_yaml_fail_at(ctx, 1, 1, GBX_E_IO, setting, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        rc = gbx_yaml_fail_at(ctx, 1, 1, GBX_E_IO, setting,
                              "not a regular file of at most %zu bytes", max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    size_t len = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        rc = gbx_yaml_fail_at(ctx, 1, 1, GBX_E_IO, setting, "read failed: %s", strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

static void s_diag_drop(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

gbx_err_t gbx_yaml_parse(gbx_yaml_ctx_t *ctx, const char *buf, size_t len, const char *top,
                         struct fy_document **doc_out)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = s_diag_drop;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        return GBX_E_NOMEM;
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&cfg, buf, len);
    gbx_err_t rc = GBX_OK;
    if (!doc) {
        void *it = NULL;
        struct fy_diag_error *de = fy_diag_errors_iterate(diag, &it);
        if (de)
            rc = gbx_yaml_fail_at(ctx, de->line, de->column, GBX_E_MALFORMED, "yaml", "%s",
                                  de->msg ? de->msg : "syntax error");
        else
            rc = gbx_yaml_fail_at(ctx, 1, 1, GBX_E_MALFORMED, "yaml", "syntax error");
    } else if (!fy_document_root(doc) || fy_node_get_type(fy_document_root(doc)) != FYNT_MAPPING) {
        rc = gbx_yaml_fail(ctx, fy_document_root(doc), GBX_E_MALFORMED, "yaml",
                           "the top level must be a mapping (%s)", top);
    }
    fy_diag_destroy(diag);
    if (rc != GBX_OK)
        fy_document_destroy(doc);
    else
        *doc_out = doc;
    return rc;
}
