/*  gbx_ingress: admission of submitted messages (issue 3, deliverable 3;
    proto/spec/5-adapter.md section 6.1, proto/spec/2-envelope.md sections 7
    and 8). No sockets, no threads of its own. Two stages, so that gbxd can
    run the expensive one on many threads and the stateful one on one:

      stage 1, gbx_checker_run (any thread, one checker per thread):
      framing, env 1-6  gbx_frame_decode_at(AT_NODE): protocol id, Frame,
                        body, direction, envelope decode and field checks
                        (UNSUPPORTED_VERSION, TRUNCATED, HEADER_TOO_LARGE,
                        MALFORMED, UNKNOWN_SUITE, FIELD_INVALID, ...)
      submit only       any other frame a node may receive (ack, credit,
                        ping, pong) is not a Submit: MALFORMED here (gbxd
                        routes those frames elsewhere before the check)
      env 6 (limit)     payload_length <= opts.max_payload_bytes
                        (PAYLOAD_TOO_LARGE)
      env 7             from_agency == AUTH_AGENCY (SENDER_MISMATCH), then
                        from_agency in the registry (UNKNOWN_AGENCY)
      env 8-10          gbx_envelope_verify with the checker's vcache
                        (WRONG_KEY, BAD_INCLUSION_PATH, BAD_SIGNATURE)
      env 11-12         gbx_frame_check_payload (PAYLOAD_LENGTH_MISMATCH,
                        PAYLOAD_HASH_MISMATCH)

      stage 2, gbx_ingress_admit / seal / finish (the one writer thread):
      13 dedupe         (from_agency, message_id) in the dedupe keyspace, read
                        through the group's batch (gbx_batch_get), or earlier
                        in the same group: Accepted with the byte-identical
                        stored SignedReceipt and duplicate = true
      14 destination    to_agency is an agency of the registry served by
                        this node (UNKNOWN_DESTINATION; no peer link yet)
      15 times          now < expires (EXPIRED); created <= now + skew
                        (NOT_YET_VALID); expires - created <= max_ttl
                        (TTL_TOO_LONG)
      16 policy         gbx_policy_decide with opts.policy, THE policy call
                        site (POLICY_DENIED, POLICY_NO_MATCH); its volume
                        counters are read through the group's batch, so
                        messages earlier in the group count. HOLD: the
                        message is stored held (step 18), not queued; it
                        counts toward its destination's queue limits (17)
                        while it waits, so holds are bounded too
      17 capacity       the destination's queue, with this message added,
                        stays within opts.queue_max_messages and
                        opts.queue_max_bytes (0 = unlimited): else RETRY_LATER
                        with retry_after_ms = opts.retry_after_ms. After
                        dedupe (13), so a retry of an accepted message gets
                        its receipt even when the queue is full.
      18 store          puts into the group's batch (STORE_FAILED when the
                        group's commit fails):
                          messages[seq]  = be32(envelope len) || envelope
                                           bytes || encrypted payload
                          queues[queue_key(to_agency, seq)] = queue entry
                                           (broker/queue.h) and its due key;
                                           for HOLD held[queue_key(...)] =
                                           deadline || queue entry instead,
                                           with its 'H' due key at
                                           min(now + hold_timeout, expires)
                          counters[key] += n for each of the decision's
                                           counts (broker/policy.h)
                          dedupe[from_agency 0x00 message_id] = SignedReceipt
                                           (gbx_ingress_seal) and its due key
                          audit record (broker/audit.h), meta next_seq
      19 answer         Accepted{receipt, duplicate = false}, built by
                        gbx_ingress_finish only for a commit that returned
                        GBX_OK

    The receipt (2-envelope.md section 7) is signed with opts.node before the
    commit, because its bytes are the dedupe value written by that very
    commit: accepted_at_ms is the clock read at admission.

    Audit records (broker/audit.h), event=ACCEPTED | HELD | DUPLICATE | REJECTED,
    with reason=<gbx_err_name> (OK unless rejected), auth=, seq= (accepted),
    message_id= (when known), header_hash=, from=, to=, service=,
    service_version=, class= (when the envelope decoded; unauthenticated
    before step 10), rule_id=, rule_version=, policy_hash=, decision=,
    why= (when the policy decided). They
    go into the group's batch: a rejection's record is as durable as an
    acceptance (and lost with it when the commit fails, counted in
    audit_failures).

    Queue depth (issue 3, deliverable 4). The ingress keeps in memory, per
    destination agency, the number of entries in its queue and their bytes
    (held messages included: they wait to join it), where a message's bytes
    are the size of its messages[seq] value (4 + envelope + encrypted
    payload), the size its queue entry holds. gbx_ingress_new rebuilds these
    counters by scanning the queues and held keyspaces once (an entry whose value is not a queue
   entry, written before this design, is sized by reading its messages[seq] value). Admission counts
   a message at once, so that the next submission of the group sees it, and takes it back if the
   commit fails. The delivery path removes a queue entry (ack, expiry, dead letter, a refused hold)
   in a batch of the same writer and, after its commit returned GBX_OK, calls gbx_ingress_dequeued
   with the entry's size. Limits are strict: a message larger than queue_max_bytes is never
   admitted, so set queue_max_bytes well above max_payload_bytes. All admissions and dequeues for a
   store must go through one ingress (one writer).

    The dedupe window: a record is kept until max(expires_at_ms +
    clock_skew_ms, acceptance + opts.dedupe_window_ms); its due key lets
    the delivery sweep forget it (gbx_queue_forget). */
