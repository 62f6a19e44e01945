/*  writer.c: owns the writer thread and its group commit loop. */
#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "queue.h"

#define S_MAX_GROUP_DEFAULT 512

/*  A written group on its way to the syncer. */
typedef struct {
    gbx_job_t **jobs;
    size_t n;
    gbx_err_t commit; /* of the write */
} s_group_t;

struct gbx_writer {
    gbx_writer_opts_t o;
    pthread_t thread;
    pthread_t syncer;
    gbx_chan_t *written;    /* s_group_t, writer -> syncer */
    _Atomic size_t syncing; /* groups handed to the syncer and not yet back */
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

static int s_dequeues(const gbx_job_t *job)
{
    return job->kind == GBX_JOB_ACK || job->kind == GBX_JOB_EXPIRE ||
           job->kind == GBX_JOB_DEADLETTER || job->kind == GBX_JOB_REFUSE;
}

/*  The sync of a written group failed: its writes may not survive a crash,
    so nothing may be acted on. Answers become STORE_FAILED; delivery
    operations report the failure (the dispatcher reloads from the store). */
static void s_fail_group(gbx_writer_t *self, gbx_job_t **jobs, size_t n)
{
    pthread_mutex_lock(&self->stats_mx);
    self->st.failed++;
    pthread_mutex_unlock(&self->stats_mx);
    for (size_t i = 0; i < n; i++) {
        gbx_job_t *job = jobs[i];
        job->commit = GBX_E_STORE_FAILED;
        if (job->kind != GBX_JOB_SUBMIT || !job->reply)
            continue;
        if (job->sub.result.reason != GBX_OK)
            continue; /* a rejection stays one */
        free(job->reply);
        job->reply = NULL;
        job->reply_len = 0;
        job->sub.result.reason = GBX_E_STORE_FAILED;
        job->sub.result.duplicate = 0;
        job->sub.result.seq = 0;
        gbx_frame_rejected(job->sub.tag, job->sub.msg_id, job->sub.msg_id_len, GBX_E_STORE_FAILED,
                           NULL, 0, &job->reply, &job->reply_len);
    }
}

/*  Hands the jobs of a group to the loop thread (which frees them); a push
    that cannot grow is retried, since dropping a job would lose an answer. */
static void s_hand_back(gbx_writer_t *self, gbx_job_t **jobs, size_t n)
{
    gbx_err_t rc;
    while ((rc = gbx_chan_push_all(self->o.out, (void *const *)jobs, n)) == GBX_E_NOMEM) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (rc != GBX_OK) /* nobody takes them any more */
        for (size_t i = 0; i < n; i++)
            gbx_job_free(jobs[i]);
}

/*  A reload: the ingress decides with JOB's policy from the next message
    on; JOB takes back the one it replaces. Audited with the new version's
    name, hash and who asked. */
static gbx_err_t s_policy(gbx_writer_t *self, gbx_job_t *job, gbx_batch_t *batch, uint64_t now)
{
    gbx_audit_t a;
    gbx_audit_begin(&a, "POLICY_LOADED", now);
    gbx_audit_str(&a, "version", gbx_policy_version(job->policy));
    gbx_audit_hex(&a, "policy_hash", gbx_policy_hash(job->policy), GBX_HASH_BYTES);
    gbx_audit_u64(&a, "rules", gbx_policy_rule_count(job->policy));
    gbx_audit_str(&a, "by", job->by[0] ? job->by : "-");
    const gbx_policy_t *prev = gbx_ingress_policy(self->o.ingress);
    if (prev) { /* old -> new, from the trail alone */
        gbx_audit_str(&a, "previous_version", gbx_policy_version(prev));
        gbx_audit_hex(&a, "previous_hash", gbx_policy_hash(prev), GBX_HASH_BYTES);
    }
    gbx_batch_mark(batch);
    gbx_err_t rc = gbx_audit_put(batch, &a);
    if (rc != GBX_OK) {
        (void)gbx_batch_rollback(batch);
        return rc;
    }
    job->policy = gbx_ingress_set_policy(self->o.ingress, job->policy);
    job->swapped = 1;
    return GBX_OK;
}

/*  Draining on (job->seq 1) or off: the ingress refuses new messages from
    the next admission on; audited with who asked. */
static gbx_err_t s_drain(gbx_writer_t *self, gbx_job_t *job, gbx_batch_t *batch, uint64_t now)
{
    gbx_audit_t a;
    gbx_audit_begin(&a, job->seq ? "NODE_DRAINING" : "NODE_RESUMED", now);
    gbx_audit_str(&a, "by", job->by[0] ? job->by : "-");
    gbx_batch_mark(batch);
    gbx_err_t rc = gbx_audit_put(batch, &a);
    if (rc != GBX_OK) {
        (void)gbx_batch_rollback(batch);
        return rc;
    }
    job->count = (uint64_t)gbx_ingress_set_draining(self->o.ingress, job->seq != 0); /* was */
    return GBX_OK;
}

/*  The queues' depth as the ingress counts them, for metrics and gbxctl. */
static void s_publish_depths(gbx_writer_t *self)
{
    gbx_metrics_t *m = self->o.metrics;
    for (size_t i = 0; i < gbx_metrics_agency_count(m); i++) {
        uint64_t msgs = 0, bytes = 0;
        gbx_ingress_queue_depth(self->o.ingress, gbx_metrics_agency_id(m, i), &msgs, &bytes);
        gbx_metrics_agency_set(m, (int)i, GBX_MA_QUEUE_MESSAGES, msgs);
        gbx_metrics_agency_set(m, (int)i, GBX_MA_QUEUE_BYTES, bytes);
    }
}

/*  Applies and writes (not yet synced) the N jobs of one group, builds the
    answers as if the sync will succeed, and passes the group to the
    syncer. Runs while the syncer waits for the previous group's fsync. */
static void s_group(gbx_writer_t *self, gbx_job_t **jobs, size_t n)
{
    uint64_t t0 = s_mono_ns();
    uint64_t now = self->o.clock(self->o.clock_arg);
    gbx_batch_t *batch = NULL;
    gbx_err_t commit = gbx_batch_new(self->o.store, &batch);
    for (size_t i = 0; commit == GBX_OK && i < n; i++) {
        if (jobs[i]->kind == GBX_JOB_SUBMIT)
            jobs[i]->rc = gbx_ingress_admit(self->o.ingress, &jobs[i]->sub, batch);
        else if (jobs[i]->kind == GBX_JOB_POLICY)
            jobs[i]->rc = s_policy(self, jobs[i], batch, now);
        else if (jobs[i]->kind == GBX_JOB_DRAIN)
            jobs[i]->rc = s_drain(self, jobs[i], batch, now);
        else
            gbx_job_apply(jobs[i], self->o.store, batch, now);
    }
    uint64_t t1 = s_mono_ns();
    if (commit == GBX_OK)
        commit = gbx_ingress_seal(self->o.ingress, batch);
    uint64_t t2 = s_mono_ns();
    if (commit == GBX_OK)
        commit = gbx_store_write(self->o.store, &batch);
    uint64_t t3 = s_mono_ns();
    gbx_batch_destroy(&batch);

    /* drain switches whose record was not written did not happen (no message
       of the group was stored either): back to the state before each, the
       last first */
    for (size_t i = n; commit != GBX_OK && i-- > 0;)
        if (jobs[i]->kind == GBX_JOB_DRAIN && jobs[i]->rc == GBX_OK)
            (void)gbx_ingress_set_draining(self->o.ingress, (int)jobs[i]->count);
    int depths = 0; /* the group changed a queue's depth (deliveries do not) */
    for (size_t i = 0; i < n; i++) {
        gbx_job_t *job = jobs[i];
        job->commit = commit;
        if (job->kind == GBX_JOB_SUBMIT) {
            gbx_ingress_finish(self->o.ingress, &job->sub, commit, &job->reply, &job->reply_len);
            depths = 1;
        } else if (commit == GBX_OK && job->rc == GBX_OK && s_dequeues(job)) {
            gbx_ingress_dequeued(self->o.ingress, job->dest, job->entry.size);
            depths = 1;
        } else if (commit == GBX_OK && job->rc == GBX_OK && job->kind == GBX_JOB_REPLAY) {
            (void)gbx_ingress_enqueued(self->o.ingress, job->dest, job->entry.size);
            depths = 1;
        }
    }
    gbx_ingress_group_end(self->o.ingress);
    if (depths)
        s_publish_depths(self);
    gbx_metrics_set(self->o.metrics, GBX_MG_STORE_FAILING, commit != GBX_OK);

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

    /* Every group goes through the syncer, in order, a failed one too: a
       duplicate it answers from an earlier group's dedupe record must wait
       for the fsync that covers that group. */
    s_group_t *g = malloc(sizeof *g);
    gbx_job_t **copy = malloc(n * sizeof *copy);
    if (!g || !copy) { /* no memory to queue it: wait for the syncer, sync here */
        free(g);
        free(copy);
        while (atomic_load(&self->syncing) > 0) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        if (gbx_store_sync(self->o.store) != GBX_OK)
            s_fail_group(self, jobs, n);
        s_hand_back(self, jobs, n);
        return;
    }
    memcpy(copy, jobs, n * sizeof *copy);
    g->jobs = copy;
    g->n = n;
    g->commit = commit;
    atomic_fetch_add(&self->syncing, 1);
    gbx_err_t rc;
    while ((rc = gbx_chan_push(self->written, g)) == GBX_E_NOMEM) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (rc != GBX_OK) { /* cannot happen: the syncer's channel closes after us */
        atomic_fetch_sub(&self->syncing, 1);
        s_fail_group(self, jobs, n);
        s_hand_back(self, jobs, n);
        free(copy);
        free(g);
    }
}

/*  The syncer: one fsync for every group written since the last, then the
    groups' jobs go back to the loop. */
static void *s_sync_run(void *arg)
{
    gbx_writer_t *self = arg;
    void *items[64];
    for (;;) {
        size_t n = gbx_chan_take(self->written, items, 64, 1000);
        if (n == 0) {
            if (gbx_chan_done(self->written))
                break;
            continue;
        }
        uint64_t t0 = s_mono_ns();
        gbx_err_t rc = gbx_store_sync(self->o.store);
        uint64_t t1 = s_mono_ns();
        pthread_mutex_lock(&self->stats_mx);
        self->st.syncs++;
        self->st.sync_ns += t1 - t0;
        pthread_mutex_unlock(&self->stats_mx);
        gbx_metrics_observe(self->o.metrics, GBX_MH_FSYNC, t1 - t0);
        for (size_t i = 0; i < n; i++) {
            s_group_t *g = items[i];
            if (rc != GBX_OK)
                s_fail_group(self, g->jobs, g->n);
            s_hand_back(self, g->jobs, g->n);
            free(g->jobs);
            free(g);
            atomic_fetch_sub(&self->syncing, 1);
        }
    }
    return NULL;
}

static void *s_run(void *arg)
{
    gbx_writer_t *self = arg;
    size_t max = self->o.max_group;
    s_publish_depths(self); /* as the ingress counted them at its start */
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
    if (gbx_chan_new(&self->written) != GBX_OK) {
        pthread_mutex_destroy(&self->stats_mx);
        free(self->group);
        free(self);
        return GBX_E_NOMEM;
    }
    if (pthread_create(&self->syncer, NULL, s_sync_run, self) != 0) {
        gbx_chan_destroy(&self->written);
        pthread_mutex_destroy(&self->stats_mx);
        free(self->group);
        free(self);
        return GBX_E_NOMEM;
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        gbx_chan_close(self->written);
        pthread_join(self->syncer, NULL);
        gbx_chan_destroy(&self->written);
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
    gbx_chan_close(self->written); /* after the writer: it pushes there */
    pthread_join(self->syncer, NULL);
    gbx_chan_destroy(&self->written);
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
