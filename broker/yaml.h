/*  gbx_yaml: reading a YAML file (libfyaml) for a loader that must say
    where each error is: the config (config.h) and the policy (policy.h).

    Errors are written into the caller's buffer as
        "NAME:LINE:COL: SETTING: what is wrong"
    (NAME the file as the caller names it, line and column from 1). */
#ifndef GBX_YAML_H
#define GBX_YAML_H

#include <stddef.h>
#include <stdint.h>

#include <libfyaml.h>

#include "gbx/err.h"

/*  Where errors go. ERR may be NULL (ERRLEN 0). */
typedef struct {
    const char *name;
    char *err;
    size_t errlen;
} gbx_yaml_ctx_t;

/*  Reads the regular file NAME, at most MAX bytes, NUL-terminated
    (malloc'ed *BUF). GBX_E_IO with the reason under SETTING, GBX_E_NOMEM. */
gbx_err_t gbx_yaml_read(gbx_yaml_ctx_t *ctx, const char *setting, size_t max, char **buf,
                        size_t *len);
/*  Parses BUF (LEN bytes) into *DOC, whose root must be a mapping.
    GBX_E_MALFORMED with libfyaml's first error, or TOP (what the top level
    should hold) when the root is not a mapping; GBX_E_NOMEM. */
gbx_err_t gbx_yaml_parse(gbx_yaml_ctx_t *ctx, const char *buf, size_t len, const char *top,
                         struct fy_document **doc);

/*  Line and column (from 1) where NODE starts: its scalar token, or the
    first scalar inside it; for an empty collection, its key in a mapping;
    1:1 without a node. */
void gbx_yaml_mark(struct fy_node *node, int *line, int *col);
/*  Writes the error at LINE:COL (or where NODE starts) and returns RC. */
gbx_err_t gbx_yaml_fail_at(gbx_yaml_ctx_t *ctx, int line, int col, gbx_err_t rc,
                           const char *setting, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
gbx_err_t gbx_yaml_fail(gbx_yaml_ctx_t *ctx, struct fy_node *node, gbx_err_t rc,
                        const char *setting, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*  The text of scalar NODE (malloc'ed, NUL-terminated), or NULL if NODE is
    not a scalar or holds a NUL byte. */
char *gbx_yaml_scalar(struct fy_node *node);

/*  Numbers: an unsigned decimal, with a unit for DURATION (ms, s, min, h,
    d; the value in milliseconds) and BYTES (KiB, MiB, GiB). 0 on success,
    -1 if TEXT is not one or overflows int64. */
typedef enum { GBX_YAML_INT, GBX_YAML_DURATION, GBX_YAML_BYTES } gbx_yaml_num_t;
int gbx_yaml_number(const char *text, gbx_yaml_num_t kind, int64_t *out);

#endif
