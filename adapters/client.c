/*  client.c: libgbx, an agency adapter's end of the adapter socket: one
    DEALER session with credit, acks, resends and heartbeats.
    Implements proto/spec/5-adapter.md (client side); manual: gbx/client.h. */
#include "gbx/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "gbx/frame.h"
#include "gbx/receipt.h"

#define S_CREDIT_MESSAGES 64u
#define S_CREDIT_BYTES    (64ull << 20)
#define S_SUBMIT_TIMEOUT  30000
#define S_HEARTBEAT       10000
#define S_TTL_MS          (3600ull * 1000)
#define S_DEDUPE          4096u
#define S_ACKS_PER_FRAME  2000u
#define S_MAX_PARTS       65536u /* 4 GiB of 64 KiB chunks: more than any payload */
#define S_DRAIN           256    /* messages handled per pump before timers run again */
#define S_CHUNK_WIRE      (GBX_CHUNK + GBX_CHUNK_ABYTES)

struct gbx_msg {
    gbx_envelope_t *env;
    uint8_t *sealed;
    size_t sealed_len;
    uint8_t id[GBX_MSG_ID_BYTES];
};

/*  A Submit waiting for its answer. */
typedef struct {
    uint64_t tag;
    gbx_msg_t *msg;
    int owned;      /* 0: borrowed by gbx_client_send */
    uint8_t *frame; /* part 1, the exact bytes resent */
    size_t frame_len;
    uint64_t sent_ms; /* 0: not sent yet */
} s_pending_t;

typedef struct s_evnode {
    gbx_event_t ev;
    struct s_evnode *next;
} s_evnode_t;

/*  A delivery surfaced to the application and not acked yet. */
typedef struct {
    uint64_t delivery_id;
    uint64_t bytes;
    uint64_t session;
    char from[GBX_ID_MAX + 1];
    uint8_t id[GBX_MSG_ID_BYTES];
} s_held_t;

/*  A recently acked message (5-adapter.md 7.6). */
typedef struct {
    char from[GBX_ID_MAX + 1];
    uint8_t id[GBX_MSG_ID_BYTES];
} s_seen_t;

struct gbx_client {
    gbx_client_opts_t o;
    gbx_pubid_t node;
    char node_id[GBX_ID_MAX + 1];
    char me[GBX_ID_MAX + 1];
    void *ctx;
    int own_ctx;
    void *sock;
    void *mon;
    int connected;
    uint64_t session; /* counts handshakes */
    uint64_t next_tag;
    s_pending_t *pend;
    size_t npend, cap_pend;
    s_evnode_t *evhead, *evtail;
    s_held_t *held;
    size_t nheld, cap_held;
    s_seen_t *seen;
    size_t nseen, seen_next;
    uint64_t *acks;
    size_t nacks, cap_acks;
    uint32_t ret_msgs; /* credit to give back */
    uint64_t ret_bytes;
    uint64_t last_send_ms;
    gbx_vcache_t *vcache;
};

