/*  verifier.c: owns the verify worker threads. */
#include "verifier.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "job.h"

#define S_TAKE 16

typedef struct {
    gbx_verifier_t *v;
    gbx_checker_t *checker;
    pthread_t thread;
    int started;
} s_worker_t;

struct gbx_verifier {
    gbx_chan_t *in, *out;
    s_worker_t *w;
    size_t n;
};

static void *s_run(void *arg)
{
    s_worker_t *w = arg;
    void *items[S_TAKE];
    gbx_part_t parts_stack[64];
    for (;;) {
        size_t n = gbx_chan_take(w->v->in, items, S_TAKE, 1000);
        if (n == 0) {
            if (gbx_chan_done(w->v->in))
                break;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            gbx_job_t *job = items[i];
            gbx_part_t *parts = parts_stack;
            if (job->nmsgs > 64)
                parts = malloc(job->nmsgs * sizeof *parts);
            if (!parts) {
                job->sub.reason = GBX_E_INTERNAL_ERROR;
                continue;
            }
            for (size_t k = 0; k < job->nmsgs; k++) {
                parts[k].data = zmq_msg_data(&job->msgs[k]);
                parts[k].len = zmq_msg_size(&job->msgs[k]);
            }
            char auth[GBX_ID_MAX + 1];
            snprintf(auth, sizeof auth, "%s", job->sub.auth);
            gbx_checker_run(w->checker, auth, parts, job->nmsgs, &job->sub);
            if (parts != parts_stack)
                free(parts);
        }
        gbx_err_t rc;
        while ((rc = gbx_chan_push_all(w->v->out, items, n)) == GBX_E_NOMEM) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        if (rc != GBX_OK) /* the writer is gone: shutting down */
            for (size_t i = 0; i < n; i++)
                gbx_job_free(items[i]);
    }
    return NULL;
}

gbx_err_t gbx_verifier_start(const gbx_ingress_opts_t *opts, size_t threads, gbx_chan_t *in,
                             gbx_chan_t *out, gbx_verifier_t **out_v)
{
    if (!opts || threads == 0 || !in || !out || !out_v)
        return GBX_E_ARG;
    gbx_verifier_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->in = in;
    self->out = out;
    self->w = calloc(threads, sizeof *self->w);
    if (!self->w) {
        free(self);
        return GBX_E_NOMEM;
    }
    self->n = threads;
    gbx_err_t rc = GBX_OK;
    for (size_t i = 0; i < threads && rc == GBX_OK; i++) {
        self->w[i].v = self;
        rc = gbx_checker_new(opts, &self->w[i].checker);
        if (rc == GBX_OK) {
            if (pthread_create(&self->w[i].thread, NULL, s_run, &self->w[i]) != 0)
                rc = GBX_E_NOMEM;
            else
                self->w[i].started = 1;
        }
    }
    if (rc != GBX_OK) {
        gbx_verifier_stop(&self);
        return rc;
    }
    *out_v = self;
    return GBX_OK;
}

void gbx_verifier_join(gbx_verifier_t *self)
{
    if (!self)
        return;
    gbx_chan_close(self->in);
    for (size_t i = 0; i < self->n; i++) {
        if (self->w[i].started)
            pthread_join(self->w[i].thread, NULL);
        self->w[i].started = 0;
    }
}

void gbx_verifier_stop(gbx_verifier_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_verifier_t *self = *self_p;
    gbx_verifier_join(self);
    for (size_t i = 0; i < self->n; i++)
        gbx_checker_destroy(&self->w[i].checker);
    free(self->w);
    free(self);
    *self_p = NULL;
}

void gbx_verifier_stats(gbx_verifier_t *self, uint64_t *verified, uint64_t *hits)
{
    uint64_t v = 0, h = 0;
    for (size_t i = 0; self && i < self->n; i++) {
        uint64_t a = 0, b = 0;
        gbx_checker_stats(self->w[i].checker, &a, &b);
        v += a;
        h += b;
    }
    if (verified)
        *verified = v;
    if (hits)
        *hits = h;
}
