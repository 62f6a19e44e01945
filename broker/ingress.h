/*  gbx_ingress: admission of one submitted message (issue 3, deliverable 3;
    proto/spec/5-adapter.md section 6.1, proto/spec/2-envelope.md sections 7
    and 8). Synchronous: gbxd calls gbx_ingress_submit once per ZeroMQ
    message received on the adapter socket and sends the reply it produces.
    No sockets, no threads; one ingress per thread (it owns a vcache).

    Steps, in the spec's order; the first failure decides the Rejected reason:

      framing, env 1-6  gbx_frame_decode_at(AT_NODE): protocol id, Frame,
                        body, direction, envelope decode and field checks
                        (UNSUPPORTED_VERSION, TRUNCATED, HEADER_TOO_LARGE,
                        MALFORMED, UNKNOWN_SUITE, FIELD_INVALID, ...)
      submit only       any other frame a node may receive (ack, credit,
                        ping, pong) is not a Submit: MALFORMED here (gbxd
                        routes those frames elsewhere before calling us)
      env 6 (limit)     payload_length <= opts.max_payload_bytes
                        (PAYLOAD_TOO_LARGE; the spec puts the receiver's own
                        limit at the end of step 6, before the signer)
      env 7             from_agency == AUTH_AGENCY (SENDER_MISMATCH), then
                        from_agency in the registry (UNKNOWN_AGENCY)
      env 8-10          gbx_envelope_verify with the ingress's vcache
                        (WRONG_KEY, BAD_INCLUSION_PATH, BAD_SIGNATURE)
      env 11-12         gbx_frame_check_payload (PAYLOAD_LENGTH_MISMATCH,
                        PAYLOAD_HASH_MISMATCH)
      13 dedupe         (from_agency, message_id) in the dedupe keyspace:
                        Accepted with the byte-identical stored SignedReceipt
                        and duplicate = true; nothing is written but an audit
                        record (decision DUPLICATE)
      14 destination    to_agency is an agency of the registry
                        (UNKNOWN_DESTINATION)
      15 times          now < expires (EXPIRED); created <= now + skew
                        (NOT_YET_VALID); expires - created <= max_ttl
                        (TTL_TOO_LONG)
      16 policy         opts.policy (THE policy call site; NULL = allow-all)
                        (POLICY_DENIED, POLICY_NO_MATCH)
      17 capacity       the destination's queue, with this message added,
                        stays within opts.queue_max_messages and
                        opts.queue_max_bytes (0 = unlimited): else RETRY_LATER
                        with retry_after_ms = opts.retry_after_ms, audited
                        like any rejection, nothing stored (see "Queue
                        depth" below). After dedupe (13), so a retry of an
                        accepted message gets its receipt even when the
                        queue is full.
      18 store          one batch, committed synced (STORE_FAILED):
                          messages[seq]  = be32(envelope len) || envelope
                                           bytes || encrypted payload
                          queues[queue_key(to_agency, seq)] = be64(size of
                                           the messages value above)
                          dedupe[from_agency 0x00 message_id] = SignedReceipt
                          audit[be64(seq)] = audit record (below)
                          meta next_seq (gbx_batch_put_seq)
      19 answer         Accepted{receipt, duplicate = false}, only after the
                        commit returned GBX_OK

    The receipt (2-envelope.md section 7) is signed with opts.node before the
    commit, because its bytes are the dedupe value written by that very
    commit: accepted_at_ms is the clock read just before the commit.

    Audit records (keyspace "audit", key = be64 of a store sequence, so keys
    are unique and ordered). Value: UTF-8 text, one "key=value" per line,
    metadata only, never a payload byte:
        v=1
        decision=ACCEPTED | DUPLICATE | REJECTED
        reason=<gbx_err_name> (REJECTED: the reason; else OK)
        at_ms=<now>
        auth=<auth agency>
        seq=<message sequence>        (ACCEPTED only)
        message_id=<hex>              (when known)
        header_hash=<hex>             (when the envelope decoded)
        from=, to=, service=, service_version=, class=   (when decoded;
                                        unauthenticated before step 10)
        rule_id=, policy_hash=<hex>   (when the policy decided)
    Accepted messages carry their record in the message's batch. Rejections
    and duplicates get their own small batch, best effort: a failure to write
    it does not change the answer (counted in audit_failures). Values are
    sanitised: bytes outside 0x21..0x7e become '?'.

    Queue depth (issue 3, deliverable 4). The ingress keeps in memory, per
    destination agency, the number of entries in its queue and their bytes,
    where a message's bytes are the size of its messages[seq] value (4 +
    envelope + encrypted payload), the same number its queue entry holds as
    its value (be64). gbx_ingress_new rebuilds these counters by scanning the
    queues keyspace once, reading only the queue entries (an entry whose
    value is not 8 bytes, written before this design, is sized by reading
    its messages[seq] value). An accept adds to the counters only after its
    commit returned GBX_OK. The delivery path removes a queue entry in its
    own batch and, after that batch's commit returned GBX_OK, calls
    gbx_ingress_dequeued with the entry's bytes (its value). Limits are
    strict: a message larger than queue_max_bytes is never admitted, so set
    queue_max_bytes well above max_payload_bytes. The counters belong to one
    ingress: all submits and all dequeues for the store must go through the
    same ingress (one admitting thread), else each would count its own
    share only.

    The dedupe window: entries are never deleted yet (no expiry sweep; see
    issue 3). The spec only requires keeping them until expires + skew. */