/* ------------------------------------------------------------------ helpers */

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 2, 3))) static void s_log(gbx_client_t *self, const char *fmt, ...)
{
    if (!self->o.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    self->o.log(self->o.log_arg, line);
}

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/*  Grows *ARR (of *CAP elements of SIZE bytes) to hold at least N. 0 or -1. */
static int s_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < n)
        c *= 2;
    void *p = realloc(*arr, c * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/*  Sends "GBX1", FRAME and the payload split one chunk per part (5-adapter.md
    section 3). Never blocks: GBX_E_IO (errno EAGAIN) when no connection can
    take it now. */
static gbx_err_t s_send(gbx_client_t *self, const uint8_t *frame, size_t flen,
                        const uint8_t *payload, size_t plen)
{
    int more = plen ? ZMQ_SNDMORE : 0;
    if (zmq_send(self->sock, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN,
                 ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return GBX_E_IO;
    /* after the first part, the rest of a message always goes */
    if (zmq_send(self->sock, frame, flen, more) < 0)
        return GBX_E_IO;
    size_t off = 0;
    while (off < plen) {
        size_t n = off == 0 ? GBX_PAYLOAD_PREFIX + S_CHUNK_WIRE : S_CHUNK_WIRE;
        if (n > plen - off)
            n = plen - off;
        if (zmq_send(self->sock, payload + off, n, off + n < plen ? ZMQ_SNDMORE : 0) < 0)
            return GBX_E_IO;
        off += n;
    }
    self->last_send_ms = s_now_ms();
    return GBX_OK;
}

/*  Sends *BUF (*LEN bytes), the output of the encoder call ENC, and frees
    it. Pointers, because ENC is evaluated before the call reads them. */
static gbx_err_t s_send_small(gbx_client_t *self, gbx_err_t enc, uint8_t **buf, size_t *len)
{
    gbx_err_t rc = enc == GBX_OK ? s_send(self, *buf, *len, NULL, 0) : enc;
    free(*buf);
    *buf = NULL;
    return rc;
}

static void s_push_event(gbx_client_t *self, s_evnode_t *n)
{
    n->next = NULL;
    if (self->evtail)
        self->evtail->next = n;
    else
        self->evhead = n;
    self->evtail = n;
}

static s_evnode_t *s_new_event(gbx_event_kind_t kind)
{
    s_evnode_t *n = calloc(1, sizeof *n);
    if (n)
        n->ev.kind = kind;
    return n;
}

void gbx_event_clear(gbx_event_t *ev)
{
    if (!ev)
        return;
    free(ev->receipt);
    if (ev->delivery) {
        if (ev->delivery->data) {
            sodium_memzero(ev->delivery->data, ev->delivery->len);
            free(ev->delivery->data);
        }
        gbx_envelope_destroy(&ev->delivery->envelope);
        free(ev->delivery);
    }
    memset(ev, 0, sizeof *ev);
}

/* ------------------------------------------------------------------ pending */

static s_pending_t *s_pending_find(gbx_client_t *self, uint64_t tag)
{
    for (size_t i = 0; i < self->npend; i++)
        if (self->pend[i].tag == tag)
            return &self->pend[i];
    return NULL;
}

static void s_pending_remove(gbx_client_t *self, s_pending_t *p)
{
    if (p->owned)
        gbx_msg_destroy(&p->msg);
    free(p->frame);
    *p = self->pend[--self->npend];
}

static void s_pending_send(gbx_client_t *self, s_pending_t *p)
{
    if (s_send(self, p->frame, p->frame_len, p->msg->sealed, p->msg->sealed_len) == GBX_OK)
        p->sent_ms = s_now_ms();
}

static gbx_err_t s_pending_add(gbx_client_t *self, gbx_msg_t *msg, int owned, uint64_t *tag_out)
{
    if (s_grow((void **)&self->pend, &self->cap_pend, self->npend + 1, sizeof *self->pend) != 0)
        return GBX_E_NOMEM;
    s_pending_t p = {.tag = self->next_tag++, .msg = msg, .owned = owned};
    gbx_err_t rc = gbx_frame_submit(p.tag, msg->env, &p.frame, &p.frame_len);
    if (rc != GBX_OK)
        return rc;
    self->pend[self->npend++] = p;
    if (self->connected)
        s_pending_send(self, &self->pend[self->npend - 1]);
    *tag_out = p.tag;
    return GBX_OK;
}

/* ------------------------------------------------------------ acks, credit */

static void s_return_credit(gbx_client_t *self, uint64_t session, uint64_t bytes)
{
    if (session != self->session)
        return; /* that session's credit is gone; the new one got full credit */
    if (self->ret_msgs < UINT32_MAX)
        self->ret_msgs++;
    self->ret_bytes = bytes > UINT64_MAX - self->ret_bytes ? UINT64_MAX : self->ret_bytes + bytes;
}

static gbx_err_t s_queue_ack(gbx_client_t *self, uint64_t delivery_id)
{
    if (s_grow((void **)&self->acks, &self->cap_acks, self->nacks + 1, sizeof *self->acks) != 0)
        return GBX_E_NOMEM;
    self->acks[self->nacks++] = delivery_id;
    return GBX_OK;
}

gbx_err_t gbx_client_flush(gbx_client_t *self)
{
    gbx_err_t rc = GBX_OK;
    if (!self->connected)
        return GBX_OK; /* kept; acks go on the next connection */
    size_t done = 0;
    while (done < self->nacks && rc == GBX_OK) {
        size_t n = self->nacks - done;
        if (n > S_ACKS_PER_FRAME)
            n = S_ACKS_PER_FRAME;
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = s_send_small(self, gbx_frame_ack(self->acks + done, n, &buf, &len), &buf, &len);
        if (rc == GBX_OK)
            done += n;
    }
    if (done && done < self->nacks)
        memmove(self->acks, self->acks + done, (self->nacks - done) * sizeof *self->acks);
    self->nacks -= done;
    if (rc == GBX_OK && self->ret_msgs > 0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = s_send_small(self, gbx_frame_credit(self->ret_msgs, self->ret_bytes, &buf, &len), &buf,
                          &len);
        if (rc == GBX_OK)
            self->ret_msgs = 0, self->ret_bytes = 0;
    }
    if (rc != GBX_OK)
        s_log(self, "GBX-CLI-SEND-FAILED what=ack errno=%d", errno);
    return rc;
}

static int s_seen(const gbx_client_t *self, const char *from, const uint8_t *id)
{
    for (size_t i = 0; i < self->nseen; i++)
        if (memcmp(self->seen[i].id, id, GBX_MSG_ID_BYTES) == 0 &&
            strcmp(self->seen[i].from, from) == 0)
            return 1;
    return 0;
}

static void s_remember(gbx_client_t *self, const char *from, const uint8_t *id)
{
    s_seen_t *s = &self->seen[self->seen_next];
    snprintf(s->from, sizeof s->from, "%s", from);
    memcpy(s->id, id, GBX_MSG_ID_BYTES);
    self->seen_next = (self->seen_next + 1) % self->o.dedupe_size;
    if (self->nseen < self->o.dedupe_size)
        self->nseen++;
}

gbx_err_t gbx_client_ack(gbx_client_t *self, uint64_t delivery_id)
{
    for (size_t i = 0; i < self->nheld; i++) {
        s_held_t *h = &self->held[i];
        if (h->delivery_id != delivery_id)
            continue;
        gbx_err_t rc = s_queue_ack(self, delivery_id);
        if (rc != GBX_OK)
            return rc;
        s_remember(self, h->from, h->id);
        s_return_credit(self, h->session, h->bytes);
        *h = self->held[--self->nheld];
        return GBX_OK;
    }
    return GBX_E_ARG;
}

/* ---------------------------------------------------------------- incoming */

static gbx_err_t s_sink(void *arg, const uint8_t *data, size_t len)
{
    uint8_t **at = arg;
    memcpy(*at, data, len);
    *at += len;
    return GBX_OK;
}

/*  2-envelope.md section 8 steps 7 to 13 and 5-adapter.md 7.6 / 7.7 on a
    decoded Deliver (steps 1 to 6 were done by gbx_frame_decode_at). */
static void s_on_deliver(gbx_client_t *self, const gbx_frame_t *f)
{
    const Gbx__V1__Deliver *d = gbx_frame_message(f)->deliver;
    const gbx_envelope_t *env = gbx_frame_envelope(f);
    const gbx_header_t *h = gbx_envelope_header(env);
    uint64_t bytes = gbx_frame_payload_size(f);
    char idhex[2 * GBX_MSG_ID_BYTES + 1];
    s_hex(h->message_id.data, GBX_MSG_ID_BYTES, idhex);
    gbx_pubid_t sender;
    gbx_err_t rc = GBX_OK;
    const gbx_pubid_t *p = self->o.peer(self->o.peer_arg, h->from_agency);
    if (!p)
        rc = GBX_E_UNKNOWN_AGENCY; /* step 7 */
    else
        sender = *p;
    if (rc == GBX_OK)
        rc = gbx_envelope_verify(env, &sender, self->vcache); /* steps 8 to 10 */
    if (rc == GBX_OK && strcmp(h->to_agency, self->me) != 0)
        rc = GBX_E_UNKNOWN_DESTINATION; /* 7.7: misrouted */
    if (rc == GBX_OK)
        rc = gbx_frame_check_payload(f); /* steps 11, 12 */
    if (rc == GBX_OK && s_seen(self, h->from_agency, h->message_id.data)) {
        s_log(self, "GBX-CLI-DUPLICATE delivery=%llu from=%s id=%s action=ack",
              (unsigned long long)d->delivery_id, h->from_agency, idhex);
        if (s_queue_ack(self, d->delivery_id) == GBX_OK)
            s_return_credit(self, self->session, bytes);
        return;
    }
    if (rc == GBX_OK) {
        for (size_t i = 0; i < self->nheld; i++) {
            if (memcmp(self->held[i].id, h->message_id.data, GBX_MSG_ID_BYTES) == 0 &&
                strcmp(self->held[i].from, h->from_agency) == 0) {
                /* still with the application: its ack of the earlier
                   delivery acks the message (7.3) */
                s_log(self, "GBX-CLI-DUPLICATE delivery=%llu from=%s id=%s action=drop",
                      (unsigned long long)d->delivery_id, h->from_agency, idhex);
                s_return_credit(self, self->session, bytes);
                return;
            }
        }
    }
    uint8_t *plain = NULL;
    gbx_opener_t *op = NULL;
    s_evnode_t *n = NULL;
    if (rc == GBX_OK) { /* step 13 */
        plain = malloc(h->payload_length + 1);
        uint8_t *at = plain;
        rc =
            plain
                ? gbx_opener_new(self->o.identity,
                                 &(gbx_binding_t){h->message_id.data, h->from_agency, h->to_agency},
                                 h->payload_length, h->payload_hash.data, s_sink, &at, &op)
                : GBX_E_NOMEM;
        size_t np = 0;
        const gbx_part_t *parts = gbx_frame_payload(f, &np);
        for (size_t i = 0; i < np && rc == GBX_OK; i++)
            rc = gbx_opener_write(op, parts[i].data, parts[i].len);
        if (rc == GBX_OK)
            rc = gbx_opener_finish(op);
        gbx_opener_destroy(&op);
    }
    if (rc == GBX_OK) {
        plain[h->payload_length] = '\0';
        n = s_new_event(GBX_EV_DELIVERY);
        gbx_delivery_t *dl = calloc(1, sizeof *dl);
        size_t elen = gbx_envelope_size(env);
        uint8_t *ebuf = malloc(elen ? elen : 1);
        if (!n || !dl || !ebuf ||
            s_grow((void **)&self->held, &self->cap_held, self->nheld + 1, sizeof *self->held))
            rc = GBX_E_NOMEM;
        if (rc == GBX_OK) {
            gbx_envelope_pack(env, ebuf);
            rc = gbx_envelope_decode(ebuf, elen, &dl->envelope);
        }
        free(ebuf);
        if (rc == GBX_OK) {
            dl->delivery_id = d->delivery_id;
            dl->attempt = d->attempt;
            dl->header = gbx_envelope_header(dl->envelope);
            dl->data = plain;
            dl->len = h->payload_length;
            plain = NULL;
            n->ev.delivery = dl;
            dl = NULL;
            memcpy(n->ev.message_id, h->message_id.data, GBX_MSG_ID_BYTES);
            n->ev.message_id_len = GBX_MSG_ID_BYTES;
            s_held_t *hd = &self->held[self->nheld++];
            hd->delivery_id = d->delivery_id;
            hd->bytes = bytes;
            hd->session = self->session;
            snprintf(hd->from, sizeof hd->from, "%s", h->from_agency);
            memcpy(hd->id, h->message_id.data, GBX_MSG_ID_BYTES);
            s_push_event(self, n);
            n = NULL;
        }
        if (dl)
            gbx_envelope_destroy(&dl->envelope);
        free(dl);
        free(n);
    }
    if (plain) {
        sodium_memzero(plain, h->payload_length);
        free(plain);
    }
    if (rc != GBX_OK) {
        /* not acked: the node redelivers, then dead-letters it (7.7) */
        s_log(self, "GBX-CLI-DELIVERY-REFUSED delivery=%llu from=%s id=%s reason=%s",
              (unsigned long long)d->delivery_id, h->from_agency, idhex, gbx_err_name(rc));
        s_return_credit(self, self->session, bytes);
    }
}

static void s_on_accepted(gbx_client_t *self, const Gbx__V1__Frame *m, s_pending_t *p)
{
    s_evnode_t *n = s_new_event(GBX_EV_ACCEPTED);
    if (!n)
        return; /* unanswered: it will be resent */
    gbx_event_t *ev = &n->ev;
    ev->tag = p->tag;
    memcpy(ev->message_id, p->msg->id, GBX_MSG_ID_BYTES);
    ev->message_id_len = GBX_MSG_ID_BYTES;
    ev->duplicate = m->accepted->duplicate;
    Gbx__V1__Receipt *r = NULL;
    gbx_err_t rc = m->accepted->receipt ? gbx_receipt_verify_cached(m->accepted->receipt,
                                                                    &self->node, self->vcache, &r)
                                        : GBX_E_MALFORMED;
    if (rc == GBX_OK)
        rc = gbx_receipt_check(r, p->msg->env, self->node_id);
    if (rc == GBX_OK) {
        ev->held = r->status == GBX__V1__RECEIPT_STATUS__HELD;
        ev->sequence = r->sequence;
        ev->accepted_at_ms = r->accepted_at_ms;
        ev->receipt_len = gbx__v1__signed_receipt__get_packed_size(m->accepted->receipt);
        ev->receipt = malloc(ev->receipt_len ? ev->receipt_len : 1);
        if (ev->receipt)
            gbx__v1__signed_receipt__pack(m->accepted->receipt, ev->receipt);
        else
            rc = GBX_E_NOMEM;
    }
    if (r)
        gbx__v1__receipt__free_unpacked(r, NULL);
    if (rc != GBX_OK) {
        char idhex[2 * GBX_MSG_ID_BYTES + 1];
        s_hex(p->msg->id, GBX_MSG_ID_BYTES, idhex);
        s_log(self, "GBX-CLI-RECEIPT-BAD tag=%llu id=%s reason=%s", (unsigned long long)p->tag,
              idhex, gbx_err_name(rc));
        free(ev->receipt);
        ev->receipt = NULL;
        ev->receipt_len = 0;
        ev->kind = GBX_EV_REJECTED;
        ev->reason = rc;
        snprintf(ev->detail, sizeof ev->detail, "receipt does not verify (local check)");
    }
    s_push_event(self, n);
    s_pending_remove(self, p);
}

static void s_on_frame(gbx_client_t *self, const gbx_frame_t *f)
{
    const Gbx__V1__Frame *m = gbx_frame_message(f);
    s_pending_t *p = NULL;
    s_evnode_t *n = NULL;
    switch (gbx_frame_kind(f)) {
    case GBX_FRAME_ACCEPTED:
        p = s_pending_find(self, m->tag);
        if (!p) {
            s_log(self, "GBX-CLI-UNEXPECTED what=accepted tag=%llu", (unsigned long long)m->tag);
            return;
        }
        s_on_accepted(self, m, p);
        return;
    case GBX_FRAME_REJECTED:
        p = s_pending_find(self, m->tag);
        if (!p || (m->rejected->message_id.len != 0 &&
                   (m->rejected->message_id.len != GBX_MSG_ID_BYTES ||
                    memcmp(m->rejected->message_id.data, p->msg->id, GBX_MSG_ID_BYTES) != 0))) {
            s_log(self, "GBX-CLI-UNEXPECTED what=rejected tag=%llu reason=%s",
                  (unsigned long long)m->tag, gbx_err_name((gbx_err_t)m->rejected->reason));
            return;
        }
        if (!(n = s_new_event(GBX_EV_REJECTED)))
            return;
        n->ev.tag = p->tag;
        memcpy(n->ev.message_id, p->msg->id, GBX_MSG_ID_BYTES);
        n->ev.message_id_len = GBX_MSG_ID_BYTES;
        n->ev.reason = (gbx_err_t)m->rejected->reason;
        n->ev.retry_after_ms = m->rejected->retry_after_ms;
        snprintf(n->ev.detail, sizeof n->ev.detail, "%s",
                 m->rejected->detail ? m->rejected->detail : "");
        s_push_event(self, n);
        s_pending_remove(self, p);
        return;
    case GBX_FRAME_DELIVER:
        s_on_deliver(self, f);
        return;
    case GBX_FRAME_NOTICE:
        if (!(n = s_new_event(GBX_EV_NOTICE)))
            return;
        if (m->notice->message_id.len == GBX_MSG_ID_BYTES) {
            memcpy(n->ev.message_id, m->notice->message_id.data, GBX_MSG_ID_BYTES);
            n->ev.message_id_len = GBX_MSG_ID_BYTES;
        }
        n->ev.reason = (gbx_err_t)m->notice->reason;
        snprintf(n->ev.detail, sizeof n->ev.detail, "%s",
                 m->notice->detail ? m->notice->detail : "");
        s_push_event(self, n);
        return;
    case GBX_FRAME_PING: {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (s_send_small(self, gbx_frame_pong(m->tag, m->ping->nonce, &buf, &len), &buf, &len) !=
            GBX_OK)
            s_log(self, "GBX-CLI-SEND-FAILED what=pong errno=%d", errno);
        return;
    }
    case GBX_FRAME_PONG:
        return; /* liveness only: the node answered */
    default:
        s_log(self, "GBX-CLI-UNEXPECTED what=frame kind=%d", (int)gbx_frame_kind(f));
        return;
    }
}

/*  Receives one whole message (all parts) and handles it. */
static void s_recv_one(gbx_client_t *self)
{
    zmq_msg_t *msgs = NULL;
    gbx_part_t *parts = NULL;
    size_t n = 0, cap = 0, dropped = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->sock, n == 0 && dropped == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n >= S_MAX_PARTS || s_grow((void **)&msgs, &cap, n + 1, sizeof *msgs) != 0) {
            zmq_msg_close(&m);
            dropped++;
            continue;
        }
        msgs[n++] = m;
    }
    if (n > 0 && dropped == 0 && (parts = calloc(n, sizeof *parts))) {
        for (size_t i = 0; i < n; i++)
            parts[i] = (gbx_part_t){zmq_msg_data(&msgs[i]), zmq_msg_size(&msgs[i])};
        gbx_frame_t *f = NULL;
        gbx_err_t rc = gbx_frame_decode_at(parts, n, GBX_FRAME_AT_ADAPTER, &f, NULL);
        if (rc == GBX_OK)
            s_on_frame(self, f);
        else
            s_log(self, "GBX-CLI-UNEXPECTED what=undecodable reason=%s", gbx_err_name(rc));
        gbx_frame_destroy(&f);
    } else if (n > 0) {
        s_log(self, "GBX-CLI-UNEXPECTED what=too-many-parts");
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&msgs[i]);
    free(msgs);
    free(parts);
}

static void s_on_handshake(gbx_client_t *self)
{
    self->connected = 1;
    self->session++;
    self->ret_msgs = 0; /* a new session gets full credit below */
    self->ret_bytes = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!self->o.send_only &&
        s_send_small(self,
                     gbx_frame_credit(self->o.credit_messages, self->o.credit_bytes, &buf, &len),
                     &buf, &len) != GBX_OK)
        s_log(self, "GBX-CLI-SEND-FAILED what=credit errno=%d", errno);
    for (size_t i = 0; i < self->npend; i++)
        s_pending_send(self, &self->pend[i]);
    s_log(self, "GBX-CLI-CONNECTED endpoint=%s session=%llu resent=%zu", self->o.endpoint,
          (unsigned long long)self->session, self->npend);
    gbx_client_flush(self);
    s_evnode_t *n = s_new_event(GBX_EV_CONNECTED);
    if (n)
        s_push_event(self, n);
}

