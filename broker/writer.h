/*  gbx_writer: the one thread that writes the store (issue 3, deliverable
    5: "one writer owns RocksDB and batches commits"), and its syncer.

    It takes jobs (broker/job.h) from its input channel, as many as are
    waiting (up to opts.max_group), applies each to one batch, writes the
    batch once, and after the fsync that covers it (below) hands every job
    back on the output channel. Each job's own
    admission or queue operation is atomic (a save point rolls back a
    failure); the group is atomic as a whole.

        SUBMIT      gbx_ingress_admit; then gbx_ingress_seal for the group;
                    after the commit gbx_ingress_finish builds job->reply
        MARK        gbx_queue_mark             (job->entry after the mark)
        UNMARK      gbx_queue_unmark
        ACK         gbx_queue_ack, EXPIRE gbx_queue_expire, DEADLETTER
                    gbx_queue_deadletter: after a successful commit,
                    gbx_ingress_dequeued(dest, entry.size)
        FORGET      gbx_queue_forget

    Pipelined group commit: the writer applies a group and writes it
    without waiting for the disk (gbx_store_write), then hands it to the
    syncer thread, which makes it durable (gbx_store_sync: one fsync for
    every group written since the last) and only then hands its jobs back.
    So the writer builds group N+1 while group N's fsync runs; no answer or
    Deliver leaves before the fsync that covers it. A failed sync turns the
    group's answers into STORE_FAILED (job->commit says so).

    job->rc is the operation's result (GBX_E_STATE: the message was not in
    the state the operation starts from; nothing was written for it) and
    job->commit the group's. Nothing a job wrote exists unless job->commit
    is GBX_OK.

    commit_max_delay_ms: after taking the first job of a group, the writer
    waits up to this long for more before it commits (0: a group is what
    queued while the previous commit ran, which is already the natural
    group commit). Stats: apply/seal/commit are the writer thread's time,
    sync the syncer's. */
#ifndef GBX_WRITER_H
#define GBX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "gbx/err.h"
#include "ingress.h"
#include "metrics.h"
#include "store.h"

typedef uint64_t (*gbx_writer_clock_fn)(void *arg);

typedef struct {
    gbx_store_t *store;     /* borrowed */
    gbx_ingress_t *ingress; /* borrowed; used by the writer thread only */
    gbx_chan_t *in;         /* jobs to apply (borrowed) */
    gbx_chan_t *out;        /* jobs done (borrowed) */
    size_t max_group;       /* 0 = 512 */
    unsigned commit_max_delay_ms;
    gbx_writer_clock_fn clock; /* NULL = CLOCK_REALTIME, ms */
    void *clock_arg;
    gbx_metrics_t *metrics; /* optional: the syncer observes each fsync, the
                               writer sets the queues' depth after each group */
} gbx_writer_opts_t;

typedef struct {
    uint64_t groups;    /* commits */
    uint64_t jobs;      /* jobs applied */
    uint64_t failed;    /* groups whose commit failed */
    uint64_t apply_ns;  /* time spent building batches (admission included) */
    uint64_t seal_ns;   /* signing receipts */
    uint64_t commit_ns; /* time in gbx_store_write (no fsync) */
    uint64_t syncs;     /* fsyncs by the syncer (one covers every group written before) */
    uint64_t sync_ns;   /* time in gbx_store_sync */
    uint64_t max_group; /* largest group */
} gbx_writer_stats_t;

typedef struct gbx_writer gbx_writer_t;

/*  Starts the thread. On GBX_OK the caller owns *out. */
gbx_err_t gbx_writer_start(const gbx_writer_opts_t *opts, gbx_writer_t **out);
/*  Finishes the jobs already in the input channel, stops the thread, and
    frees the writer. The caller closes nothing: the writer stops when the
    input channel is closed (gbx_chan_close) and empty. NULL-safe. */
void gbx_writer_stop(gbx_writer_t **self_p);
/*  A copy of the counters (thread-safe, approximate while running). */
void gbx_writer_stats(gbx_writer_t *self, gbx_writer_stats_t *out);

#endif
