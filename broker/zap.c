/*  zap.c: owns the ZAP handler thread and its REP socket at
    inproc://zeromq.zap.01. Implements issue 3, deliverable 2 (transport
    security): proto/spec/3-keys.md section 4, ZeroMQ RFC 27 (ZAP 1.0). */
#include "zap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#define S_VERSION    "1.0"
#define S_MECH_CURVE "CURVE"

/*  RFC 27 request frames, in order. */
enum {
    S_F_VERSION = 0,
    S_F_REQUEST_ID,
    S_F_DOMAIN,
    S_F_ADDRESS,
    S_F_IDENTITY,
    S_F_MECHANISM,
    S_F_CREDENTIALS, /* zero or more */
    S_F_MIN_ = S_F_CREDENTIALS
};

struct gbx_zap {
    void *sock; /* REP; used by the thread only once it runs */
    const gbx_registry_t *reg;
    int stop_r, stop_w; /* a byte on stop_w ends the thread */
    pthread_t thread;
    atomic_uint_fast64_t accepted, refused, malformed;
};

typedef struct {
    const char *status; /* "200", "400", "500" */
    const char *text;
    const char *user_id; /* "" unless 200 */
    const char *role;    /* NULL unless 200 */
} s_verdict_t;

static int s_frame_is(zmq_msg_t *m, const char *text)
{
    size_t n = strlen(text);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), text, n) == 0;
}

/*  The decision for one well-formed request (frames checked by the caller). */
static s_verdict_t s_decide(const gbx_zap_t *self, zmq_msg_t *f)
{
    s_verdict_t v = {"400", "", "", NULL};
    if (!s_frame_is(&f[S_F_MECHANISM], S_MECH_CURVE)) {
        v.text = "mechanism not allowed";
        return v;
    }
    if (s_frame_is(&f[S_F_DOMAIN], GBX_ZAP_DOMAIN_CONTROL)) { /* operators only */
        const gbx_operator_t *op =
            gbx_registry_operator_by_curve(self->reg, zmq_msg_data(&f[S_F_CREDENTIALS]));
        if (!op) { /* the same answer for every other key: no probing */
            v.text = "unknown key";
            return v;
        }
        v.status = "200";
        v.text = "OK";
        v.user_id = op->id;
        v.role = gbx_role_name(op->role);
        return v;
    }
    int want_agency = 1, want_node = 1;
    if (s_frame_is(&f[S_F_DOMAIN], GBX_ZAP_DOMAIN_ADAPTER))
        want_node = 0;
    else if (s_frame_is(&f[S_F_DOMAIN], GBX_ZAP_DOMAIN_PEER))
        want_agency = 0;
    else if (!s_frame_is(&f[S_F_DOMAIN], GBX_ZAP_DOMAIN)) {
        v.text = "unknown domain";
        return v;
    }
    const gbx_agency_t *agency = NULL;
    const gbx_node_t *node = NULL;
    if (!gbx_registry_by_curve(self->reg, zmq_msg_data(&f[S_F_CREDENTIALS]), &agency, &node)) {
        v.text = gbx_registry_operator_by_curve(self->reg, zmq_msg_data(&f[S_F_CREDENTIALS]))
                     ? "wrong role"
                     : "unknown key";
        return v;
    }
    if ((agency && !want_agency) || (node && !want_node)) {
        v.text = "wrong role";
        return v;
    }
    v.status = "200";
    v.text = "OK";
    v.user_id = agency ? agency->id : node->id;
    v.role = agency ? "agency" : "node";
    return v;
}

/*  One ZMTP property (RFC 27 metadata): name length (1 byte), name, value
    length (4 bytes, network order), value. Returns the bytes written. */
static size_t s_put_property(uint8_t *buf, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), at = 0;
    buf[at++] = (uint8_t)nl;
    memcpy(buf + at, name, nl);
    at += nl;
    buf[at++] = (uint8_t)(vl >> 24);
    buf[at++] = (uint8_t)(vl >> 16);
    buf[at++] = (uint8_t)(vl >> 8);
    buf[at++] = (uint8_t)vl;
    memcpy(buf + at, value, vl);
    return at + vl;
}

static int s_send(void *sock, const void *data, size_t len, int more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) == (int)len ? 0 : -1;
}

static int s_reply(void *sock, zmq_msg_t *request_id, const s_verdict_t *v)
{
    uint8_t meta[64];
    size_t meta_len = 0;
    if (v->role)
        meta_len = s_put_property(meta, GBX_ZAP_ROLE_PROPERTY, v->role);
    const void *rid = request_id ? zmq_msg_data(request_id) : "";
    size_t rid_len = request_id ? zmq_msg_size(request_id) : 0;
    if (s_send(sock, S_VERSION, strlen(S_VERSION), 1) || s_send(sock, rid, rid_len, 1) ||
        s_send(sock, v->status, 3, 1) || s_send(sock, v->text, strlen(v->text), 1) ||
        s_send(sock, v->user_id, strlen(v->user_id), 1) || s_send(sock, meta, meta_len, 0))
        return -1;
    return 0;
}