static void s_recv_monitor(gbx_client_t *self)
{
    for (;;) {
        zmq_msg_t a, b;
        zmq_msg_init(&a);
        zmq_msg_init(&b);
        if (zmq_msg_recv(&a, self->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&a);
            zmq_msg_close(&b);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&a) >= 6)
            memcpy(&event, zmq_msg_data(&a), sizeof event);
        if (zmq_msg_more(&a))
            zmq_msg_recv(&b, self->mon, 0); /* the endpoint */
        zmq_msg_close(&a);
        zmq_msg_close(&b);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            s_on_handshake(self);
        } else if (event == ZMQ_EVENT_DISCONNECTED && self->connected) {
            self->connected = 0;
            s_log(self, "GBX-CLI-DISCONNECTED endpoint=%s pending=%zu", self->o.endpoint,
                  self->npend);
            s_evnode_t *n = s_new_event(GBX_EV_DISCONNECTED);
            if (n)
                s_push_event(self, n);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            s_log(self, "GBX-CLI-HANDSHAKE-FAILED endpoint=%s event=0x%x", self->o.endpoint, event);
        }
    }
}

/* ------------------------------------------------------------------ timers */

int gbx_client_next_timer_ms(gbx_client_t *self)
{
    uint64_t now = s_now_ms();
    uint64_t due = self->last_send_ms + (uint64_t)self->o.heartbeat_ivl_ms;
    for (size_t i = 0; i < self->npend; i++) {
        uint64_t t = self->pend[i].sent_ms == 0
                         ? (self->connected ? now + 10 : UINT64_MAX) /* HWM: retry soon */
                         : self->pend[i].sent_ms + (uint64_t)self->o.submit_timeout_ms;
        if (t < due)
            due = t;
    }
    if (self->nacks || self->ret_msgs)
        due = now;
    return due <= now ? 0 : due - now > 3600000 ? 3600000 : (int)(due - now);
}

