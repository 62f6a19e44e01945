/*  queue.c: owns the queue entry format, due keys, delivery ids and the
    batch operations of a message's delivery states. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void s_be32(uint8_t *out, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t s_get64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

static uint32_t s_get32(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

void gbx_qentry_encode(const gbx_qentry_t *e, uint8_t out[GBX_QENTRY_MAX], size_t *len)
{
    size_t fl = strnlen(e->from, GBX_ID_MAX);
    s_be64(out, e->size);
    s_be64(out + 8, e->payload);
    s_be64(out + 16, e->expires_at_ms);
    s_be32(out + 24, e->deliveries);
    s_be32(out + 28, e->attempts);
    out[32] = (uint8_t)fl;
    memcpy(out + 33, e->from, fl);
    memcpy(out + 33 + fl, e->message_id, GBX_MSG_ID_BYTES);
    s_be64(out + 33 + fl + GBX_MSG_ID_BYTES, e->accepted_ms);
    *len = 33 + fl + GBX_MSG_ID_BYTES + 8;
}

gbx_err_t gbx_qentry_decode(const uint8_t *v, size_t len, gbx_qentry_t *out)
{
    memset(out, 0, sizeof *out);
    if (len == 8) { /* the first format: the size alone */
        out->size = s_get64(v);
        out->payload = out->size;
        out->expires_at_ms = UINT64_MAX;
        return GBX_OK;
    }
    if (len < 33)
        return GBX_E_STATE;
    size_t fl = v[32];
    /* without accepted_ms: an entry written before it was added */
    if (fl > GBX_ID_MAX ||
        (len != 33 + fl + GBX_MSG_ID_BYTES && len != 33 + fl + GBX_MSG_ID_BYTES + 8))
        return GBX_E_STATE;
    out->size = s_get64(v);
    out->payload = s_get64(v + 8);
    out->expires_at_ms = s_get64(v + 16);
    out->deliveries = s_get32(v + 24);
    out->attempts = s_get32(v + 28);
    memcpy(out->from, v + 33, fl);
    out->from[fl] = '\0';
    memcpy(out->message_id, v + 33 + fl, GBX_MSG_ID_BYTES);
    if (len == 33 + fl + GBX_MSG_ID_BYTES + 8)
        out->accepted_ms = s_get64(v + 33 + fl + GBX_MSG_ID_BYTES);
    return GBX_OK;
}

void gbx_due_key(uint64_t at_ms, uint64_t seq, gbx_due_kind_t kind, uint8_t out[GBX_DUE_KEY_LEN])
{
    s_be64(out, at_ms);
    s_be64(out + 8, seq);
    out[16] = (uint8_t)kind;
}

gbx_err_t gbx_due_parse(const uint8_t *key, size_t len, uint64_t *at_ms, uint64_t *seq,
                        gbx_due_kind_t *kind)
{
    if (len != GBX_DUE_KEY_LEN ||
        (key[16] != GBX_DUE_EXPIRE && key[16] != GBX_DUE_DEDUPE && key[16] != GBX_DUE_HOLD))
        return GBX_E_STATE;
    *at_ms = s_get64(key);
    *seq = s_get64(key + 8);
    *kind = (gbx_due_kind_t)key[16];
    return GBX_OK;
}

uint64_t gbx_delivery_id(uint64_t seq, uint32_t deliveries)
{
    return seq << GBX_DELIVERY_SEQ_SHIFT | (deliveries & GBX_DELIVERIES_MAX);
}

uint64_t gbx_delivery_seq(uint64_t delivery_id)
{
    return delivery_id >> GBX_DELIVERY_SEQ_SHIFT;
}

/* ------------------------------------------------------------ operations */

/*  Reads KS[dest, seq] through the batch into *E. GBX_E_STATE if absent. */
static gbx_err_t s_load(gbx_batch_t *b, gbx_keyspace_t ks, const char *dest, uint64_t seq,
                        uint8_t key[GBX_QUEUE_KEY_MAX], size_t *klen, gbx_qentry_t *e)
{
    gbx_err_t rc = gbx_store_queue_key(dest, seq, key, GBX_QUEUE_KEY_MAX, klen);
    if (rc != GBX_OK)
        return rc;
    uint8_t *v = NULL;
    size_t vlen = 0;
    rc = gbx_batch_get(b, ks, key, *klen, &v, &vlen);
    if (rc != GBX_OK)
        return rc;
    if (!v)
        return GBX_E_STATE;
    rc = gbx_qentry_decode(v, vlen, e);
    free(v);
    return rc;
}

