/*  gbx_audit: the audit records the broker writes: one per event of a
    message's life and per operator or configuration action, in the same
    atomic batch as the change it records. This module is the record's
    text; the trail (broker/trail.h) numbers, chains and checkpoints it.

    A record is UTF-8 text, one "key=value" per line, metadata only, never a
    payload byte. Values are sanitised: bytes outside 0x21..0x7e become '?'
    (0x20..0x7e for gbx_audit_text, a sentence on one line).
    The first lines are always
        v=1
        event=<ACCEPTED | HELD | DUPLICATE | REJECTED | DELIVERED | ACKED | EXPIRED |
               DEAD_LETTERED | REPLAYED | DEDUPE_DROPPED>
        at_ms=<time of the event>
    followed by what the event knows (reason=, seq=, message_id=, from=,
    to=, ...); the trail adds i= and chain= when it seals the record. The
    fields of each event are listed in docs/audit.md. */
#ifndef GBX_AUDIT_H
#define GBX_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "store.h"

#define GBX_AUDIT_MAX 2048 /* bytes of one record; longer values are cut */

typedef struct {
    char buf[GBX_AUDIT_MAX];
    size_t len;
} gbx_audit_t;

/*  Starts REC with v=1, event=EVENT, at_ms=AT_MS. */
void gbx_audit_begin(gbx_audit_t *rec, const char *event, uint64_t at_ms);
/*  Appends key=value (VALUE sanitised; NULL as "-"). */
void gbx_audit_str(gbx_audit_t *rec, const char *key, const char *value);
void gbx_audit_u64(gbx_audit_t *rec, const char *key, uint64_t value);
/*  Appends key=value where VALUE may hold spaces (a policy's "why"). */
void gbx_audit_text(gbx_audit_t *rec, const char *key, const char *value);
/*  Appends key=<lowercase hex of LEN bytes> (at most 64 bytes). */
void gbx_audit_hex(gbx_audit_t *rec, const char *key, const uint8_t *bin, size_t len);
/*  Reading a record: the value of the first line "KEY=value" of TEXT (LEN
    bytes), not NUL-terminated, its length in *VLEN; NULL if none. */
const char *gbx_audit_field(const char *text, size_t len, const char *key, size_t *vlen);

/*  Appends REC to BATCH's records for the trail (gbx_batch_append). */
gbx_err_t gbx_audit_put(gbx_batch_t *batch, const gbx_audit_t *rec);

#endif