/*  Reads one request (all its parts) and answers it. -1 when the socket
    failed (the context is terminating): the thread then ends. */
static int s_serve_one(gbx_zap_t *self)
{
    zmq_msg_t f[GBX_ZAP_MAX_FRAMES];
    size_t kept = 0, total = 0;
    int rc = -1, more = 1;
    while (more) {
        zmq_msg_t *m = &f[kept < GBX_ZAP_MAX_FRAMES ? kept : GBX_ZAP_MAX_FRAMES - 1];
        if (kept == GBX_ZAP_MAX_FRAMES) /* too many: drain into the last slot */
            zmq_msg_close(m);
        zmq_msg_init(m);
        int r;
        do
            r = zmq_msg_recv(m, self->sock, 0);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (kept < GBX_ZAP_MAX_FRAMES) /* else the slot is closed at out */
                zmq_msg_close(m);
            goto out;
        }
        if (kept < GBX_ZAP_MAX_FRAMES)
            kept++;
        total++;
        more = zmq_msg_more(m);
    }

    s_verdict_t v = {"500", "malformed request", "", NULL};
    int well_formed =
        total >= S_F_MIN_ && total <= GBX_ZAP_MAX_FRAMES && s_frame_is(&f[S_F_VERSION], S_VERSION);
    if (well_formed && s_frame_is(&f[S_F_MECHANISM], S_MECH_CURVE))
        well_formed =
            total == S_F_CREDENTIALS + 1 && zmq_msg_size(&f[S_F_CREDENTIALS]) == GBX_KEY_BYTES;
    if (well_formed)
        v = s_decide(self, f);

    if (v.status[0] == '2')
        atomic_fetch_add(&self->accepted, 1);
    else if (v.status[0] == '4')
        atomic_fetch_add(&self->refused, 1);
    else
        atomic_fetch_add(&self->malformed, 1);
    rc = s_reply(self->sock, total > S_F_REQUEST_ID ? &f[S_F_REQUEST_ID] : NULL, &v);
out:
    for (size_t i = 0; i < kept; i++)
        zmq_msg_close(&f[i]);
    return rc;
}

static void *s_run(void *arg)
{
    gbx_zap_t *self = arg;
    int term = 0;
    for (;;) {
        zmq_pollitem_t items[2] = {{self->sock, 0, ZMQ_POLLIN, 0},
                                   {NULL, self->stop_r, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            term = 1;
            break;
        }
        if (items[1].revents)
            break;
        if ((items[0].revents & ZMQ_POLLIN) && s_serve_one(self) < 0) {
            term = errno == ETERM;
            if (term)
                break;
        }
    }
    /* Unbinding is synchronous for inproc (closing alone unregisters the
       endpoint later, on libzmq's reaper thread): a new handler may bind
       the same context as soon as destroy returns. */
    if (!term)
        zmq_unbind(self->sock, GBX_ZAP_ENDPOINT);
    zmq_close(self->sock);
    self->sock = NULL;
    return NULL;
}

gbx_err_t gbx_zap_start(void *zmq_ctx, const gbx_registry_t *reg, gbx_zap_t **out)
{
    if (!zmq_ctx || !reg || !out)
        return GBX_E_ARG;
    *out = NULL;
    gbx_err_t err = GBX_E_IO;
    gbx_zap_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->reg = reg;
    self->stop_r = self->stop_w = -1;
    atomic_init(&self->accepted, 0);
    atomic_init(&self->refused, 0);
    atomic_init(&self->malformed, 0);

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        goto fail;
    self->stop_r = fds[0];
    self->stop_w = fds[1];

    self->sock = zmq_socket(zmq_ctx, ZMQ_REP);
    if (!self->sock) {
        err = errno == EFAULT ? GBX_E_ARG : GBX_E_IO;
        goto fail;
    }
    int linger = 0;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(self->sock, GBX_ZAP_ENDPOINT) != 0) {
        err = errno == EADDRINUSE ? GBX_E_STATE : GBX_E_IO;
        goto fail;
    }
    /* pthread_create is a full barrier: the socket moves to the thread. */
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        zmq_unbind(self->sock, GBX_ZAP_ENDPOINT);
        goto fail;
    }
    *out = self;
    return GBX_OK;

fail:
    if (self->sock)
        zmq_close(self->sock);
    if (self->stop_r >= 0)
        close(self->stop_r);
    if (self->stop_w >= 0)
        close(self->stop_w);
    free(self);
    return err;
}

void gbx_zap_destroy(gbx_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_zap_t *self = *self_p;
    ssize_t w;
    do
        w = write(self->stop_w, "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(self->thread, NULL);
    close(self->stop_r);
    close(self->stop_w);
    free(self);
    *self_p = NULL;
}

void gbx_zap_stats(const gbx_zap_t *self, gbx_zap_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!self)
        return;
    gbx_zap_t *s = (gbx_zap_t *)self; /* atomic_load wants a non-const pointer in C11 */
    out->accepted = atomic_load(&s->accepted);
    out->refused = atomic_load(&s->refused);
    out->malformed = atomic_load(&s->malformed);
}
