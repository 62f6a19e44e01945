/*  job.c: owns a job's memory. */
#include "job.h"

#include <stdlib.h>

#include "audit.h"
#include "trail.h"

gbx_job_t *gbx_job_new(gbx_job_kind_t kind)
{
    gbx_job_t *job = calloc(1, sizeof *job);
    if (job) {
        job->kind = kind;
        gbx_submission_init(&job->sub);
    }
    return job;
}

void gbx_job_free(gbx_job_t *job)
{
    if (!job)
        return;
    gbx_submission_clear(&job->sub); /* the frame borrows msgs: before them */
    for (size_t i = 0; i < job->nmsgs; i++)
        zmq_msg_close(&job->msgs[i]);
    free(job->msgs);
    free(job->reply);
    free(job->val);
    free(job->comment);
    free(job->checkpoint);
    gbx_policy_destroy(&job->policy);
    free(job);
}

/*  Prunes the trail up to job->seq records, audited. */
static gbx_err_t s_prune(gbx_job_t *job, gbx_store_t *st, gbx_batch_t *batch, uint64_t now)
{
    gbx_err_t rc = gbx_trail_prune(gbx_store_trail(st), batch, job->seq, &job->count);
    if (rc != GBX_OK)
        return rc;
    gbx_audit_t a;
    gbx_audit_begin(&a, "AUDIT_PRUNED", now);
    gbx_audit_u64(&a, "upto", job->seq);
    gbx_audit_u64(&a, "deleted", job->count);
    gbx_audit_str(&a, "by", job->by[0] ? job->by : "-");
    return gbx_audit_put(batch, &a);
}

/*  Stores a peer's countersignatures of one of our checkpoints, audited. */
static gbx_err_t s_cosign(gbx_job_t *job, gbx_store_t *st, gbx_batch_t *batch, uint64_t now)
{
    if (!job->checkpoint)
        return GBX_E_ARG;
    gbx_err_t rc = gbx_trail_put_cosigs(st, batch, job->checkpoint);
    if (rc != GBX_OK)
        return rc;
    gbx_audit_t a;
    gbx_audit_begin(&a, "CHECKPOINT_COSIGNED", now);
    gbx_audit_u64(&a, "size", job->checkpoint->size);
    gbx_audit_hex(&a, "root", job->checkpoint->root, GBX_MERKLE_HASH);
    for (unsigned i = 0; i < job->checkpoint->ncosig; i++)
        gbx_audit_str(&a, "cosigner", job->checkpoint->cosig[i].node);
    gbx_audit_str(&a, "by", job->by[0] ? job->by : "-");
    return gbx_audit_put(batch, &a);
}

gbx_err_t gbx_job_apply(gbx_job_t *job, gbx_store_t *st, gbx_batch_t *batch, uint64_t now)
{
    gbx_batch_mark(batch);
    switch (job->kind) {
    case GBX_JOB_MARK:
        job->rc = gbx_queue_mark(st, batch, job->dest, job->seq, now, &job->entry);
        break;
    case GBX_JOB_UNMARK:
        job->rc =
            gbx_queue_unmark(st, batch, job->dest, job->seq, job->delivery_id, now, &job->entry);
        break;
    case GBX_JOB_ACK:
        job->rc = gbx_queue_ack(st, batch, job->dest, job->seq, job->delivery_id, now, &job->entry);
        break;
    case GBX_JOB_EXPIRE:
        job->rc = gbx_queue_expire(st, batch, job->dest, job->seq, now, &job->entry);
        break;
    case GBX_JOB_DEADLETTER:
        job->rc = gbx_queue_deadletter(st, batch, job->dest, job->seq, now, &job->entry);
        break;
    case GBX_JOB_FORGET:
        job->rc = gbx_queue_forget(batch, job->due, job->val, job->vlen);
        break;
    case GBX_JOB_RELEASE:
        job->rc = gbx_queue_release(st, batch, job->dest, job->seq, now, job->by, job->comment,
                                    &job->entry);
        break;
    case GBX_JOB_REFUSE:
        job->rc = gbx_queue_refuse(st, batch, job->dest, job->seq, now, &job->reason, job->by,
                                   job->comment, &job->entry);
        break;
    case GBX_JOB_REPLAY:
        job->rc = gbx_queue_replay(st, batch, job->dest, job->seq, now, job->by, &job->entry);
        break;
    case GBX_JOB_PURGE:
        job->rc = gbx_queue_purge(st, batch, job->dest, job->seq, now, job->by, &job->entry);
        break;
    case GBX_JOB_DENIED: {
        gbx_audit_t a;
        gbx_audit_begin(&a, "CONTROL_REFUSED", now);
        gbx_audit_str(&a, "reason", "NOT_AUTHORIZED");
        gbx_audit_str(&a, "by", job->by[0] ? job->by : "-");
        gbx_audit_str(&a, "role", job->dest[0] ? job->dest : "-");
        gbx_audit_str(&a, "cmd", job->comment ? job->comment : "-");
        gbx_audit_u64(&a, "refused", job->count ? job->count : 1);
        job->rc = gbx_audit_put(batch, &a);
        break;
    }
    case GBX_JOB_CHECKPOINT:
        gbx_batch_checkpoint(batch);
        job->rc = GBX_OK;
        break;
    case GBX_JOB_PRUNE:
        job->rc = s_prune(job, st, batch, now);
        break;
    case GBX_JOB_COSIGN:
        job->rc = s_cosign(job, st, batch, now);
        break;
    default:
        job->rc = GBX_E_ARG;
        break;
    }
    if (job->rc != GBX_OK)
        (void)gbx_batch_rollback(batch);
    return job->rc;
}