static void s_timers(gbx_client_t *self)
{
    if (!self->connected)
        return;
    uint64_t now = s_now_ms();
    for (size_t i = 0; i < self->npend; i++) {
        s_pending_t *p = &self->pend[i];
        if (p->sent_ms == 0) {
            s_pending_send(self, p);
        } else if (now - p->sent_ms >= (uint64_t)self->o.submit_timeout_ms) {
            s_log(self, "GBX-CLI-RESEND tag=%llu reason=timeout", (unsigned long long)p->tag);
            s_pending_send(self, p);
        }
    }
    gbx_client_flush(self);
    if (now - self->last_send_ms >= (uint64_t)self->o.heartbeat_ivl_ms) {
        uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t tag = self->next_tag++;
        if (s_send_small(self, gbx_frame_ping(tag, randombytes_random(), &buf, &len), &buf, &len) !=
            GBX_OK)
            self->last_send_ms = now; /* do not spin; try at the next interval */
    }
}

/*  Runs the protocol for at most WAIT ms (-1: until something arrives). */
static void s_pump(gbx_client_t *self, int64_t wait)
{
    s_timers(self);
    int t = gbx_client_next_timer_ms(self);
    if (wait < 0 || wait > t)
        wait = t;
    zmq_pollitem_t items[2] = {{self->sock, 0, ZMQ_POLLIN, 0}, {self->mon, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 2, (long)wait) <= 0)
        return;
    s_recv_monitor(self);
    for (int i = 0; i < S_DRAIN; i++) {
        int ev = 0;
        size_t len = sizeof ev;
        if (zmq_getsockopt(self->sock, ZMQ_EVENTS, &ev, &len) != 0 || !(ev & ZMQ_POLLIN))
            break;
        s_recv_one(self);
    }
    s_recv_monitor(self);
}

