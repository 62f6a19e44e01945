/*  gbx_log: gbxd's log lines (issue 6, deliverable 4).

    One line per event on stderr (journald takes it from there), in
    logfmt: a time, a level, a stable id, then the event's key=value
    fields:
        ts=2026-12-04T23:16:13.123Z level=warn id=GBX-REJECT reason=BAD_SIGNATURE from=hk.kiosk
    The id (GBX-...) names the kind of event and never changes meaning, so
    alerts and scripts match on it; docs/logging.md lists them. Fields are
    metadata only: never a payload byte, a key or a secret. A value that
    came from outside (an agency id, a policy's version text) goes through
    gbx_log_clean first, so a line is always one line.

    Levels: debug < info < warn < error; lines below the level set with
    gbx_log_set_level (default info) are not written. Any thread may log:
    each line is written with one write(2). */
#ifndef GBX_LOG_H
#define GBX_LOG_H

#include <stddef.h>

typedef enum { GBX_LOG_DEBUG = 0, GBX_LOG_INFO, GBX_LOG_WARN, GBX_LOG_ERROR } gbx_log_level_t;

/*  Lines below LEVEL are dropped from now on. */
void gbx_log_set_level(gbx_log_level_t level);
/*  "debug", "info", "warn" or "error" -> *out; 0, or -1 for anything else. */
int gbx_log_level_parse(const char *text, gbx_log_level_t *out);
/*  1 if a line at LEVEL would be written. */
int gbx_log_enabled(gbx_log_level_t level);

/*  Writes "ts=... level=... id=ID " then FMT's text (key=value fields,
    may be empty) and a newline. Lines longer than 4 KiB are cut. */
void gbx_log(gbx_log_level_t level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  As gbx_log, for a line made elsewhere: "ID key=value..." (the id up to
    the first space). */
void gbx_log_line(gbx_log_level_t level, const char *line);

/*  A value from outside, safe in a line: at most OUTLEN - 1 bytes of IN,
    each byte outside 0x21..0x7e (spaces, quotes, controls) as '?', '"'
    and '\\' too; "-" for NULL or empty. Returns OUT. */
const char *gbx_log_clean(const char *in, char *out, size_t outlen);

/*  The same for a value written in quotes (key="..."): spaces are kept;
    quotes, backslashes and control bytes become '?'. Returns OUT. */
const char *gbx_log_quoted(const char *in, char *out, size_t outlen);

#endif
