/*  gbx_store: the broker's durable store, one RocksDB database in a data dir.

    Keyspaces (one RocksDB column family each; the names are on disk):
      GBX_KS_MESSAGES "messages"  key = 8-byte big-endian sequence (gbx_store_seq_key),
                                  value = envelope + payload
      GBX_KS_QUEUES   "queues"    key = dest id, 0x00, 8-byte big-endian sequence
                                  (gbx_store_queue_key), so that one destination's entries
                                  are one prefix and sort by sequence
      GBX_KS_DEDUPE   "dedupe"    key = from agency, 0x00, message id (gbx_ingress_dedupe_key),
                                  value = the signed receipt given for it
      GBX_KS_AUDIT    "audit"     the audit trail's records, one segment per commit:
                                  key = be64 index of its first record (0, 1, ... in
                                  commit order), value = its sealed records
                                  (broker/trail.h)
      GBX_KS_DLQ      "dlq"       dead-lettered messages' queue entries, keyed like
                                  "queues" (their messages stay in "messages")
      GBX_KS_EXPIRY   "expiry"    time index: be64 due time (ms), be64 sequence, one
                                  kind byte (broker/queue.h says which)
      GBX_KS_META     "meta"      counters: GBX_STORE_META_SCHEMA, GBX_STORE_META_NEXT_SEQ
                                  (8-byte big-endian values)
      GBX_KS_HELD     "held"      messages held by the policy for an approver, keyed and
                                  valued like "queues" (their messages in "messages")
      GBX_KS_COUNTERS "counters"  the policy's volume counters: key = the counter's text
                                  (broker/policy.h), value = 8-byte big-endian count
      GBX_KS_TRAIL    "trail"     the audit trail's head, tree nodes, checkpoints and
                                  retention anchor (broker/trail.h)

    Durability. Every change goes through a batch (gbx_batch_t) applied by
    gbx_store_commit: all of its puts and deletes, across keyspaces, become
    visible and durable together or not at all (one RocksDB WriteBatch, one
    WAL record). With opts.sync (the default) gbx_store_commit returns only
    after the WAL has been written and fsync'ed (rocksdb_writeoptions_set_sync
    (1)): a batch whose commit returned GBX_OK survives kill -9 and power
    loss. This is the "nothing acknowledged before it is on disk" primitive;
    group commit means putting many messages into one batch, and
    gbx_store_write + gbx_store_sync (below) let one thread build the next
    batch while another waits for the fsync. With sync off a committed batch
    survives a crash of the process (it is in the OS page cache) but not of
    the machine.

    Sequences. gbx_store_next_seq hands out increasing sequence numbers from
    memory. A batch that stores message SEQ calls gbx_batch_put_seq(batch,
    SEQ); its commit then also writes meta "next_seq" (never backwards), in
    the same atomic batch. On open the counter resumes at max(meta next_seq,
    last key of "messages" + 1, 1): numbers handed out but never committed
    are skipped, never reused for a committed message.

    Threads. A store may be used from several threads: gets and iterators run
    concurrently; commits are serialised by the store (one writer). A batch
    or an iterator belongs to one thread at a time.

    Errors. RocksDB errors are GBX_E_STORE_FAILED, filesystem errors on the
    data dir GBX_E_IO, a data dir written by a newer gbx GBX_E_STATE. The
    store never prints: the text of each error goes to opts.log (one line,
    stable id first: "GBX-STORE-FAILED op=commit err=...") when set, and
    gbx_store_last_error returns the latest one. */
#ifndef GBX_STORE_H
#define GBX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"

/*  The schema this code writes; a data dir with a higher one is refused. */
#define GBX_STORE_SCHEMA_VERSION 1u
#define GBX_STORE_META_SCHEMA    "schema_version"
#define GBX_STORE_META_NEXT_SEQ  "next_seq"
#define GBX_STORE_SEQ_KEY_BYTES  8u
/*  Longest dest id gbx_store_queue_key accepts. */
#define GBX_STORE_DEST_MAX 255u

typedef enum {
    GBX_KS_MESSAGES = 0,
    GBX_KS_QUEUES,
    GBX_KS_DEDUPE,
    GBX_KS_AUDIT,
    GBX_KS_DLQ,
    GBX_KS_EXPIRY,
    GBX_KS_META,
    GBX_KS_HELD,
    GBX_KS_COUNTERS,
    GBX_KS_TRAIL,
    GBX_KS_COUNT_
} gbx_keyspace_t;

/*  The column family name of KS ("messages" ...); NULL if KS is not one. */
const char *gbx_keyspace_name(gbx_keyspace_t ks);