static gbx_err_t s_put_entry(gbx_batch_t *b, gbx_keyspace_t ks, const uint8_t *key, size_t klen,
                             const gbx_qentry_t *e)
{
    uint8_t v[GBX_QENTRY_MAX];
    size_t vlen = 0;
    gbx_qentry_encode(e, v, &vlen);
    return gbx_batch_put(b, ks, key, klen, v, vlen);
}

static gbx_err_t s_put_due(gbx_batch_t *b, const char *dest, uint64_t seq, const gbx_qentry_t *e)
{
    uint8_t due[GBX_DUE_KEY_LEN];
    gbx_due_key(e->expires_at_ms, seq, GBX_DUE_EXPIRE, due);
    return gbx_batch_put(b, GBX_KS_EXPIRY, due, sizeof due, dest, strlen(dest));
}

static gbx_err_t s_del_due(gbx_batch_t *b, uint64_t seq, const gbx_qentry_t *e)
{
    uint8_t due[GBX_DUE_KEY_LEN];
    gbx_due_key(e->expires_at_ms, seq, GBX_DUE_EXPIRE, due);
    return gbx_batch_delete(b, GBX_KS_EXPIRY, due, sizeof due);
}

/*  The common head of a message event's audit record. */
static void s_audit(gbx_audit_t *a, const char *event, uint64_t at_ms, const char *dest,
                    uint64_t seq, const gbx_qentry_t *e)
{
    gbx_audit_begin(a, event, at_ms);
    gbx_audit_u64(a, "seq", seq);
    gbx_audit_hex(a, "message_id", e->message_id, GBX_MSG_ID_BYTES);
    gbx_audit_str(a, "from", e->from);
    gbx_audit_str(a, "to", dest);
}

gbx_err_t gbx_queue_enqueue(gbx_batch_t *batch, const char *dest, uint64_t seq,
                            const gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    gbx_err_t rc = gbx_store_queue_key(dest, seq, key, sizeof key, &klen);
    if (rc == GBX_OK)
        rc = s_put_entry(batch, GBX_KS_QUEUES, key, klen, e);
    if (rc == GBX_OK)
        rc = s_put_due(batch, dest, seq, e);
    return rc;
}

gbx_err_t gbx_held_decode(const uint8_t *val, size_t vlen, uint64_t *until_ms, gbx_qentry_t *e)
{
    if (!val || vlen < 8)
        return GBX_E_STATE;
    *until_ms = s_get64(val);
    return gbx_qentry_decode(val + 8, vlen - 8, e);
}

gbx_err_t gbx_queue_hold(gbx_batch_t *batch, const char *dest, uint64_t seq, const gbx_qentry_t *e,
                         uint64_t until_ms)
{
    uint8_t key[GBX_QUEUE_KEY_MAX], v[8 + GBX_QENTRY_MAX], due[GBX_DUE_KEY_LEN];
    size_t klen = 0, vlen = 0;
    gbx_err_t rc = gbx_store_queue_key(dest, seq, key, sizeof key, &klen);
    if (rc != GBX_OK)
        return rc;
    s_be64(v, until_ms);
    gbx_qentry_encode(e, v + 8, &vlen);
    rc = gbx_batch_put(batch, GBX_KS_HELD, key, klen, v, 8 + vlen);
    gbx_due_key(until_ms, seq, GBX_DUE_HOLD, due);
    return rc == GBX_OK ? gbx_batch_put(batch, GBX_KS_EXPIRY, due, sizeof due, dest, strlen(dest))
                        : rc;
}

/*  Reads held[dest, seq] through the batch; deletes it and its due key.
    GBX_E_STATE if it is not held. */
