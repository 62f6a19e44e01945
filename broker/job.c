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
    free(job);
}
