/*  chan.c: owns the channel's ring of pointers, its lock and its eventfd. */
#include "chan.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct gbx_chan {
    pthread_mutex_t mx;
    pthread_cond_t cv;
    void **ring;
    size_t cap, head, len;
    int closed;
    int efd;
};

gbx_err_t gbx_chan_new(gbx_chan_t **out)
{
    if (!out)
        return GBX_E_ARG;
    gbx_chan_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->cap = 256;
    self->ring = calloc(self->cap, sizeof *self->ring);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!self->ring || efd < 0) {
        if (efd >= 0)
            close(efd);
        free(self->ring);
        free(self);
        return efd < 0 ? GBX_E_IO : GBX_E_NOMEM;
    }
    self->efd = efd;
    pthread_mutex_init(&self->mx, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = self;
    return GBX_OK;
}

void gbx_chan_destroy(gbx_chan_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_chan_t *self = *self_p;
    close(self->efd);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mx);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

/*  Under the lock: room for N more. */
static int s_grow(gbx_chan_t *self, size_t n)
{
    if (self->len + n <= self->cap)
        return 0;
    size_t cap = self->cap;
    while (cap < self->len + n)
        cap *= 2;
    void **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return -1;
    for (size_t i = 0; i < self->len; i++)
        ring[i] = self->ring[(self->head + i) % self->cap];
    free(self->ring);
    self->ring = ring;
    self->cap = cap;
    self->head = 0;
    return 0;
}

gbx_err_t gbx_chan_push_all(gbx_chan_t *self, void *const *items, size_t n)
{
    if (!self || (!items && n))
        return GBX_E_ARG;
    if (n == 0)
        return GBX_OK;
    pthread_mutex_lock(&self->mx);
    if (self->closed) { /* nobody takes any more */
        pthread_mutex_unlock(&self->mx);
        return GBX_E_STATE;
    }
    if (s_grow(self, n) != 0) {
        pthread_mutex_unlock(&self->mx);
        return GBX_E_NOMEM;
    }
    int was_empty = self->len == 0;
    for (size_t i = 0; i < n; i++)
        self->ring[(self->head + self->len++) % self->cap] = items[i];
    if (was_empty) { /* under the lock, so that take's clearing cannot pass it */
        uint64_t one = 1;
        ssize_t w = write(self->efd, &one, sizeof one);
        (void)w; /* EAGAIN: the counter is already non-zero, readable anyway */
    }
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mx);
    return GBX_OK;
}

gbx_err_t gbx_chan_push(gbx_chan_t *self, void *item)
{
    if (!item)
        return GBX_E_ARG;
    return gbx_chan_push_all(self, &item, 1);
}

size_t gbx_chan_take(gbx_chan_t *self, void **items, size_t max, int timeout_ms)
{
    if (!self || !items || max == 0)
        return 0;
    pthread_mutex_lock(&self->mx);
    if (self->len == 0 && !self->closed && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (self->len == 0 && !self->closed)
                pthread_cond_wait(&self->cv, &self->mx);
        } else {
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += timeout_ms / 1000;
            dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            while (self->len == 0 && !self->closed)
                if (pthread_cond_timedwait(&self->cv, &self->mx, &dl) == ETIMEDOUT)
                    break;
        }
    }
    size_t n = 0;
    while (n < max && self->len > 0) {
        items[n++] = self->ring[self->head];
        self->head = (self->head + 1) % self->cap;
        self->len--;
    }
    if (self->len == 0) {
        uint64_t v;
        ssize_t r = read(self->efd, &v, sizeof v);
        (void)r; /* EAGAIN: it was not set */
    } else {
        pthread_cond_signal(&self->cv); /* more for another taker */
    }
    pthread_mutex_unlock(&self->mx);
    return n;
}

int gbx_chan_fd(const gbx_chan_t *self)
{
    return self ? self->efd : -1;
}

void gbx_chan_close(gbx_chan_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mx);
    self->closed = 1;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mx);
}

size_t gbx_chan_len(gbx_chan_t *self)
{
    if (!self)
        return 0;
    pthread_mutex_lock(&self->mx);
    size_t n = self->len;
    pthread_mutex_unlock(&self->mx);
    return n;
}

int gbx_chan_done(gbx_chan_t *self)
{
    if (!self)
        return 1;
    pthread_mutex_lock(&self->mx);
    int done = self->closed && self->len == 0;
    pthread_mutex_unlock(&self->mx);
    return done;
}