static gbx_err_t s_unhold(gbx_batch_t *b, const char *dest, uint64_t seq, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX], due[GBX_DUE_KEY_LEN];
    size_t klen = 0, vlen = 0;
    uint8_t *v = NULL;
    uint64_t until = 0;
    gbx_err_t rc = gbx_store_queue_key(dest, seq, key, sizeof key, &klen);
    if (rc == GBX_OK)
        rc = gbx_batch_get(b, GBX_KS_HELD, key, klen, &v, &vlen);
    if (rc == GBX_OK)
        rc = v ? gbx_held_decode(v, vlen, &until, e) : GBX_E_STATE;
    free(v);
    if (rc == GBX_OK)
        rc = gbx_batch_delete(b, GBX_KS_HELD, key, klen);
    gbx_due_key(until, seq, GBX_DUE_HOLD, due);
    return rc == GBX_OK ? gbx_batch_delete(b, GBX_KS_EXPIRY, due, sizeof due) : rc;
}

static void s_audit_by(gbx_audit_t *a, const char *by, const char *comment)
{
    gbx_audit_str(a, "by", by);
    if (comment && *comment)
        gbx_audit_text(a, "comment", comment);
}

gbx_err_t gbx_queue_release(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                            uint64_t at_ms, const char *by, const char *comment, gbx_qentry_t *e)
{
    gbx_qentry_t cur;
    gbx_err_t rc = s_unhold(batch, dest, seq, &cur);
    if (rc != GBX_OK)
        return rc;
    if (at_ms >= cur.expires_at_ms)
        return GBX_E_EXPIRED; /* the caller rolls back; the sweep refuses it */
    rc = gbx_queue_enqueue(batch, dest, seq, &cur);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, "HOLD_APPROVED", at_ms, dest, seq, &cur);
        s_audit_by(&a, by, comment);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_refuse(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t at_ms, gbx_err_t *reason_io, const char *by,
                           const char *comment, gbx_qentry_t *e)
{
    gbx_qentry_t cur;
    gbx_err_t rc = s_unhold(batch, dest, seq, &cur);
    if (rc != GBX_OK)
        return rc;
    if (*reason_io == GBX_E_HOLD_TIMEOUT && at_ms >= cur.expires_at_ms)
        *reason_io = GBX_E_EXPIRED;
    gbx_err_t reason = *reason_io;
    uint8_t mkey[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(seq, mkey);
    rc = gbx_batch_delete(batch, GBX_KS_MESSAGES, mkey, sizeof mkey);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a,
                reason == GBX_E_HOLD_REJECTED  ? "HOLD_REJECTED"
                : reason == GBX_E_HOLD_TIMEOUT ? "HOLD_TIMEOUT"
                                               : "EXPIRED",
                at_ms, dest, seq, &cur);
        gbx_audit_str(&a, "reason", gbx_err_name(reason));
        s_audit_by(&a, by, comment);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_mark(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                         uint64_t at_ms, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    gbx_qentry_t cur;
    gbx_err_t rc = s_load(batch, GBX_KS_QUEUES, dest, seq, key, &klen, &cur);
    if (rc != GBX_OK)
        return rc;
    if (cur.deliveries >= GBX_DELIVERIES_MAX)
        return GBX_E_DEAD_LETTERED;
    cur.deliveries++;
    cur.attempts++;
    rc = s_put_entry(batch, GBX_KS_QUEUES, key, klen, &cur);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, "DELIVERED", at_ms, dest, seq, &cur);
        gbx_audit_u64(&a, "delivery_id", gbx_delivery_id(seq, cur.deliveries));
        gbx_audit_u64(&a, "attempt", cur.attempts);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_unmark(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t delivery_id, uint64_t at_ms, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    gbx_qentry_t cur;
    gbx_err_t rc = s_load(batch, GBX_KS_QUEUES, dest, seq, key, &klen, &cur);
    if (rc != GBX_OK)
        return rc;
    if (cur.attempts > 0)
        cur.attempts--;
    rc = s_put_entry(batch, GBX_KS_QUEUES, key, klen, &cur);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, "UNSENT", at_ms, dest, seq, &cur);
        gbx_audit_u64(&a, "delivery_id", delivery_id);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

/*  Deletes the queue entry, the message and the due key; audits EVENT. */
static gbx_err_t s_finish(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                          uint64_t at_ms, const char *event, uint64_t delivery_id, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX], mkey[GBX_STORE_SEQ_KEY_BYTES];
    size_t klen = 0;
    gbx_qentry_t cur;
    gbx_err_t rc = s_load(batch, GBX_KS_QUEUES, dest, seq, key, &klen, &cur);
    if (rc != GBX_OK)
        return rc;
    uint32_t n = (uint32_t)(delivery_id & GBX_DELIVERIES_MAX);
    if (delivery_id && (n == 0 || n > cur.deliveries))
        return GBX_E_STATE; /* an id this node never gave */
    gbx_store_seq_key(seq, mkey);
    rc = gbx_batch_delete(batch, GBX_KS_QUEUES, key, klen);
    if (rc == GBX_OK)
        rc = gbx_batch_delete(batch, GBX_KS_MESSAGES, mkey, sizeof mkey);
    if (rc == GBX_OK)
        rc = s_del_due(batch, seq, &cur);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, event, at_ms, dest, seq, &cur);
        if (delivery_id)
            gbx_audit_u64(&a, "delivery_id", delivery_id);
        gbx_audit_u64(&a, "deliveries", cur.deliveries);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_ack(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                        uint64_t delivery_id, uint64_t at_ms, gbx_qentry_t *e)
{
    return s_finish(store, batch, dest, seq, at_ms, "ACKED", delivery_id, e);
}

