/*  writer.c: owns the writer thread and its group commit loop. */
#include "writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "queue.h"

#define S_MAX_GROUP_DEFAULT 512

struct gbx_writer {
    gbx_writer_opts_t o;
    pthread_t thread;
    pthread_mutex_t stats_mx;
    gbx_writer_stats_t st;
    gbx_job_t **group;
};

static uint64_t s_realtime(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*  One delivery operation into BATCH, atomic on its own. */
static void s_apply_op(gbx_writer_t *self, gbx_job_t *job, gbx_batch_t *batch, uint64_t now)
{
    gbx_store_t *st = self->o.store;
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
    default:
        job->rc = GBX_E_ARG;
        break;
    }
    if (job->rc != GBX_OK)
        (void)gbx_batch_rollback(batch);
}

static int s_dequeues(const gbx_job_t *job)
{
    return job->kind == GBX_JOB_ACK || job->kind == GBX_JOB_EXPIRE ||
           job->kind == GBX_JOB_DEADLETTER;
}

/*  Applies, commits and hands back the N jobs of one group. */
static void s_group(gbx_writer_t *self, gbx_job_t **jobs, size_t n)
{
    uint64_t t0 = s_mono_ns();
    uint64_t now = self->o.clock(self->o.clock_arg);
    gbx_batch_t *batch = NULL;
    gbx_err_t commit = gbx_batch_new(self->o.store, &batch);
    for (size_t i = 0; commit == GBX_OK && i < n; i++) {
        if (jobs[i]->kind == GBX_JOB_SUBMIT)
            jobs[i]->rc = gbx_ingress_admit(self->o.ingress, &jobs[i]->sub, batch);
        else
            s_apply_op(self, jobs[i], batch, now);
    }
    uint64_t t1 = s_mono_ns();
    if (commit == GBX_OK)
        commit = gbx_ingress_seal(self->o.ingress, batch);
    uint64_t t2 = s_mono_ns();
    if (commit == GBX_OK)
        commit = gbx_store_commit(self->o.store, &batch);
    uint64_t t3 = s_mono_ns();
    gbx_batch_destroy(&batch);

    for (size_t i = 0; i < n; i++) {
        gbx_job_t *job = jobs[i];
        job->commit = commit;
        if (job->kind == GBX_JOB_SUBMIT)
            gbx_ingress_finish(self->o.ingress, &job->sub, commit, &job->reply, &job->reply_len);
        else if (commit == GBX_OK && job->rc == GBX_OK && s_dequeues(job))
            gbx_ingress_dequeued(self->o.ingress, job->dest, job->entry.size);
    }
    gbx_ingress_group_end(self->o.ingress);

    pthread_mutex_lock(&self->stats_mx);
    self->st.groups++;
    self->st.jobs += n;
    if (commit != GBX_OK)
        self->st.failed++;
    self->st.apply_ns += t1 - t0;
    self->st.seal_ns += t2 - t1;
    self->st.commit_ns += t3 - t2;
    if (n > self->st.max_group)
        self->st.max_group = n;
    pthread_mutex_unlock(&self->stats_mx);

    /* the loop thread frees them; a push that cannot grow is retried, since
       dropping a job would lose an answer */
    while (gbx_chan_push_all(self->o.out, (void *const *)jobs, n) != GBX_OK) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

static void *s_run(void *arg)
{
    gbx_writer_t *self = arg;
    size_t max = self->o.max_group;
    for (;;) {
        size_t n = gbx_chan_take(self->o.in, (void **)self->group, max, 1000);
        if (n == 0) {
            if (gbx_chan_done(self->o.in))
                break;
            continue;
        }
        if (self->o.commit_max_delay_ms && n < max) {
            uint64_t end = s_mono_ns() + (uint64_t)self->o.commit_max_delay_ms * 1000000u;
            while (n < max) {
                uint64_t t = s_mono_ns();
                if (t >= end)
                    break;
                int left = (int)((end - t + 999999u) / 1000000u);
                size_t k = gbx_chan_take(self->o.in, (void **)self->group + n, max - n, left);
                if (k == 0)
                    break;
                n += k;
            }
        }
        s_group(self, self->group, n);
    }
    return NULL;
}

gbx_err_t gbx_writer_start(const gbx_writer_opts_t *opts, gbx_writer_t **out)
{
    if (!opts || !out || !opts->store || !opts->ingress || !opts->in || !opts->out)
        return GBX_E_ARG;
    gbx_writer_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->o = *opts;
    if (!self->o.max_group)
        self->o.max_group = S_MAX_GROUP_DEFAULT;
    if (!self->o.clock)
        self->o.clock = s_realtime;
    self->group = calloc(self->o.max_group, sizeof *self->group);
    if (!self->group) {
        free(self);
        return GBX_E_NOMEM;
    }
    pthread_mutex_init(&self->stats_mx, NULL);
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        pthread_mutex_destroy(&self->stats_mx);
        free(self->group);
        free(self);
        return GBX_E_NOMEM;
    }
    *out = self;
    return GBX_OK;
}

void gbx_writer_stop(gbx_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_writer_t *self = *self_p;
    gbx_chan_close(self->o.in);
    pthread_join(self->thread, NULL);
    pthread_mutex_destroy(&self->stats_mx);
    free(self->group);
    free(self);
    *self_p = NULL;
}

void gbx_writer_stats(gbx_writer_t *self, gbx_writer_stats_t *out)
{
    if (!self || !out)
        return;
    pthread_mutex_lock(&self->stats_mx);
    *out = self->st;
    pthread_mutex_unlock(&self->stats_mx);
}