#ifndef GBX_INGRESS_H
#define GBX_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "registry.h"
#include "store.h"

#define GBX_INGRESS_RULE_MAX 255 /* bytes of a policy rule id */

/*  Now, in milliseconds since the Unix epoch. */
typedef uint64_t (*gbx_ingress_clock_fn)(void *arg);

/*  THE policy call site (step 16). Called once per message that passed steps
    1 to 15, with the verified envelope and the authenticated agency. Returns
    GBX_OK to allow, GBX_E_POLICY_DENIED or GBX_E_POLICY_NO_MATCH to refuse;
    any other code is answered INTERNAL_ERROR. It fills RULE_ID (a
    NUL-terminated text of at most GBX_INGRESS_RULE_MAX bytes, "" allowed)
    and POLICY_HASH (32 bytes naming the policy version) on every return:
    both go into the receipt (allow) or the audit record (deny). HOLD is not
    supported yet. */
typedef gbx_err_t (*gbx_ingress_policy_fn)(void *arg, const gbx_envelope_t *env,
                                           const char *auth_agency,
                                           char rule_id[GBX_INGRESS_RULE_MAX + 1],
                                           uint8_t policy_hash[GBX_HASH_BYTES]);

/*  With policy == NULL: rule_id GBX_INGRESS_ALLOW_ALL_RULE and policy_hash
    BLAKE2b-256 of the same text. */
#define GBX_INGRESS_ALLOW_ALL_RULE "allow-all"

typedef struct {
    gbx_store_t *store;             /* borrowed; required */
    const gbx_registry_t *registry; /* borrowed; required */
    const gbx_identity_t *node;     /* borrowed; signs receipts; required */
    const char *node_id;            /* copied; required; the receipts' node_id */
    uint64_t max_payload_bytes;     /* limits.max_payload_bytes; 0 = GBX_PAYLOAD_MAX */
    uint64_t max_ttl_ms;            /* limits.max_ttl_ms; required > 0 */
    uint64_t clock_skew_ms;         /* limits.clock_skew_ms */
    gbx_ingress_clock_fn clock;     /* NULL = CLOCK_REALTIME */
    void *clock_arg;
    gbx_ingress_policy_fn policy; /* NULL = allow-all */
    void *policy_arg;
    size_t vcache_slots;         /* 0 = 4096 */
    uint64_t queue_max_messages; /* per destination queue; 0 = unlimited */
    uint64_t queue_max_bytes;    /* per destination queue (stored bytes); 0 = unlimited */
    uint64_t retry_after_ms;     /* in RETRY_LATER answers of step 17; 0 = 1000 */
} gbx_ingress_opts_t;

#define GBX_INGRESS_RETRY_AFTER_DEFAULT_MS 1000u

/*  Zeroes OPTS (NULL clock and policy, default limits 0). */
void gbx_ingress_opts_init(gbx_ingress_opts_t *opts);