#ifndef GBX_INGRESS_H
#define GBX_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "policy.h"
#include "registry.h"
#include "store.h"

#define GBX_INGRESS_RULE_MAX 255 /* bytes of a policy rule id */

/*  Now, in milliseconds since the Unix epoch. */
typedef uint64_t (*gbx_ingress_clock_fn)(void *arg);

/*  Without a policy (opts.policy NULL) every message is allowed under
    rule_id GBX_INGRESS_ALLOW_ALL_RULE and policy_hash BLAKE2b-256 of the
    same text (tests, and a node whose operator chose no policy). */
#define GBX_INGRESS_ALLOW_ALL_RULE  "allow-all"
#define GBX_INGRESS_HOLD_TIMEOUT_MS (24u * 3600u * 1000u)

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
    gbx_policy_t *policy;        /* borrowed; NULL = allow-all; see gbx_ingress_set_policy */
    uint64_t hold_timeout_ms;    /* a held message is refused after it; 0 = 24 h */
    size_t vcache_slots;         /* 0 = 4096 */
    uint64_t queue_max_messages; /* per destination queue; 0 = unlimited */
    uint64_t queue_max_bytes;    /* per destination queue (stored bytes); 0 = unlimited */
    uint64_t retry_after_ms;     /* in RETRY_LATER answers of step 17; 0 = 1000 */
    uint64_t dedupe_window_ms;   /* limits.dedupe_window_ms; 0 = expires + skew only */
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
    int held;                  /* stored held for an approver, not queued */
    int data_class;            /* the header's (Accepted, new) */
} gbx_ingress_result_t;

/*  Counters since gbx_ingress_new. */
typedef struct {
    uint64_t submitted;      /* submissions admitted or refused */
    uint64_t accepted;       /* new messages stored */
    uint64_t duplicates;     /* answered with a stored receipt */
    uint64_t rejected;       /* Rejected answers, all reasons */
    uint64_t audit_failures; /* groups whose audit records were lost with a failed commit */
    uint64_t sig_verified;   /* batch-root Ed25519 verifications (gbx_vcache_stats;
                                single signatures are not counted there) */
    uint64_t sig_cache_hits; /* batch envelopes verified from the cache */
} gbx_ingress_stats_t;

typedef struct gbx_ingress gbx_ingress_t;

/* ------------------------------------------------------- one submission

   A submission carries one received message from the check (stage 1, on
   a verify worker) through admission (stage 2, on the writer) to its
   answer. Fields are filled stage by stage; the caller owns the struct and
   must call gbx_submission_clear when done. */
