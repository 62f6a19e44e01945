/*  gbx_trail: the audit trail, the broker's tamper-evident log.

    Records. Every audit record (broker/audit.h) goes into the batch of the
    change it records (gbx_batch_append). The store hands a batch's records
    to the trail when it commits the batch, under its commit lock, so records
    are numbered 0, 1, 2 ... in the order their batches reach the disk, with
    no gaps, in the same atomic write as the change. The trail seals record
    i by appending two lines to its text:
        i=<index>
        chain=<64 lowercase hex>
    The records of one commit are stored together, one value in keyspace
    "audit" under be64 of the first one's index (a *segment*: one put per
    write, not per record; read them with gbx_trail_iter). With
        leaf(i)  = BLAKE2b-256(0x00 || the sealed record up to and including
                   its "i=" line)                       (gbx_merkle_leaf)
        chain(i) = BLAKE2b-256(0x02 || chain(i-1) || leaf(i)), chain(-1) = 32 zero bytes
    a record checks on its own against its predecessor's chain line: an
    edit, a deletion or a reordering breaks the chain at the record itself.

    Tree. The leaves of an RFC 6962 Merkle tree (gbx/merkle.h) are leaf(i).
    The trail keeps the tree's peaks (and the chain's head) in memory and in
    keyspace "trail" (key "h"), and stores every complete subtree of
    GBX_TRAIL_NODE_MIN leaves or more (key 'n', u8 level, be64 index), so a
    proof reads O(log n) nodes and at most 2 x 255 records.

    Checkpoints. A commit signs a checkpoint (gbx/checkpoint.h: size, root,
    chain head, time, the node's Ed25519 signature) when it brings the
    records no checkpoint covers to `every` (gbx_trail_set_signer), or when
    its batch asks for one (gbx_batch_checkpoint: gbxd's timer). Stored in
    "trail" under 'c' || be64(size), as its text form; countersignatures
    by peers are added to the same line.

    Retention. gbx_trail_prune deletes the oldest records up to a
    checkpoint's size and keeps an anchor (key "a": that size, the chain at
    it and the tree's peaks at it, which the checkpoint's root and chain
    vouch for), so what stays still verifies, and proofs of what stays
    still work: the nodes of complete subtrees are kept.

    Reading. The functions below taking a store read the trail as it is
    in that store (gbx-audit opens it read-only beside a running gbxd). */
#ifndef GBX_TRAIL_H
#define GBX_TRAIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gbx/checkpoint.h"
#include "gbx/err.h"
#include "gbx/merkle.h"
#include "store.h"

#define GBX_TRAIL_NODE_MIN_LEVEL 8u /* nodes of 256 leaves and up are stored */
#define GBX_TRAIL_SEAL_BYTES     (sizeof "i=18446744073709551615\nchain=\n" - 1 + 64)

/* ------------------------------------------------- for the store (store.c) */

/*  Reads the trail's head from STORE (a fresh store: an empty trail). */
gbx_err_t gbx_trail_open(gbx_store_t *store, gbx_trail_t **out);
void gbx_trail_destroy(gbx_trail_t **self_p);
/*  Seals the N records of BATCH (record k is TEXT[OFF[k] .. OFF[k+1])) and
    puts them, the new nodes, the head and, when due (or CHECKPOINT and
    records are uncovered), a signed checkpoint into BATCH. The new head
    waits for gbx_trail_settle. Called under the store's commit lock. */
gbx_err_t gbx_trail_seal(gbx_trail_t *self, gbx_batch_t *batch, const char *text, const size_t *off,
                         size_t n, int checkpoint);
/*  After the write of a sealed batch: WRITTEN 1 keeps the new head (and
    DURABLE 1 says it is synced already), 0 goes back to the old. */
void gbx_trail_settle(gbx_trail_t *self, int written, int durable);
/*  A sync that started when the trail had RECORDS records has finished. */
void gbx_trail_synced(gbx_trail_t *self, uint64_t records);

