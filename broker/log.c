/*  log.c: owns the format of gbxd's log lines (log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_LINE_MAX 4096

static _Atomic int s_level = GBX_LOG_INFO;

static const char *const s_names[] = {"debug", "info", "warn", "error"};

void gbx_log_set_level(gbx_log_level_t level)
{
    atomic_store(&s_level, (int)level);
}

int gbx_log_level_parse(const char *text, gbx_log_level_t *out)
{
    for (int i = 0; text && i < 4; i++)
        if (strcmp(text, s_names[i]) == 0) {
            *out = (gbx_log_level_t)i;
            return 0;
        }
    return -1;
}

int gbx_log_enabled(gbx_log_level_t level)
{
    return (int)level >= atomic_load(&s_level);
}

/*  "ts=2026-12-04T23:16:13.123Z level=info id=ID" into BUF; its length. */
static size_t s_prefix(char *buf, size_t cap, gbx_log_level_t level, const char *id, size_t idlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s id=%.*s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, s_names[level & 3], (int)idlen, id);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void s_write(char *buf, size_t len)
{
    if (len > S_LINE_MAX - 1)
        len = S_LINE_MAX - 1;
    buf[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - off);
        if (w <= 0)
            return; /* nowhere to report it */
        off += (size_t)w;
    }
}

void gbx_log(gbx_log_level_t level, const char *id, const char *fmt, ...)
{
    if (!gbx_log_enabled(level))
        return;
    char buf[S_LINE_MAX];
    size_t len = s_prefix(buf, sizeof buf, level, id, strlen(id));
    if (fmt && *fmt && len + 1 < sizeof buf) {
        buf[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + len, sizeof buf - len, fmt, ap);
        va_end(ap);
        if (n > 0)
            len += (size_t)n < sizeof buf - len ? (size_t)n : sizeof buf - len - 1;
    }
    s_write(buf, len);
}

void gbx_log_line(gbx_log_level_t level, const char *line)
{
    if (!gbx_log_enabled(level) || !line)
        return;
    const char *sp = strchr(line, ' ');
    size_t idlen = sp ? (size_t)(sp - line) : strlen(line);
    char buf[S_LINE_MAX];
    size_t len = s_prefix(buf, sizeof buf, level, line, idlen);
    if (sp) {
        size_t rest = strlen(sp);
        if (rest > sizeof buf - 1 - len)
            rest = sizeof buf - 1 - len;
        memcpy(buf + len, sp, rest);
        len += rest;
    }
    s_write(buf, len);
}

const char *gbx_log_quoted(const char *in, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return "";
    size_t i = 0;
    for (; in && in[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[i] = '\0';
    return out;
}

const char *gbx_log_clean(const char *in, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return "";
    if (!in || !*in)
        in = "-";
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[i] = '\0';
    return out;
}
