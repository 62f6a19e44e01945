/*  gbx_queue: the durable records of delivery (issue 3, deliverable 4;
    proto/spec/5-adapter.md section 7) and the batch operations that move a
    message through its states. Only the writer thread calls the operations
    (they read through the batch, gbx_batch_get, so several operations on
    one message in one group commit see each other).

    Records (keyspaces: store.h):
      queues[dest 0x00 be64 seq] = queue entry   the message is queued or in
                                                 flight (in flight is a state
                                                 in memory only: broker/
                                                 dispatch.h)
      dlq[dest 0x00 be64 seq]    = queue entry   dead-lettered
      held[dest 0x00 be64 seq]   = be64 until_ms || queue entry
                                                 held by the policy for an
                                                 approver until until_ms
      messages[be64 seq]         = be32 envelope length || envelope || payload
      expiry[due key]            = kind-specific value (below)

    Queue entry value, big-endian:
        be64 size          bytes of messages[seq] (what queue limits count)
        be64 payload       bytes of the encrypted payload (what byte credit
                           counts, 5-adapter.md section 7.1)
        be64 expires_at_ms the header's
        be32 deliveries    Deliver frames sent over the message's life
        be32 attempts      deliveries since it was accepted or replayed
        u8   n, n bytes    from_agency
        16 bytes           message_id
        be64 accepted_ms   when the node accepted it (absent in entries
                           written before it was added: 0)
    An 8-byte value (written before this format) is a size alone.

    Due keys (the "expiry" keyspace): be64 at_ms || be64 seq || kind, so a
    sweep reads the keyspace from its start up to now:
        GBX_DUE_EXPIRE  'Q'  value = dest: the queued message seq expires at
                             at_ms (= expires_at_ms)
        GBX_DUE_DEDUPE  'D'  value = dedupe key: forget that message id at
                             at_ms (expires_at_ms + clock skew, at least the
                             dedupe window after acceptance)
        GBX_DUE_HOLD    'H'  value = dest: the held message seq is refused at
                             at_ms (its hold's deadline: HOLD_TIMEOUT, or
                             EXPIRED when that came first)

    Delivery ids (5-adapter.md section 7.2): seq << 16 | deliveries. Each
    Deliver follows the durable increment of "deliveries" (gbx_queue_mark),
    so an id is never reused, even across crashes, and every id names its
    message: an ack of an earlier delivery finds it. Sequences are shared
    with audit records; 48 bits last centuries at a million per second. A
    message is delivered at most GBX_DELIVERIES_MAX times over its life
    (max_attempts is at most 1000; replays by an operator count too): beyond
    that gbx_queue_mark refuses with GBX_E_DEAD_LETTERED and the caller
    dead-letters the message. */
#ifndef GBX_QUEUE_H
#define GBX_QUEUE_H

#include <stdint.h>

#include "audit.h"
#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/identity.h"
#include "store.h"

#define GBX_QENTRY_MAX         (8 + 8 + 8 + 4 + 4 + 1 + GBX_ID_MAX + GBX_MSG_ID_BYTES + 8)
#define GBX_DUE_KEY_LEN        17u
#define GBX_QUEUE_KEY_MAX      (GBX_STORE_DEST_MAX + 1 + GBX_STORE_SEQ_KEY_BYTES)
#define GBX_DELIVERY_SEQ_SHIFT 16u
#define GBX_DELIVERIES_MAX     65535u

typedef struct {
    uint64_t size;
    uint64_t payload;
    uint64_t expires_at_ms;
    uint32_t deliveries;
    uint32_t attempts;
    char from[GBX_ID_MAX + 1];
    uint8_t message_id[GBX_MSG_ID_BYTES];
    uint64_t accepted_ms; /* 0: unknown (an older entry) */
} gbx_qentry_t;

typedef enum { GBX_DUE_EXPIRE = 'Q', GBX_DUE_DEDUPE = 'D', GBX_DUE_HOLD = 'H' } gbx_due_kind_t;

/*  OUT gets GBX_QENTRY_MAX bytes at most; *len the length used. */
void gbx_qentry_encode(const gbx_qentry_t *e, uint8_t out[GBX_QENTRY_MAX], size_t *len);
/*  GBX_E_STATE for a value that is not a queue entry (a damaged store). */
gbx_err_t gbx_qentry_decode(const uint8_t *v, size_t len, gbx_qentry_t *out);

void gbx_due_key(uint64_t at_ms, uint64_t seq, gbx_due_kind_t kind, uint8_t out[GBX_DUE_KEY_LEN]);
/*  GBX_E_STATE if KEY is not a due key. */
gbx_err_t gbx_due_parse(const uint8_t *key, size_t len, uint64_t *at_ms, uint64_t *seq,
                        gbx_due_kind_t *kind);

uint64_t gbx_delivery_id(uint64_t seq, uint32_t deliveries);
uint64_t gbx_delivery_seq(uint64_t delivery_id);

