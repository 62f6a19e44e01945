/*  feed.c: owns the audit feed's PUB socket and how far it has published
    (broker/feed.h). */
#include "feed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <zmq.h>

#include "trail.h"
#include "zap.h"

struct gbx_feed {
    void *sock;        /* XPUB: its subscribers' (un)subscriptions come up to us */
    int subscriptions; /* 0: nobody listens, nothing is read to be dropped */
    gbx_store_t *store;
    uint64_t next;    /* the next record to publish */
    uint64_t cp_next; /* checkpoints of fewer records were published (or predate us) */
    uint64_t published;
};

gbx_err_t gbx_feed_new(void *ctx, const char *path, const uint8_t *curve_sk, gbx_store_t *store,
                       gbx_feed_t **out, char *err, size_t errlen)
{
    if (!ctx || !path || !curve_sk || !store || !out)
        return GBX_E_ARG;
    *out = NULL;
    char ep[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "%s is longer than a unix socket path may be", path);
        return GBX_E_ARG;
    }
    snprintf(ep, sizeof ep, "ipc://%s", path);
    gbx_feed_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->store = store;
    self->next = gbx_trail_size(gbx_store_trail(store));
    self->cp_next = self->next + 1;
    int one = 1, zero = 0, hwm = 100000;
    self->sock = zmq_socket(ctx, ZMQ_XPUB);
    mode_t old = umask(077); /* the socket file is born 0600 */
    int ok = self->sock && zmq_setsockopt(self->sock, ZMQ_CURVE_SERVER, &one, sizeof one) == 0 &&
             zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, curve_sk, 32) == 0 &&
             zmq_setsockopt(self->sock, ZMQ_ZAP_DOMAIN, GBX_ZAP_DOMAIN_CONTROL,
                            strlen(GBX_ZAP_DOMAIN_CONTROL)) == 0 &&
             zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) == 0 &&
             zmq_setsockopt(self->sock, ZMQ_XPUB_VERBOSER, &one, sizeof one) == 0 &&
             zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof zero) == 0 &&
             zmq_bind(self->sock, ep) == 0 && chmod(path, 0600) == 0;
    umask(old);
    if (!ok) {
        snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(errno));
        gbx_feed_destroy(&self);
        return GBX_E_IO;
    }
    *out = self;
    return GBX_OK;
}

void gbx_feed_destroy(gbx_feed_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->sock)
        zmq_close((*self_p)->sock);
    free(*self_p);
    *self_p = NULL;
}

uint64_t gbx_feed_published(const gbx_feed_t *self)
{
    return self ? self->published : 0;
}

/*  Publishes the checkpoints of CP_NEXT .. UPTO records. */
static size_t s_checkpoints(gbx_feed_t *self, uint64_t upto)
{
    size_t n = 0;
    gbx_checkpoint_t cp;
    while (self->cp_next <= upto &&
           gbx_trail_checkpoint_after(self->store, self->cp_next - 1, &cp) == GBX_OK &&
           cp.size <= upto) {
        char text[GBX_CHECKPOINT_TEXT_MAX];
        if (gbx_checkpoint_format(&cp, text, sizeof text) == GBX_OK &&
            zmq_send(self->sock, text, strlen(text), ZMQ_DONTWAIT) >= 0)
            n++;
        self->cp_next = cp.size + 1;
    }
    return n;
}

/*  Counts the subscriptions the subscribers sent or dropped (a frame of
    1 or 0 and the topic; every one, with ZMQ_XPUB_VERBOSER). */
static void s_subscriptions(gbx_feed_t *self)
{
    uint8_t buf[256];
    int n;
    while ((n = zmq_recv(self->sock, buf, sizeof buf, ZMQ_DONTWAIT)) > 0) {
        if (buf[0] == 1)
            self->subscriptions++;
        else if (buf[0] == 0 && self->subscriptions > 0)
            self->subscriptions--;
    }
}

size_t gbx_feed_pump(gbx_feed_t *self, size_t max)
{
    if (!self)
        return 0;
    s_subscriptions(self);
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(self->store), &h);
    if (self->subscriptions == 0) { /* nobody to drop them for: read nothing */
        if (self->next < h.durable) {
            self->next = h.durable;
            self->cp_next = h.durable + 1;
        }
        return 0;
    }
    if (self->next < h.first) /* pruned before we got to them */
        self->next = h.first;
    if (self->next >= h.durable)
        return s_checkpoints(self, self->next);
    gbx_trail_iter_t *it = NULL;
    if (gbx_trail_iter_new(self->store, self->next, &it) != GBX_OK)
        return 0;
    size_t n = 0;
    const uint8_t *v;
    size_t vlen;
    while (n < max && self->next < h.durable && gbx_trail_iter_next(it, &v, &vlen)) {
        /* a subscriber that cannot keep up loses frames (ZMQ_SNDHWM), never
           gbxd its pace */
        (void)zmq_send(self->sock, v, vlen, ZMQ_DONTWAIT);
        self->next++;
        self->published++;
        n++;
    }
    gbx_trail_iter_destroy(&it);
    return n + s_checkpoints(self, self->next);
}