/* ------------------------------------------------------------------ gbxd */

/*  From now on checkpoints are signed as NODE with SIGN_SK (64 bytes,
    copied into guarded memory), every EVERY (>= 1) records. CLOCK (may be
    NULL: the system clock) gives the checkpoints' time in ms. Call before
    the store is shared between threads. */
gbx_err_t gbx_trail_set_signer(gbx_trail_t *self, const char *node, const uint8_t *sign_sk,
                               uint64_t every, uint64_t (*clock)(void *), void *clock_arg);

typedef struct {
    uint64_t first;      /* records before it were pruned */
    uint64_t size;       /* records written */
    uint64_t durable;    /* records synced */
    uint64_t checkpoint; /* records the latest checkpoint covers */
    uint64_t checkpoint_ms;
    gbx_hash_t chain; /* the chain's head */
} gbx_trail_head_t;

/*  The trail's head as written so far. Thread-safe. */
void gbx_trail_head(gbx_trail_t *self, gbx_trail_head_t *out);
/*  Records written (gbx_trail_head's size). Thread-safe. */
uint64_t gbx_trail_size(gbx_trail_t *self);

/*  Queues into BATCH the deletion of the records before UPTO, which must be
    the size of a stored checkpoint, at most the durable size and above the
    first record kept (else GBX_E_ARG; GBX_E_STATE if there is no such
    checkpoint), and the new anchor; asks for a checkpoint at its commit
    (gbx_batch_checkpoint), which also moves the head's first record.
    *DELETED says how many records go. */
gbx_err_t gbx_trail_prune(gbx_trail_t *self, gbx_batch_t *batch, uint64_t upto, uint64_t *deleted);

/* ------------------------------------------------------------- reading */

/*  The sealed records of STORE's trail, in storage order, from the one
    at position FROM on (position: a segment's key plus the record's place
    in it; the checker compares it with each record's i=). */
typedef struct gbx_trail_iter gbx_trail_iter_t;
gbx_err_t gbx_trail_iter_new(gbx_store_t *store, uint64_t from, gbx_trail_iter_t **out);
void gbx_trail_iter_destroy(gbx_trail_iter_t **self_p);
/*  1 and the next record in *REC, *LEN (valid until the next call), or 0
    at the end (then gbx_trail_iter_error says whether it was an error). */
int gbx_trail_iter_next(gbx_trail_iter_t *self, const uint8_t **rec, size_t *len);
gbx_err_t gbx_trail_iter_error(gbx_trail_iter_t *self);
/*  Reads the records from FROM to the end and calls FN for each whose text
    holds NEEDLE (NLEN bytes), with the record (valid during the call); FN
    returns nonzero to stop. Every 4096 records it looks at *STOP (may be
    NULL) and stops when it is set (another thread cancels). *SCANNED (may
    be NULL): records read. A message's life is the records that hold
    "message_id=<hex>\n" (gbxctl messages show). */
typedef int (*gbx_trail_grep_fn)(void *arg, const uint8_t *rec, size_t len);
gbx_err_t gbx_trail_grep(gbx_store_t *store, uint64_t from, const void *needle, size_t nlen,
                         gbx_trail_grep_fn fn, void *arg, const atomic_int *stop,
                         uint64_t *scanned);
/*  A malloc'ed copy of record INDEX (*REC NULL when there is none). */
gbx_err_t gbx_trail_get(gbx_store_t *store, uint64_t index, uint8_t **rec, size_t *len);

/*  One sealed record, parsed. */
typedef struct {
    uint64_t index;
    gbx_hash_t leaf;  /* computed from the text */
    gbx_hash_t chain; /* as stored in the record */
    const char *text; /* the record as the broker wrote it (without i= and chain=) */
    size_t text_len;
} gbx_trail_rec_t;

/*  Parses sealed record REC (LEN bytes; REC must stay alive while OUT is
    used). GBX_E_MALFORMED if it does not end with the i= and chain= lines. */
