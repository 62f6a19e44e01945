/*  gbx_audit: the audit records the broker writes (issue 3: one per event of
    a message's life, in the same atomic batch as the change it records).
    The tamper-evident chain, checkpoints and gbx-audit are issue 5; this
    module is only the record's text and its place in the store.

    A record is UTF-8 text, one "key=value" per line, metadata only, never a
    payload byte. Values are sanitised: bytes outside 0x21..0x7e become '?'
    (0x20..0x7e for gbx_audit_text, a sentence on one line).
    The first lines are always
        v=1
        event=<ACCEPTED | HELD | DUPLICATE | REJECTED | DELIVERED | ACKED | EXPIRED |
               DEAD_LETTERED | REPLAYED | DEDUPE_DROPPED>
        at_ms=<time of the event>
    followed by what the event knows (reason=, seq=, message_id=, from=,
    to=, ...). Key: be64 of a fresh store sequence (gbx_store_next_seq), so
    records are unique and ordered by when their batch was built. */
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
/*  Puts REC into BATCH under a fresh sequence of STORE. */
gbx_err_t gbx_audit_put(gbx_store_t *store, gbx_batch_t *batch, const gbx_audit_t *rec);

#endif