/* ------------------------------------------------------------ operations

   Each adds to BATCH everything one transition writes, its audit record
   included (at AT_MS), and fills *E (may be NULL) with the entry as it was
   before. GBX_E_STATE when the message is not in the state the operation
   starts from (e.g. already acked): nothing is added, and the caller drops
   the operation; a second ack is not an error of the sender. */

/*  New message: the queue entry and its expiry due key (the message value
    and dedupe record are the ingress's). */
gbx_err_t gbx_queue_enqueue(gbx_batch_t *batch, const char *dest, uint64_t seq,
                            const gbx_qentry_t *e);
/*  New message held by the policy (ingress step 18): the held entry and
    its due key at UNTIL_MS (the hold's deadline, at most expires_at_ms). */
gbx_err_t gbx_queue_hold(gbx_batch_t *batch, const char *dest, uint64_t seq, const gbx_qentry_t *e,
                         uint64_t until_ms);
/*  held -> queued: an approver BY approved it (COMMENT may be NULL); the
    entry and its expiry due key as gbx_queue_enqueue; audit
    HOLD_APPROVED. GBX_E_STATE if SEQ is not held; GBX_E_EXPIRED (nothing
    added) if it expired meanwhile (the sweep will refuse it). *E: the
    entry. */
gbx_err_t gbx_queue_release(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                            uint64_t at_ms, const char *by, const char *comment, gbx_qentry_t *e);
/*  held -> gone: refused by an approver BY (*REASON GBX_E_HOLD_REJECTED,
    with COMMENT), or by the node at the hold's deadline (*REASON
    GBX_E_HOLD_TIMEOUT, which becomes GBX_E_EXPIRED when the message has
    expired by AT_MS): entry, due key and message deleted; audit
    HOLD_REJECTED / HOLD_TIMEOUT / EXPIRED with by= and comment=.
    GBX_E_STATE if SEQ is not held. */
gbx_err_t gbx_queue_refuse(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t at_ms, gbx_err_t *reason, const char *by, const char *comment,
                           gbx_qentry_t *e);
/*  The held entry value VAL (VLEN bytes): its deadline and queue entry.
    GBX_E_STATE if it is not one. */
gbx_err_t gbx_held_decode(const uint8_t *val, size_t vlen, uint64_t *until_ms, gbx_qentry_t *e);

/*  queued -> in flight: deliveries + 1, attempts + 1; audit DELIVERED.
    *E gets the entry after the increment (its deliveries make the delivery
    id). */
gbx_err_t gbx_queue_mark(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                         uint64_t at_ms, gbx_qentry_t *e);
/*  A Deliver that never left (its session was gone): attempts - 1, so that
    only deliveries an adapter could have seen count toward max_attempts;
    deliveries stays (the id DELIVERY_ID is spent). Audit UNSENT. */
gbx_err_t gbx_queue_unmark(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t delivery_id, uint64_t at_ms, gbx_qentry_t *e);
/*  queued/in flight -> acked: deletes the entry, the message, the due key;
    audit ACKED with DELIVERY_ID. GBX_E_STATE as well when DELIVERY_ID was
    never issued (its delivery number is 0 or beyond the entry's). */
gbx_err_t gbx_queue_ack(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                        uint64_t delivery_id, uint64_t at_ms, gbx_qentry_t *e);
/*  -> expired: as ack, audit EXPIRED. */
gbx_err_t gbx_queue_expire(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t at_ms, gbx_qentry_t *e);
/*  -> dead-lettered: the entry moves to dlq, the message stays, the due key
    goes; audit DEAD_LETTERED. */
gbx_err_t gbx_queue_deadletter(gbx_store_t *store, gbx_batch_t *batch, const char *dest,
                               uint64_t seq, uint64_t at_ms, gbx_qentry_t *e);
/*  dead-lettered -> queued, attempts 0 (GBX_E_EXPIRED if it has expired:
    nothing added); audit REPLAYED with BY (the operator). */
gbx_err_t gbx_queue_replay(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                           uint64_t at_ms, const char *by, gbx_qentry_t *e);
/*  dead-lettered -> gone: the dlq entry and the message are deleted (its
    dedupe record stays, so a resubmission is still a duplicate); audit
    PURGED with BY (the operator). */
gbx_err_t gbx_queue_purge(gbx_store_t *store, gbx_batch_t *batch, const char *dest, uint64_t seq,
                          uint64_t at_ms, const char *by, gbx_qentry_t *e);
/*  Deletes the due key KEY (of kind GBX_DUE_DEDUPE) and the dedupe record
    it names (VAL, VLEN). No audit record: forgetting an id is not an event
    of a message's life. */
gbx_err_t gbx_queue_forget(gbx_batch_t *batch, const uint8_t key[GBX_DUE_KEY_LEN],
                           const uint8_t *val, size_t vlen);

#endif
