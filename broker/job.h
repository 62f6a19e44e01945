/*  gbx_job: one unit of work passed between gbxd's threads.

        loop thread --SUBMIT--> verify workers --SUBMIT--> writer --> loop
        loop thread --MARK, ACK, EXPIRE, DEADLETTER, FORGET--> writer --> loop
        loop thread --POLICY (a reload)--> writer --> loop
        loop thread --RELEASE, REFUSE (held messages)--> writer --> loop

    The loop thread (broker/gbxd.c) owns the sockets and makes jobs; a
    verify worker runs stage 1 of admission on a SUBMIT (gbx_checker_run);
    the writer (broker/writer.h) applies a group of jobs to one batch,
    commits it and hands every job back to the loop, which answers or acts
    on the result and frees the job. A job belongs to one thread at a time:
    the channel hand-off is the only synchronisation it needs. */
#ifndef GBX_JOB_H
#define GBX_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "gbx/checkpoint.h"
#include "gbx/err.h"
#include "ingress.h"
#include "queue.h"

#define GBX_JOB_RID_MAX 256 /* bytes of a ROUTER routing id */

typedef enum {
    GBX_JOB_SUBMIT = 1, /* admit a message (gbx_ingress stages 1 to 3) */
    GBX_JOB_MARK,       /* gbx_queue_mark: about to deliver */
    GBX_JOB_UNMARK,     /* gbx_queue_unmark: that Deliver never left */
    GBX_JOB_ACK,        /* gbx_queue_ack */
    GBX_JOB_EXPIRE,     /* gbx_queue_expire */
    GBX_JOB_DEADLETTER, /* gbx_queue_deadletter */
    GBX_JOB_FORGET,     /* gbx_queue_forget: a dedupe record's time is up */
    GBX_JOB_POLICY,     /* decide from now on with job->policy (the writer
                           swaps it with the ingress's and audits the load) */
    GBX_JOB_RELEASE,    /* gbx_queue_release: an approver approved a hold */
    GBX_JOB_REFUSE,     /* gbx_queue_refuse with job->reason */
    GBX_JOB_CHECKPOINT, /* sign a checkpoint of the audit trail (gbxd's timer) */
    GBX_JOB_PRUNE,      /* gbx_trail_prune up to job->seq records, audited
                           with job->by; job->count: records deleted */
    GBX_JOB_COSIGN,     /* store the countersignatures of job->checkpoint,
                           audited with job->by */
    GBX_JOB_REPLAY,     /* gbx_queue_replay: an operator queues a dead letter again */
    GBX_JOB_PURGE,      /* gbx_queue_purge: an operator deletes a dead letter */
    GBX_JOB_DRAIN,      /* job->seq 1: the node stops taking new messages
                           (DRAINING), 0: takes them again; audited with
                           job->by (the writer's, like POLICY) */
    GBX_JOB_DENIED,     /* audit CONTROL_REFUSED: operator job->by (role in
                           job->dest) was refused command job->comment,
                           job->count times since the last such record */
    GBX_JOB_QUERY       /* never at the writer: an operator's read-only query
                           answered by a worker thread (broker/control.h);
                           job->reply is the answer's JSON text */
} gbx_job_kind_t;

typedef struct gbx_job {
    gbx_job_kind_t kind;
    /* the session it came from (SUBMIT: where the answer goes) */
    uint8_t rid[GBX_JOB_RID_MAX];
    size_t rid_len;
    /* SUBMIT: the received parts after the routing id (owned) */
    zmq_msg_t *msgs;
    size_t nmsgs;
    size_t wire_bytes;    /* their total size */
    uint64_t received_ns; /* monotonic, when the loop read it (accept latency) */
    gbx_submission_t sub;
    uint8_t *reply; /* part 1 of the answer, set by the writer */
    size_t reply_len;
    /* delivery operations */
    char dest[GBX_ID_MAX + 1];
    uint64_t seq;
    uint64_t delivery_id;
    int sweep;                    /* made by the expiry sweep */
    uint8_t due[GBX_DUE_KEY_LEN]; /* FORGET */
    uint8_t *val;                 /* FORGET: the dedupe key (owned) */
    size_t vlen;
    gbx_policy_t *policy;         /* POLICY: the new one; back from the writer, the
                                     one it replaced (owned, may be NULL) */
    int swapped;                  /* POLICY: the writer decides with the new one
                                     (even if the group's commit then failed) */
    char by[GBX_ID_MAX + 1];      /* POLICY, RELEASE, REFUSE: who asked (an
                                     operator, "signal", "gbxd") */
    char *comment;                /* RELEASE, REFUSE: the approver's (owned) */
    gbx_err_t reason;             /* REFUSE: HOLD_REJECTED, HOLD_TIMEOUT, EXPIRED */
    uint64_t count;               /* PRUNE: records deleted */
    gbx_checkpoint_t *checkpoint; /* COSIGN: with the new countersignatures (owned) */
    /* an operator's command (broker/control.h) waits for this job: its
       control connection's routing id and request tag */
    uint8_t ctl_rid[GBX_JOB_RID_MAX];
    size_t ctl_rid_len;
    uint64_t ctl_tag;
    /* result, set by the writer */
    gbx_err_t rc;       /* the operation's (GBX_E_STATE: not in that state) */
    gbx_err_t commit;   /* the group's commit */
    gbx_qentry_t entry; /* the queue entry (MARK: after the mark) */
} gbx_job_t;

/*  A zeroed job of KIND; NULL when out of memory. */
gbx_job_t *gbx_job_new(gbx_job_kind_t kind);
/*  Frees JOB and everything it owns (messages closed). NULL-safe. */
void gbx_job_free(gbx_job_t *job);
/*  A delivery job's queue operation (MARK gbx_queue_mark, UNMARK, ACK,
    EXPIRE, DEADLETTER, FORGET, RELEASE, REFUSE, REPLAY, PURGE:
    broker/queue.h), or an
    audit trail operation (CHECKPOINT, PRUNE, COSIGN: broker/trail.h) into
    BATCH at time NOW,
    atomic on its own: a save point takes back what a failed operation
    added. Sets and returns job->rc (GBX_E_ARG for a SUBMIT, which is the
    ingress's). The writer's one place for this mapping. */
gbx_err_t gbx_job_apply(gbx_job_t *job, gbx_store_t *store, gbx_batch_t *batch, uint64_t now);

#endif