typedef struct gbx_submission {
    /* stage 1: gbx_checker_run */
    char auth[GBX_ID_MAX + 1]; /* the connection's ZAP User-Id */
    gbx_err_t reason;          /* GBX_OK: steps up to 12 passed */
    const char *detail;        /* text for the Rejected (static, or the policy's
                                  why below), or NULL */
    uint64_t tag;
    uint8_t msg_id[GBX_MSG_ID_BYTES];
    size_t msg_id_len;  /* 0 or 16 */
    gbx_frame_t *frame; /* owned; borrows the payload parts (keep them) */
    uint8_t header_hash[GBX_HASH_BYTES];
    /* stage 2: gbx_ingress_admit, gbx_ingress_seal */
    uint64_t now;
    char rule_id[GBX_INGRESS_RULE_MAX + 1];
    uint32_t rule_version;
    uint8_t policy_hash[GBX_HASH_BYTES];
    gbx_outcome_t outcome; /* ALLOW or HOLD when stored */
    char why[GBX_POLICY_WHY_MAX + 1];
    int policy_done;
    int duplicate;
    struct gbx_submission *dup_of; /* an earlier submission of this group */
    uint64_t seq;                  /* new message */
    uint64_t size;                 /* its stored bytes */
    uint8_t *receipt;              /* serialized SignedReceipt (malloc'ed) */
    size_t receipt_len;
    /* stage 3: gbx_ingress_finish */
    gbx_ingress_result_t result;
} gbx_submission_t;

void gbx_submission_init(gbx_submission_t *s);
/*  Frees what S owns (frame, receipt) and re-initialises it. */
void gbx_submission_clear(gbx_submission_t *s);

/* ------------------------------------------------ stage 1: the checker */

/*  A checker runs the stateless steps (framing, envelope 1 to 12: decode,
    sender = AUTH, registry, signature, payload length and hash). One per
    verify thread (it owns a signature cache); many may run at once on the
    same registry. */
typedef struct gbx_checker gbx_checker_t;

/*  Uses opts.registry, opts.max_payload_bytes, opts.vcache_slots. */
gbx_err_t gbx_checker_new(const gbx_ingress_opts_t *opts, gbx_checker_t **out);
void gbx_checker_destroy(gbx_checker_t **self_p);
/*  Checks the N PARTS of one message from AUTH into S (initialised) and
    returns S->reason. PARTS must stay alive until S is cleared (the frame
    borrows the payload). */
gbx_err_t gbx_checker_run(gbx_checker_t *self, const char *auth, const gbx_part_t *parts, size_t n,
                          gbx_submission_t *s);
/*  gbx_vcache_stats of the checker's cache. */
void gbx_checker_stats(const gbx_checker_t *self, uint64_t *verified, uint64_t *hits);

/* ------------------------------------------- stage 2: admission (writer)

   The writer builds one batch for a group of submissions (and delivery
   operations), then commits it once (group commit):

       for each submission:  gbx_ingress_admit(ing, s, batch)
       gbx_ingress_seal(ing, batch)          receipts signed, dedupe records
       rc = gbx_store_commit(store, &batch)
       for each submission:  gbx_ingress_finish(ing, s, rc, &reply, &len)
       gbx_ingress_group_end(ing)

   A submission refused at admission still gets its audit record in the
   batch. A duplicate of a submission admitted earlier in the same group is
   answered with that one's receipt. */

/*  Steps 13 to 17 and the puts of step 18 for S (which passed or failed
    stage 1: a failed one only gets its audit record). Returns the decision
    so far: GBX_OK (to be stored), GBX_E_DUPLICATE, or the reason. */
gbx_err_t gbx_ingress_admit(gbx_ingress_t *self, gbx_submission_t *s, gbx_batch_t *batch);
/*  Signs the receipts of the group's new messages and puts them as their
    dedupe records. On failure the batch must not be committed (answer the
    group as a failed commit). */