typedef struct {
    /* fsync the WAL before gbx_store_commit returns (default true) */
    bool sync;
    /* RocksDB block cache, bytes, shared by the keyspaces (default 16 MiB) */
    size_t cache_bytes;
    /* optional: receives each error line (no newline); called from the
       failing thread */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* open without writing or locking, beside a running gbxd (gbx-audit);
       the database must exist. Reads see it as it was when opened */
    bool read_only;
} gbx_store_opts_t;

/*  Sets the defaults above. */
void gbx_store_opts_init(gbx_store_opts_t *opts);

typedef struct gbx_store gbx_store_t;
typedef struct gbx_trail gbx_trail_t;

/*  Opens the database in DIR, creating DIR (mode 0700, parent must exist),
    the database and missing keyspaces as needed. OPTS may be NULL (the
    defaults); it is copied. On GBX_OK the caller owns *out. GBX_E_STATE if
    DIR holds a newer schema; GBX_E_IO if DIR cannot be created or is not a
    directory; GBX_E_STORE_FAILED if RocksDB refuses it (e.g. it is locked by
    another open store, in this process or another). */
gbx_err_t gbx_store_open(const char *dir, const gbx_store_opts_t *opts, gbx_store_t **out);
/*  Closes the database. NULL-safe; sets *self_p to NULL. Batches and
    iterators of the store must be destroyed first. */
void gbx_store_destroy(gbx_store_t **self_p);

/*  The store's audit trail (broker/trail.h), opened with it. */
gbx_trail_t *gbx_store_trail(gbx_store_t *self);

/*  Copies the text of the latest error ("" if none) into BUF (truncated,
    always NUL-terminated when LEN > 0). */
void gbx_store_last_error(gbx_store_t *self, char *buf, size_t len);

/*  Reads KEY of KS. On GBX_OK *val is a malloc'ed copy the caller frees and
    *vlen its length, or, when the key is absent, *val is NULL and *vlen 0
    (not finding a key is not an error). */
gbx_err_t gbx_store_get(gbx_store_t *self, gbx_keyspace_t ks, const void *key, size_t klen,
                        uint8_t **val, size_t *vlen);

/* ------------------------------------------------------------- sequences */

/*  The next message sequence number (>= 1), unique for the life of the
    data dir once committed (see "Sequences" above). Thread-safe. */
uint64_t gbx_store_next_seq(gbx_store_t *self);
/*  KEY = SEQ big-endian, so that keys sort numerically. */
void gbx_store_seq_key(uint64_t seq, uint8_t key[GBX_STORE_SEQ_KEY_BYTES]);
uint64_t gbx_store_seq_from_key(const uint8_t key[GBX_STORE_SEQ_KEY_BYTES]);
/*  The queues key of (DEST, SEQ) into OUT (room for CAP bytes): DEST's bytes,
    0x00, SEQ big-endian; *len its length. The prefix of all of DEST's
    entries is the first strlen(DEST) + 1 bytes. GBX_E_ARG if DEST is empty
    or longer than GBX_STORE_DEST_MAX, or CAP is too small. */
gbx_err_t gbx_store_queue_key(const char *dest, uint64_t seq, uint8_t *out, size_t cap,
                              size_t *len);

/* ---------------------------------------------------------------- batches */

typedef struct gbx_batch gbx_batch_t;

/*  An empty batch for SELF's keyspaces. On GBX_OK the caller owns *out. */
gbx_err_t gbx_batch_new(gbx_store_t *self, gbx_batch_t **out);
/*  Drops the batch without applying it. NULL-safe; sets *self_p to NULL. */
void gbx_batch_destroy(gbx_batch_t **self_p);
/*  Queues a put / a delete of KEY in KS (copied). GBX_E_ARG for an unknown KS. */
gbx_err_t gbx_batch_put(gbx_batch_t *self, gbx_keyspace_t ks, const void *key, size_t klen,
                        const void *val, size_t vlen);
gbx_err_t gbx_batch_delete(gbx_batch_t *self, gbx_keyspace_t ks, const void *key, size_t klen);
/*  Marks the batch as storing message SEQ: its commit advances meta
    next_seq to at least SEQ + 1, atomically with the rest of the batch. */
void gbx_batch_put_seq(gbx_batch_t *self, uint64_t seq);
/*  Appends audit record REC (LEN bytes, copied; broker/audit.h) to the
    batch. The store's commit hands the batch's records, in order, to the
    audit trail under its commit lock, which numbers, chains and puts them
    in the same atomic write (broker/trail.h): records are numbered in the
    order their batches reach the disk. A rollback drops the records
    appended since its mark. */
gbx_err_t gbx_batch_append(gbx_batch_t *self, const char *rec, size_t len);
/*  The number of records appended. */
size_t gbx_batch_appended(const gbx_batch_t *self);
/*  Asks the commit to sign a checkpoint of the trail too (when it has
    records no checkpoint covers and the trail has a signer). */