gbx_err_t gbx_trail_parse(const uint8_t *rec, size_t len, gbx_trail_rec_t *out);
/*  The chain value after PREV for LEAF. */
void gbx_trail_chain(const gbx_hash_t prev, const gbx_hash_t leaf, gbx_hash_t out);

/*  The anchor of STORE's trail: the first record kept, the chain before it
    and the tree's peaks over the pruned records (all zero / empty when
    nothing was pruned). */
gbx_err_t gbx_trail_anchor(gbx_store_t *store, uint64_t *first, gbx_hash_t chain,
                           gbx_merkle_peaks_t *peaks);
/*  The stored checkpoint of exactly SIZE records; GBX_E_STATE if none. */
gbx_err_t gbx_trail_checkpoint(gbx_store_t *store, uint64_t size, gbx_checkpoint_t *out);
/*  The first stored checkpoint of more than INDEX records (the oldest one
    that covers record INDEX); GBX_E_STATE if none. */
gbx_err_t gbx_trail_checkpoint_after(gbx_store_t *store, uint64_t index, gbx_checkpoint_t *out);
/*  Stores CP's countersignatures (merged with those stored) on the stored
    checkpoint of the same size and root; GBX_E_STATE if there is none,
    GBX_E_BAD_SIGNATURE if it differs from CP. Goes into BATCH. */
gbx_err_t gbx_trail_put_cosigs(gbx_store_t *store, gbx_batch_t *batch, const gbx_checkpoint_t *cp);

/*  The tree's peaks over the first SIZE records (the start of a range
    check: gbx_trail_check_init). */
gbx_err_t gbx_trail_peaks_at(gbx_store_t *store, uint64_t size, gbx_merkle_peaks_t *out);
/*  The inclusion path of record INDEX in the tree of SIZE records. */
gbx_err_t gbx_trail_prove(gbx_store_t *store, uint64_t index, uint64_t size, gbx_hash_t *path,
                          size_t *path_len);
/*  The consistency proof from SIZE M to SIZE N. */
gbx_err_t gbx_trail_consistency(gbx_store_t *store, uint64_t m, uint64_t n, gbx_hash_t *proof,
                                size_t *proof_len);

/* ------------------------------------------------------------ verifying */

/*  Checks records one by one against their predecessors and checkpoints
    against the records: what `gbx-audit verify` runs over a store or an
    export. */
typedef struct {
    uint64_t next;    /* index the next record must have */
    gbx_hash_t chain; /* chain of record next - 1 */
    gbx_merkle_peaks_t peaks;
    uint64_t records, checkpoints, cosigs; /* checked so far */
    uint64_t vouched; /* records up to here are vouched for by a checked checkpoint
                         (or the start) */
} gbx_trail_check_t;

/*  Starts at record FIRST, after CHAIN, with PEAKS the tree over the
    records before FIRST (peaks->size == FIRST). */
void gbx_trail_check_init(gbx_trail_check_t *self, uint64_t first, const gbx_hash_t chain,
                          const gbx_merkle_peaks_t *peaks);
/*  The next record. GBX_E_AUDIT_BROKEN with WHY (a sentence) when it is not
    the one expected: unparsable, another index (a record missing or out of
    order), or a chain that does not follow (an edited record). */
gbx_err_t gbx_trail_check_record(gbx_trail_check_t *self, const uint8_t *rec, size_t len, char *why,
                                 size_t why_len);
/*  A checkpoint for exactly the records checked so far (CP->size ==
    self->next): its signature under NODE_PK and its root and chain against
    the records. GBX_E_AUDIT_BROKEN with WHY otherwise. */
gbx_err_t gbx_trail_check_checkpoint(gbx_trail_check_t *self, const gbx_checkpoint_t *cp,
                                     const uint8_t node_pk[GBX_KEY_BYTES], char *why,
                                     size_t why_len);

#endif
