/*  audit.c: owns the text form of audit records. */
#include "audit.h"

#include <stdio.h>
#include <string.h>

#include "gbx/checkpoint.h" /* gbx_hex */

void gbx_audit_begin(gbx_audit_t *rec, const char *event, uint64_t at_ms)
{
    rec->len = 0;
    gbx_audit_str(rec, "v", "1");
    gbx_audit_str(rec, "event", event);
    gbx_audit_u64(rec, "at_ms", at_ms);
}

/*  key=value with the bytes of VALUE from LO to 0x7e kept, others '?'.
    Plain copies, no printf: a message's records are formatted in the
    writer, on the broker's critical path. */
static void s_put(gbx_audit_t *rec, const char *key, const char *value, unsigned char lo)
{
    size_t klen = strlen(key);
    if (klen + 3 > sizeof rec->buf - rec->len)
        return;
    memcpy(rec->buf + rec->len, key, klen);
    rec->len += klen;
    rec->buf[rec->len++] = '=';
    if (!value)
        value = "-";
    for (const char *p = value; *p && rec->len + 2 < sizeof rec->buf; p++) {
        unsigned char c = (unsigned char)*p;
        rec->buf[rec->len++] = (c >= lo && c <= 0x7e) ? (char)c : '?';
    }
    rec->buf[rec->len++] = '\n';
}

void gbx_audit_str(gbx_audit_t *rec, const char *key, const char *value)
{
    s_put(rec, key, value, 0x21);
}

void gbx_audit_text(gbx_audit_t *rec, const char *key, const char *value)
{
    s_put(rec, key, value, 0x20);
}

void gbx_audit_u64(gbx_audit_t *rec, const char *key, uint64_t value)
{
    char num[24], *p = num + sizeof num;
    *--p = '\0';
    do
        *--p = (char)('0' + value % 10);
    while ((value /= 10) != 0);
    gbx_audit_str(rec, key, p);
}

void gbx_audit_hex(gbx_audit_t *rec, const char *key, const uint8_t *bin, size_t len)
{
    char hex[2 * 64 + 1];
    if (len > 64)
        len = 64;
    gbx_hex(bin, len, hex);
    gbx_audit_str(rec, key, hex);
}

gbx_err_t gbx_audit_put(gbx_batch_t *batch, const gbx_audit_t *rec)
{
    if (!batch || !rec)
        return GBX_E_ARG;
#ifdef GBX_BENCH_NO_AUDIT /* the benchmark's "without" broker (CMakeLists.txt) */
    return GBX_OK;
#else
    return gbx_batch_append(batch, rec->buf, rec->len);
#endif
}

const char *gbx_audit_field(const char *text, size_t len, const char *key, size_t *vlen)
{
    if (!text || !key || !vlen)
        return NULL;
    size_t k = strlen(key);
    for (size_t at = 0; at < len;) {
        const char *line = text + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t l = nl ? (size_t)(nl - line) : len - at;
        if (l > k && memcmp(line, key, k) == 0 && line[k] == '=') {
            *vlen = l - k - 1;
            return line + k + 1;
        }
        at += l + 1;
    }
    return NULL;
}