gbx_err_t gbx_ingress_seal(gbx_ingress_t *self, gbx_batch_t *batch);
/*  After the commit (COMMIT_RC its result): counts S and builds part 1 of
    its answer into *reply (malloc'ed, caller frees). A new message becomes
    Accepted only when COMMIT_RC is GBX_OK; else it is Rejected
    STORE_FAILED (or INTERNAL_ERROR). Fills S->result. Returns S's final
    decision; GBX_E_NOMEM with *reply NULL when the answer cannot be built. */
gbx_err_t gbx_ingress_finish(gbx_ingress_t *self, gbx_submission_t *s, gbx_err_t commit_rc,
                             uint8_t **reply, size_t *reply_len);
/*  Forgets the group (its in-group dedupe index). */
void gbx_ingress_group_end(gbx_ingress_t *self);

/* ------------------------------------------------------- all in one call */

/*  OPTS is copied (the pointers in it are borrowed and must outlive the
    ingress). GBX_E_ARG when a required option is missing. On GBX_OK the
    caller owns *out. */
gbx_err_t gbx_ingress_new(const gbx_ingress_opts_t *opts, gbx_ingress_t **out);
/*  NULL-safe; sets *self_p to NULL. Does not touch the borrowed objects. */
void gbx_ingress_destroy(gbx_ingress_t **self_p);

/*  Decides the next messages with POLICY (borrowed; NULL = allow-all): a
    reload. Call it from the thread that admits, so that every message is
    decided by exactly one version. Returns the policy it replaces (the
    caller frees it when nothing else borrows it). */
gbx_policy_t *gbx_ingress_set_policy(gbx_ingress_t *self, gbx_policy_t *policy);
/*  The policy it decides with (NULL: allow-all). Same thread rule. */
const gbx_policy_t *gbx_ingress_policy(const gbx_ingress_t *self);

/*  The three stages for one message, with a group of one (tests, tools):
    admits the N PARTS of one ZeroMQ message received on a connection whose
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
/*  One entry of DEST's queue, of BYTES stored bytes (the size in its queue
    entry), has left the queue: the writer calls it after the commit of the
    batch that deleted the entry returned GBX_OK, never before. Counters
    never go below 0. GBX_E_ARG for NULL arguments, GBX_E_STATE if DEST has
    no queued entry (the call is then ignored). */
gbx_err_t gbx_ingress_dequeued(gbx_ingress_t *self, const char *dest, uint64_t bytes);

/*  An entry of BYTES stored bytes joined DEST's queue other than by
    admission (an operator's replay of a dead letter): the writer calls it
    after the commit returned GBX_OK. GBX_E_NOMEM, GBX_E_ARG. */
gbx_err_t gbx_ingress_enqueued(gbx_ingress_t *self, const char *dest, uint64_t bytes);
/*  Draining (ON 1): from the next admission on, every new message is
    refused DRAINING (a duplicate still gets its receipt). The writer's
    thread only (a DRAIN job), so the audit record of the switch orders it
    exactly among the messages. Returns what it was before. */
int gbx_ingress_set_draining(gbx_ingress_t *self, int on);
/*  Short of disk (LOW 1): new messages are refused RETRY_LATER until it is
    cleared. Any thread (gbxd's loop checks the free space). */
void gbx_ingress_set_disk_low(gbx_ingress_t *self, int low);

/*  The dedupe key of (FROM, MESSAGE_ID): FROM's bytes, 0x00, the 16 id
    bytes, into OUT (room for GBX_ID_MAX + 1 + GBX_MSG_ID_BYTES); *len its
    length. GBX_E_ARG if FROM is empty or longer than GBX_ID_MAX. */
#define GBX_INGRESS_DEDUPE_KEY_MAX (GBX_ID_MAX + 1 + GBX_MSG_ID_BYTES)
gbx_err_t gbx_ingress_dedupe_key(const char *from, const uint8_t message_id[GBX_MSG_ID_BYTES],
                                 uint8_t *out, size_t *len);

#endif