gbx_err_t gbx_queue_expire(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t at_ms, gbx_qentry_t *e)
{
    return s_finish(store, batch, dest, seq, at_ms, "EXPIRED", 0, e);
}

gbx_err_t gbx_queue_deadletter(gbx_store_t *store, gbx_batch_t *batch, const char *dest,
                               uint64_t seq, uint64_t at_ms, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    gbx_qentry_t cur;
    gbx_err_t rc = s_load(batch, GBX_KS_QUEUES, dest, seq, key, &klen, &cur);
    if (rc != GBX_OK)
        return rc;
    rc = gbx_batch_delete(batch, GBX_KS_QUEUES, key, klen);
    if (rc == GBX_OK)
        rc = s_put_entry(batch, GBX_KS_DLQ, key, klen, &cur);
    if (rc == GBX_OK)
        rc = s_del_due(batch, seq, &cur);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, "DEAD_LETTERED", at_ms, dest, seq, &cur);
        gbx_audit_u64(&a, "attempts", cur.attempts);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_replay(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t at_ms, const char *by, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    gbx_qentry_t cur;
    gbx_err_t rc = s_load(batch, GBX_KS_DLQ, dest, seq, key, &klen, &cur);
    if (rc != GBX_OK)
        return rc;
    if (at_ms >= cur.expires_at_ms)
        return GBX_E_EXPIRED;
    cur.attempts = 0;
    rc = gbx_batch_delete(batch, GBX_KS_DLQ, key, klen);
    if (rc == GBX_OK)
        rc = gbx_queue_enqueue(batch, dest, seq, &cur);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, "REPLAYED", at_ms, dest, seq, &cur);
        gbx_audit_str(&a, "by", by);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_purge(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                          uint64_t at_ms, const char *by, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    gbx_qentry_t cur;
    gbx_err_t rc = s_load(batch, GBX_KS_DLQ, dest, seq, key, &klen, &cur);
    if (rc != GBX_OK)
        return rc;
    uint8_t skey[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(seq, skey);
    rc = gbx_batch_delete(batch, GBX_KS_DLQ, key, klen);
    if (rc == GBX_OK)
        rc = gbx_batch_delete(batch, GBX_KS_MESSAGES, skey, sizeof skey);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        s_audit(&a, "PURGED", at_ms, dest, seq, &cur);
        gbx_audit_u64(&a, "attempts", cur.attempts);
        gbx_audit_str(&a, "by", by);
        rc = gbx_audit_put(batch, &a);
    }
    if (rc == GBX_OK && e)
        *e = cur;
    return rc;
}

gbx_err_t gbx_queue_forget(gbx_batch_t *batch, const uint8_t key[GBX_DUE_KEY_LEN],
                           const uint8_t *val, size_t vlen)
{
    gbx_err_t rc = gbx_batch_delete(batch, GBX_KS_EXPIRY, key, GBX_DUE_KEY_LEN);
    if (rc == GBX_OK && vlen)
        rc = gbx_batch_delete(batch, GBX_KS_DEDUPE, val, vlen);
    return rc;
}
