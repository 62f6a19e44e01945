/*  job.c: owns a job's memory. */
#include "job.h"

#include <stdlib.h>

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
    gbx_policy_destroy(&job->policy);
    free(job);
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
    default:
        job->rc = GBX_E_ARG;
        break;
    }
    if (job->rc != GBX_OK)
        (void)gbx_batch_rollback(batch);
    return job->rc;
}