/* ----------------------------------------------------------------- the API */

gbx_err_t gbx_client_new(const gbx_client_opts_t *opts, gbx_client_t **out)
{
    if (!opts || !out || !opts->endpoint || !opts->identity || !opts->node || !opts->peer)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    gbx_err_t rc = GBX_OK;
    self->o = *opts;
    self->node = *opts->node;
    snprintf(self->node_id, sizeof self->node_id, "%s",
             opts->node_id ? opts->node_id : opts->node->id);
    snprintf(self->me, sizeof self->me, "%s", gbx_identity_public(opts->identity)->id);
    if (!self->o.credit_messages)
        self->o.credit_messages = S_CREDIT_MESSAGES;
    if (!self->o.credit_bytes)
        self->o.credit_bytes = S_CREDIT_BYTES;
    if (self->o.submit_timeout_ms <= 0)
        self->o.submit_timeout_ms = S_SUBMIT_TIMEOUT;
    if (self->o.heartbeat_ivl_ms <= 0 || self->o.heartbeat_ivl_ms > S_HEARTBEAT)
        self->o.heartbeat_ivl_ms = S_HEARTBEAT;
    if (!self->o.ttl_ms)
        self->o.ttl_ms = S_TTL_MS;
    if (!self->o.dedupe_size)
        self->o.dedupe_size = S_DEDUPE;
    self->next_tag = 1;
    self->last_send_ms = s_now_ms();
    self->seen = calloc(self->o.dedupe_size, sizeof *self->seen);
    if (!self->seen || gbx_vcache_new(1024, &self->vcache) != GBX_OK) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    self->ctx = opts->zmq_ctx;
    if (!self->ctx) {
        self->own_ctx = 1;
        if (!(self->ctx = zmq_ctx_new())) {
            rc = GBX_E_IO;
            goto out;
        }
    }
    if (!(self->sock = zmq_socket(self->ctx, ZMQ_DEALER))) {
        rc = GBX_E_IO;
        goto out;
    }
    int linger = 1000, one = 1, hwm = 100000, rivl = 100, rmax = 5000;
    int hb = self->o.heartbeat_ivl_ms, hbt = 3 * self->o.heartbeat_ivl_ms;
    char mon[64];
    /* unique for the life of the process: a new client may get the address
       of one just destroyed while its monitor endpoint is still going */
    static _Atomic unsigned long s_monitors;
    snprintf(mon, sizeof mon, "inproc://gbx-client-monitor-%lu", ++s_monitors);
    if (zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(self->sock, ZMQ_IMMEDIATE, &one, sizeof one) ||
        zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(self->sock, ZMQ_RECONNECT_IVL, &rivl, sizeof rivl) ||
        zmq_setsockopt(self->sock, ZMQ_RECONNECT_IVL_MAX, &rmax, sizeof rmax) ||
        zmq_setsockopt(self->sock, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb) ||
        zmq_setsockopt(self->sock, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof hbt) ||
        zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, self->node.curve_pk, GBX_KEY_BYTES) ||
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY,
                       gbx_identity_public(opts->identity)->curve_pk, GBX_KEY_BYTES) ||
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(opts->identity),
                       GBX_KEY_BYTES) ||
        zmq_socket_monitor(self->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) ||
        !(self->mon = zmq_socket(self->ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(self->mon, ZMQ_LINGER, &(int){0}, sizeof(int)) ||
        zmq_connect(self->mon, mon)) {
        rc = GBX_E_IO;
        goto out;
    }
    if (zmq_connect(self->sock, opts->endpoint) != 0)
        rc = GBX_E_ARG;
out:
    if (rc == GBX_OK)
        *out = self;
    else
        gbx_client_destroy(&self);
    return rc;
}