/*  What one submit decided (for gbxd: wake the destination's delivery). */
typedef struct {
    gbx_err_t reason;          /* GBX_OK for Accepted, else the Rejected reason */
    int duplicate;             /* Accepted with the original receipt */
    uint64_t seq;              /* the stored message's sequence (Accepted, new) */
    char dest[GBX_ID_MAX + 1]; /* to_agency (Accepted, new), else "" */
} gbx_ingress_result_t;

/*  Counters since gbx_ingress_new. */
typedef struct {
    uint64_t submitted;      /* calls of gbx_ingress_submit */
    uint64_t accepted;       /* new messages stored */
    uint64_t duplicates;     /* answered with a stored receipt */
    uint64_t rejected;       /* Rejected answers, all reasons */
    uint64_t audit_failures; /* best-effort audit batches that failed */
    uint64_t sig_verified;   /* batch-root Ed25519 verifications (gbx_vcache_stats;
                                single signatures are not counted there) */
    uint64_t sig_cache_hits; /* batch envelopes verified from the cache */
} gbx_ingress_stats_t;

typedef struct gbx_ingress gbx_ingress_t;

/*  OPTS is copied (the pointers in it are borrowed and must outlive the
    ingress). GBX_E_ARG when a required option is missing. On GBX_OK the
    caller owns *out. */
gbx_err_t gbx_ingress_new(const gbx_ingress_opts_t *opts, gbx_ingress_t **out);
/*  NULL-safe; sets *self_p to NULL. Does not touch the borrowed objects. */
void gbx_ingress_destroy(gbx_ingress_t **self_p);

/*  Admits the N PARTS of one ZeroMQ message received on a connection whose
    ZAP User-Id is AUTH_AGENCY, and builds part 1 of the answer: on return
    *reply is malloc'ed (caller frees) and holds *reply_len bytes, to be
    sent after GBX_FRAME_PROTOCOL. The answer carries the request's tag
    (0 for framing errors) and, when known, the message id.
    Returns the decision: GBX_OK (Accepted, new or duplicate) or the reason
    in the Rejected answer. Exceptions, with *reply NULL: GBX_E_ARG for NULL
    arguments, GBX_E_NOMEM when even the answer cannot be built.
    RESULT may be NULL. PARTS are only borrowed for the call. */
gbx_err_t gbx_ingress_submit(gbx_ingress_t *self, const char *auth_agency, const gbx_part_t *parts,
                             size_t n, uint8_t **reply, size_t *reply_len,
                             gbx_ingress_result_t *result);

void gbx_ingress_stats(const gbx_ingress_t *self, gbx_ingress_stats_t *out);
/*  Rejected answers given with REASON so far (0 for codes never sent). */
uint64_t gbx_ingress_rejections(const gbx_ingress_t *self, gbx_err_t reason);

/*  The queue of DEST as the ingress counts it (see "Queue depth"): entries
    and their stored bytes; 0 and 0 for a destination never seen. MESSAGES
    and BYTES may be NULL. */
void gbx_ingress_queue_depth(const gbx_ingress_t *self, const char *dest, uint64_t *messages,
                             uint64_t *bytes);
/*  One entry of DEST's queue, of BYTES stored bytes (the be64 value of its
    queue entry), has left the queue: the delivery path calls it after the
    commit of its own batch that deleted the entry returned GBX_OK, never
    before. Counters never go below 0. GBX_E_ARG for NULL arguments,
    GBX_E_STATE if DEST has no queued entry (the call is then ignored). */
gbx_err_t gbx_ingress_dequeued(gbx_ingress_t *self, const char *dest, uint64_t bytes);

/*  The dedupe key of (FROM, MESSAGE_ID): FROM's bytes, 0x00, the 16 id
    bytes, into OUT (room for GBX_ID_MAX + 1 + GBX_MSG_ID_BYTES); *len its
    length. GBX_E_ARG if FROM is empty or longer than GBX_ID_MAX. */
#define GBX_INGRESS_DEDUPE_KEY_MAX (GBX_ID_MAX + 1 + GBX_MSG_ID_BYTES)
gbx_err_t gbx_ingress_dedupe_key(const char *from, const uint8_t message_id[GBX_MSG_ID_BYTES],
                                 uint8_t *out, size_t *len);

#endif