void gbx_batch_checkpoint(gbx_batch_t *self);
/*  The number of puts and deletes queued. */
size_t gbx_batch_count(const gbx_batch_t *self);
/*  Reads KEY of KS as it will be once the batch is committed: the batch's
    own latest put or delete of KEY if it has one, else the store's value.
    Same contract as gbx_store_get. This is what lets one writer put many
    messages into one batch (group commit) and still see, for the second
    submit of a message id, the dedupe entry the first one put. */
gbx_err_t gbx_batch_get(gbx_batch_t *self, gbx_keyspace_t ks, const void *key, size_t klen,
                        uint8_t **val, size_t *vlen);
/*  Save points: gbx_batch_mark remembers the batch as it is now;
    gbx_batch_rollback drops everything queued since the latest mark not yet
    rolled back to, and forgets that mark (GBX_E_STATE if there is none).
    A writer marks before each message, so that one message's failure takes
    back its half-built puts and leaves the others of the group. */
void gbx_batch_mark(gbx_batch_t *self);
gbx_err_t gbx_batch_rollback(gbx_batch_t *self);

/*  Applies *batch_p atomically (synced when opts.sync; see "Durability").
    On GBX_OK the batch is consumed and *batch_p set to NULL; on error nothing
    was applied and the caller still owns it (GBX_E_STORE_FAILED, GBX_E_ARG
    if the batch belongs to another store). */
gbx_err_t gbx_store_commit(gbx_store_t *self, gbx_batch_t **batch_p);

/*  Group commit in two steps, so that one thread can build the next batch
    while another waits for the disk: gbx_store_write applies *BATCH_P like
    gbx_store_commit but without waiting for the fsync (its writes are
    visible to readers at once, and survive a crash of the process, not of
    the machine); gbx_store_sync then makes everything written so far
    durable (one fsync of the WAL) and raises gbx_store_durable_next. A
    caller must not act on a written batch (answer, deliver) before a sync
    that started after its write returned GBX_OK. */
gbx_err_t gbx_store_write(gbx_store_t *self, gbx_batch_t **batch_p);
gbx_err_t gbx_store_sync(gbx_store_t *self);
/*  Every message sequence below this is durable (synced commits, syncs).
    Readers that must not see what may still vanish in a crash (a queue
    refill: never deliver what the sender has no receipt for) stop there. */
uint64_t gbx_store_durable_next(gbx_store_t *self);
/*  1 once a gbx_store_sync failed. From then on every commit, write and
    sync returns GBX_E_STORE_FAILED at once: what was written since the last
    good sync may or may not be on disk, and only a restart (RocksDB's
    recovery of the WAL) tells which. gbxd stops when it sees this. */
int gbx_store_broken(gbx_store_t *self);

/* -------------------------------------------------------------- iterators */

typedef struct gbx_store_iter gbx_store_iter_t;

/*  An iterator over the keys of KS that start with PREFIX (PLEN may be 0:
    the whole keyspace), in byte order, positioned on the first one. It sees
    the keyspace as it was when created (a snapshot). On GBX_OK the caller
    owns *out. */
gbx_err_t gbx_store_iter_new(gbx_store_t *self, gbx_keyspace_t ks, const void *prefix, size_t plen,
                             gbx_store_iter_t **out);
/*  The same, positioned on the first key >= FROM (which starts with PREFIX;
    else GBX_E_ARG), and never going below FROM: keys before it, deleted
    ones included, cost nothing (a queue's acked head, the expiry keyspace's
    swept past). */
gbx_err_t gbx_store_iter_from(gbx_store_t *self, gbx_keyspace_t ks, const void *prefix, size_t plen,
                              const void *from, size_t flen, gbx_store_iter_t **out);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_store_iter_destroy(gbx_store_iter_t **self_p);
/*  Moves to the first key >= KEY within the prefix. */
void gbx_store_iter_seek(gbx_store_iter_t *self, const void *key, size_t klen);
/*  Moves to the last key <= KEY (an iterator made with gbx_store_iter_from
    never goes below its FROM); not valid if there is none. */
void gbx_store_iter_seek_for_prev(gbx_store_iter_t *self, const void *key, size_t klen);
/*  True while positioned on a key with the prefix. */
bool gbx_store_iter_valid(gbx_store_iter_t *self);
/*  The current key / value (only while valid); the bytes stay valid until
    the next seek, next or destroy. */
const uint8_t *gbx_store_iter_key(gbx_store_iter_t *self, size_t *klen);
const uint8_t *gbx_store_iter_value(gbx_store_iter_t *self, size_t *vlen);
void gbx_store_iter_next(gbx_store_iter_t *self);
/*  GBX_E_STORE_FAILED if iteration stopped on an error rather than at the
    end (check once iter_valid turns false); else GBX_OK. */
gbx_err_t gbx_store_iter_error(gbx_store_iter_t *self);

#endif