void gbx_client_destroy(gbx_client_t **self_p)
{
    gbx_client_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->sock) {
        gbx_client_flush(self);
        zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->sock);
    }
    if (self->mon)
        zmq_close(self->mon);
    if (self->own_ctx && self->ctx)
        zmq_ctx_term(self->ctx);
    while (self->npend)
        s_pending_remove(self, &self->pend[0]);
    free(self->pend);
    while (self->evhead) {
        s_evnode_t *n = self->evhead;
        self->evhead = n->next;
        gbx_event_clear(&n->ev);
        free(n);
    }
    free(self->held);
    free(self->seen);
    free(self->acks);
    gbx_vcache_destroy(&self->vcache);
    free(self);
    *self_p = NULL;
}

void *gbx_client_socket(gbx_client_t *self)
{
    return self->sock;
}

void *gbx_client_monitor(gbx_client_t *self)
{
    return self->mon;
}

int gbx_client_connected(const gbx_client_t *self)
{
    return self->connected;
}

size_t gbx_client_pending(const gbx_client_t *self)
{
    return self->npend;
}

/* ---------------------------------------------------------------- messages */

void gbx_msg_destroy(gbx_msg_t **self_p)
{
    gbx_msg_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    gbx_envelope_destroy(&self->env);
    free(self->sealed);
    free(self);
    *self_p = NULL;
}

const uint8_t *gbx_msg_id(const gbx_msg_t *self)
{
    return self->id;
}

const gbx_envelope_t *gbx_msg_envelope(const gbx_msg_t *self)
{
    return self->env;
}

size_t gbx_msg_payload_size(const gbx_msg_t *self)
{
    return self->sealed_len;
}

/*  Fills the library's fields of *H (a copy of the caller's) and seals
    PLAIN into a new message M (without envelope). HASH and M->id back the
    header's byte fields. */
static gbx_err_t s_prepare(gbx_client_t *self, gbx_header_t *h, const void *plain, size_t len,
                           uint8_t hash[GBX_HASH_BYTES], gbx_msg_t **m_out)
{
    if (!h->to_agency)
        return GBX_E_FIELD_INVALID;
    const gbx_pubid_t *to = self->o.peer(self->o.peer_arg, h->to_agency);
    if (!to) {
        s_log(self, "GBX-CLI-MSG-INVALID reason=UNKNOWN_DESTINATION to=%s", h->to_agency);
        return GBX_E_UNKNOWN_DESTINATION;
    }
    uint8_t box_pk[GBX_KEY_BYTES];
    memcpy(box_pk, to->box_pk, sizeof box_pk);
    gbx_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return GBX_E_NOMEM;
    if (h->message_id.len == GBX_MSG_ID_BYTES)
        memcpy(m->id, h->message_id.data, GBX_MSG_ID_BYTES);
    else
        gbx_message_id_new(m->id);
    h->message_id.data = m->id;
    h->message_id.len = GBX_MSG_ID_BYTES;
    h->from_agency = self->me;
    h->signer_key_id.data = NULL;
    h->signer_key_id.len = 0;
    if (!h->created_at_ms)
        h->created_at_ms = s_wall_ms();
    if (!h->expires_at_ms)
        h->expires_at_ms = h->created_at_ms + self->o.ttl_ms;
    h->payload_length = len;
    const char *why = NULL;
    h->payload_hash.data = hash; /* checked before sealing, filled by it */
    h->payload_hash.len = GBX_HASH_BYTES;
    gbx_err_t rc = gbx_header_check(h, &why);
    if (rc != GBX_OK) {
        s_log(self, "GBX-CLI-MSG-INVALID reason=%s field=%s", gbx_err_name(rc), why ? why : "?");
    } else {
        gbx_binding_t b = {m->id, h->from_agency, h->to_agency};
        rc = gbx_payload_seal(box_pk, &b, plain, len, &m->sealed, &m->sealed_len, hash);
    }
    if (rc == GBX_OK)
        *m_out = m;
    else
        gbx_msg_destroy(&m);
    return rc;
}

gbx_err_t gbx_client_msg(gbx_client_t *self, const gbx_header_t *h, const void *plain, size_t len,
                         gbx_msg_t **out)
{
    if (!self || !h || (!plain && len) || !out)
        return GBX_E_ARG;
    gbx_header_t copy = *h;
    uint8_t hash[GBX_HASH_BYTES];
    gbx_msg_t *m = NULL;
    gbx_err_t rc = s_prepare(self, &copy, plain ? plain : "", len, hash, &m);
    if (rc == GBX_OK)
        rc = gbx_envelope_sign(self->o.identity, &copy, &m->env);
    if (rc == GBX_OK)
        *out = m;
    else
        gbx_msg_destroy(&m);
    return rc;
}

gbx_err_t gbx_client_msg_batch(gbx_client_t *self, const gbx_header_t *const *hs,
                               const void *const *plains, const size_t *lens, size_t n,
                               gbx_msg_t **out)
{
    if (!self || !hs || !plains || !lens || !out || n < 1 || n > GBX_BATCH_MAX)
        return GBX_E_ARG;
    gbx_header_t *copies = calloc(n, sizeof *copies);
    const gbx_header_t **ptrs = calloc(n, sizeof *ptrs);
    uint8_t(*hashes)[GBX_HASH_BYTES] = calloc(n, GBX_HASH_BYTES);
    gbx_msg_t **ms = calloc(n, sizeof *ms);
    gbx_envelope_t **envs = calloc(n, sizeof *envs);
    gbx_err_t rc = copies && ptrs && hashes && ms && envs ? GBX_OK : GBX_E_NOMEM;
    for (size_t i = 0; i < n && rc == GBX_OK; i++) {
        copies[i] = *hs[i];
        ptrs[i] = &copies[i];
        rc = s_prepare(self, &copies[i], plains[i] ? plains[i] : "", lens[i], hashes[i], &ms[i]);
    }
    if (rc == GBX_OK)
        rc = gbx_envelope_sign_batch(self->o.identity, ptrs, n, envs);
    for (size_t i = 0; ms && i < n; i++) {
        if (rc == GBX_OK) {
            ms[i]->env = envs[i];
            out[i] = ms[i];
        } else {
            gbx_msg_destroy(&ms[i]);
        }
    }
    free(copies);
    free(ptrs);
    free(hashes);
    free(ms);
    free(envs);
    return rc;
}

/* ------------------------------------------------------------ send, poll */

gbx_err_t gbx_client_submit(gbx_client_t *self, gbx_msg_t **msg_p, uint64_t *tag_out)
{
    if (!self || !msg_p || !*msg_p)
        return GBX_E_ARG;
    uint64_t tag = 0;
    gbx_err_t rc = s_pending_add(self, *msg_p, 1, &tag);
    if (rc == GBX_OK) {
        *msg_p = NULL;
        if (tag_out)
            *tag_out = tag;
    }
    return rc;
}

/*  Takes the first queued event matching TAG (any when ANY_TAG). */
static int s_take(gbx_client_t *self, int any_tag, uint64_t tag, gbx_event_t *ev)
{
    s_evnode_t **pp = &self->evhead, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->next) {
        s_evnode_t *n = *pp;
        if (!any_tag &&
            !((n->ev.kind == GBX_EV_ACCEPTED || n->ev.kind == GBX_EV_REJECTED) && n->ev.tag == tag))
            continue;
        *pp = n->next;
        if (self->evtail == n)
            self->evtail = prev;
        *ev = n->ev;
        free(n);
        return 1;
    }
    return 0;
}

/*  Pumps until an event matching (ANY_TAG, TAG) is queued or TIMEOUT_MS. */
static gbx_err_t s_wait(gbx_client_t *self, int any_tag, uint64_t tag, int timeout_ms,
                        gbx_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    uint64_t deadline = s_now_ms() + (timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
    for (int first = 1;; first = 0) {
        if (s_take(self, any_tag, tag, ev))
            return GBX_OK;
        int64_t left = -1;
        if (timeout_ms >= 0) {
            uint64_t now = s_now_ms();
            left = now >= deadline ? 0 : (int64_t)(deadline - now);
            if (left == 0 && !first)
                break;
        }
        s_pump(self, left);
    }
    errno = ETIMEDOUT;
    return GBX_E_IO;
}

gbx_err_t gbx_client_send(gbx_client_t *self, gbx_msg_t *msg, int timeout_ms, gbx_event_t *result)
{
    if (!self || !msg || !result)
        return GBX_E_ARG;
    memset(result, 0, sizeof *result);
    uint64_t tag = 0;
    gbx_err_t rc = s_pending_add(self, msg, 0, &tag);
    if (rc != GBX_OK)
        return rc;
    rc = s_wait(self, 0, tag, timeout_ms, result);
    if (rc != GBX_OK) {
        s_pending_t *p = s_pending_find(self, tag);
        if (p)
            s_pending_remove(self, p); /* withdrawn; a late answer is dropped */
        errno = ETIMEDOUT;
        return rc;
    }
    return result->kind == GBX_EV_ACCEPTED ? GBX_OK : result->reason;
}

gbx_err_t gbx_client_poll(gbx_client_t *self, int timeout_ms, gbx_event_t *ev)
{
    if (!self || !ev)
        return GBX_E_ARG;
    return s_wait(self, 1, 0, timeout_ms, ev);
}

gbx_err_t gbx_client_reply(gbx_client_t *self, const gbx_delivery_t *request, const void *plain,
                           size_t len, uint64_t *tag_out)
{
    if (!self || !request || !request->header)
        return GBX_E_ARG;
    const gbx_header_t *q = request->header;
    gbx_header_t h;
    gbx_header_init(&h);
    h.kind = GBX__V1__MESSAGE_KIND__RESPONSE;
    h.correlation_id = q->message_id;
    h.to_agency = q->from_agency;
    h.service_code = q->service_code;
    h.service_version = q->service_version;
    h.data_class = q->data_class;
    h.hk_marking = q->hk_marking;
    h.purpose_code = q->purpose_code;
    h.case_ref = q->case_ref;
    h.legal_route = q->legal_route;
    h.legal_route_ref = q->legal_route_ref;
    h.consent_ref = q->consent_ref;
    h.consent_type = q->consent_type;
    h.agreement_ref = q->agreement_ref;
    h.impact_assessment_ref = q->impact_assessment_ref;
    gbx_msg_t *m = NULL;
    gbx_err_t rc = gbx_client_msg(self, &h, plain, len, &m);
    if (rc == GBX_OK)
        rc = gbx_client_submit(self, &m, tag_out);
    gbx_msg_destroy(&m);
    return rc;
}
