/*  test_client: libgbx (gbx/client.h) against a fake node: a ROUTER CURVE
    server in the test that speaks 5-adapter.md with the frame.h codec.
    The client is hk.cr; deliveries come from gd.qh-amr.

      credit_on_connect   the first frame on a new session is Credit with
                          the configured messages and bytes
      resend_after_restart  a Submit left unanswered is resent byte for byte
                          after the node restarts on the same port, with
                          Credit again first; the Accepted's receipt verifies
      ping_pong           a node Ping gets a Pong with its tag and nonce;
                          an idle client Pings within its heartbeat interval
      deliver_ack_dedupe  a valid Deliver is surfaced with its plaintext;
                          the ack carries its id and Credit comes back; the
                          same message redelivered is acked, not surfaced
      deliver_refused     bad signature, wrong to_agency, tampered payload:
                          none surfaced, none acked, reason logged, credit back
      notice              a Notice surfaces with its reason
      rejected            a Rejected surfaces with reason and retry_after_ms
      send_timeout        a blocking send nobody answers: ETIMEDOUT, withdrawn
    Every wait is bounded. */
#include "tu_cmocka.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "gbx/client.h"
#include "gbx/frame.h"
#include "gbx/receipt.h"

#define S_MAX_EV 64

typedef struct {
    zmq_msg_t parts[8];
    size_t n;
    uint8_t rid[256];
    size_t rid_len;
    gbx_frame_t *f;
} s_in_t;

typedef struct {
    void *ctx;
    void *router;
    char endpoint[64];
    gbx_identity_t *node, *me, *qh, *eh;
    gbx_pubid_t peers[3];
    gbx_client_t *c;
    gbx_event_t evs[S_MAX_EV];
    size_t nev;
    char log[16384];
    uint8_t rid[256]; /* the client's routing id at the node */
    size_t rid_len;
} s_t;

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    s_t *t = arg;
    for (int i = 0; i < 3; i++)
        if (strcmp(t->peers[i].id, id) == 0)
            return &t->peers[i];
    return NULL;
}

static void s_logline(void *arg, const char *line)
{
    s_t *t = arg;
    size_t n = strlen(t->log);
    snprintf(t->log + n, sizeof t->log - n, "%s\n", line);
}

static void s_bind(s_t *t)
{
    t->router = zmq_socket(t->ctx, ZMQ_ROUTER);
    assert_non_null(t->router);
    int one = 1, zero = 0;
    assert_int_equal(zmq_setsockopt(t->router, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(t->router, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(t->router, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(t->node),
                                    GBX_KEY_BYTES),
                     0);
    for (int i = 0; i < 100; i++) { /* the old socket's port may linger briefly */
        if (zmq_bind(t->router, t->endpoint) == 0)
            return;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("cannot bind %s", t->endpoint);
}

/*  Polls the client for up to MS, keeping its events. */
static void s_pump(s_t *t, int ms)
{
    gbx_event_t ev;
    if (gbx_client_poll(t->c, ms, &ev) == GBX_OK) {
        assert_true(t->nev < S_MAX_EV);
        t->evs[t->nev++] = ev;
    }
}

/*  The first kept event of KIND (moved out), pumping up to MS; 0 if none. */
static int s_event(s_t *t, gbx_event_kind_t kind, int ms, gbx_event_t *out)
{
    uint64_t end = s_ms() + (uint64_t)ms;
    for (;;) {
        for (size_t i = 0; i < t->nev; i++) {
            if (t->evs[i].kind == kind) {
                *out = t->evs[i];
                memmove(&t->evs[i], &t->evs[i + 1], (t->nev - i - 1) * sizeof *t->evs);
                t->nev--;
                return 1;
            }
        }
        if (s_ms() >= end)
            return 0;
        s_pump(t, 10);
    }
}

static void s_in_free(s_in_t *in)
{
    gbx_frame_destroy(&in->f);
    for (size_t i = 0; i < in->n; i++)
        zmq_msg_close(&in->parts[i]);
    in->n = 0;
}

/*  Waits up to MS (pumping the client) for a frame of KIND at the node;
    frames of other kinds are dropped. 1 when IN holds one. */
static int s_node_expect(s_t *t, gbx_frame_kind_t kind, int ms, s_in_t *in)
{
    uint64_t end = s_ms() + (uint64_t)ms;
    memset(in, 0, sizeof *in);
    while (s_ms() < end) {
        s_pump(t, 5);
        zmq_pollitem_t it = {t->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 5) <= 0)
            continue;
        zmq_msg_t rid;
        zmq_msg_init(&rid);
        assert_true(zmq_msg_recv(&rid, t->router, 0) >= 0);
        in->rid_len = zmq_msg_size(&rid);
        memcpy(in->rid, zmq_msg_data(&rid), in->rid_len);
        memcpy(t->rid, in->rid, in->rid_len);
        t->rid_len = in->rid_len;
        zmq_msg_close(&rid);
        int more = 1;
        while (more) {
            assert_true(in->n < 8);
            zmq_msg_init(&in->parts[in->n]);
            assert_true(zmq_msg_recv(&in->parts[in->n], t->router, 0) >= 0);
            more = zmq_msg_more(&in->parts[in->n]);
            in->n++;
        }
        gbx_part_t ps[8];
        for (size_t i = 0; i < in->n; i++)
            ps[i] = (gbx_part_t){zmq_msg_data(&in->parts[i]), zmq_msg_size(&in->parts[i])};
        assert_rc(gbx_frame_decode_at(ps, in->n, GBX_FRAME_AT_NODE, &in->f, NULL), GBX_OK);
        if (gbx_frame_kind(in->f) == kind)
            return 1;
        s_in_free(in);
    }
    return 0;
}

/*  Sends part 1 BUF (freed) and PAYLOAD to the client's routing id. */
static void s_node_send(s_t *t, uint8_t *buf, size_t len, const uint8_t *payload, size_t plen)
{
    assert_true(zmq_send(t->router, t->rid, t->rid_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(t->router, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(t->router, buf, len, plen ? ZMQ_SNDMORE : 0) >= 0);
    if (plen)
        assert_true(zmq_send(t->router, payload, plen, 0) >= 0);
    free(buf);
}

static int s_setup(void **state)
{
    assert_true(sodium_init() >= 0);
    s_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_rc(gbx_identity_generate("demo-1", &t->node), GBX_OK);
    assert_rc(gbx_identity_generate("hk.cr", &t->me), GBX_OK);
    assert_rc(gbx_identity_generate("gd.qh-amr", &t->qh), GBX_OK);
    assert_rc(gbx_identity_generate("hk.ehealth", &t->eh), GBX_OK);
    t->peers[0] = *gbx_identity_public(t->me);
    t->peers[1] = *gbx_identity_public(t->qh);
    t->peers[2] = *gbx_identity_public(t->eh);
    t->ctx = zmq_ctx_new();
    snprintf(t->endpoint, sizeof t->endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    s_bind(t);
    gbx_client_opts_t o = {.endpoint = t->endpoint,
                           .identity = t->me,
                           .node = gbx_identity_public(t->node),
                           .peer = s_peer,
                           .peer_arg = t,
                           .credit_messages = 10,
                           .credit_bytes = 1u << 20,
                           .heartbeat_ivl_ms = 300,
                           .log = s_logline,
                           .log_arg = t};
    assert_rc(gbx_client_new(&o, &t->c), GBX_OK);
    *state = t;
    return 0;
}

static int s_teardown(void **state)
{
    s_t *t = *state;
    gbx_client_destroy(&t->c);
    for (size_t i = 0; i < t->nev; i++)
        gbx_event_clear(&t->evs[i]);
    zmq_close(t->router);
    zmq_ctx_term(t->ctx);
    gbx_identity_destroy(&t->node);
    gbx_identity_destroy(&t->me);
    gbx_identity_destroy(&t->qh);
    gbx_identity_destroy(&t->eh);
    free(t);
    return 0;
}

/*  The header an integrator fills. */
static void s_header(gbx_header_t *h, const char *to)
{
    gbx_header_init(h);
    h->to_agency = (char *)to;
    h->service_code = "HK-CR-COEXTRACT";
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = "TEST";
}

/*  A message from SIGNER (gd.qh-amr) to TO sealed to TO_PUB: envelope and
    sealed payload, as a sending adapter makes them. */
static void s_foreign(const gbx_identity_t *signer, const char *to, const gbx_pubid_t *to_pub,
                      const char *text, gbx_envelope_t **env, uint8_t **sealed, size_t *slen)
{
    gbx_header_t h;
    s_header(&h, to);
    uint8_t id[GBX_MSG_ID_BYTES], hash[GBX_HASH_BYTES];
    gbx_message_id_new(id);
    h.message_id.data = id;
    h.message_id.len = GBX_MSG_ID_BYTES;
    h.from_agency = (char *)gbx_identity_public(signer)->id;
    h.created_at_ms = 1790000000000ull;
    h.expires_at_ms = h.created_at_ms + 3600000;
    h.payload_length = strlen(text);
    gbx_binding_t b = {id, h.from_agency, h.to_agency};
    assert_rc(gbx_payload_seal(to_pub->box_pk, &b, (const uint8_t *)text, strlen(text), sealed,
                               slen, hash),
              GBX_OK);
    h.payload_hash.data = hash;
    h.payload_hash.len = GBX_HASH_BYTES;
    assert_rc(gbx_envelope_sign(signer, &h, env), GBX_OK);
}

static void s_connected(s_t *t)
{
    s_in_t in;
    assert_true(s_node_expect(t, GBX_FRAME_CREDIT, 5000, &in));
    s_in_free(&in);
}

/* ------------------------------------------------------------------ tests */

static void test_credit_on_connect(void **state)
{
    s_t *t = *state;
    s_in_t in;
    assert_true(s_node_expect(t, GBX_FRAME_CREDIT, 5000, &in));
    const Gbx__V1__Credit *cr = gbx_frame_message(in.f)->credit;
    assert_int_equal(cr->messages, 10);
    assert_int_equal(cr->bytes, 1u << 20);
    s_in_free(&in);
    gbx_event_t ev;
    assert_true(s_event(t, GBX_EV_CONNECTED, 1000, &ev));
    assert_true(gbx_client_connected(t->c));
}

static void test_resend_after_restart(void **state)
{
    s_t *t = *state;
    s_connected(t);
    gbx_header_t h;
    s_header(&h, "gd.qh-amr");
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(t->c, &h, "ping?", 5, &m), GBX_OK);
    uint8_t id[GBX_MSG_ID_BYTES];
    memcpy(id, gbx_msg_id(m), sizeof id);
    uint64_t tag = 0;
    assert_rc(gbx_client_submit(t->c, &m, &tag), GBX_OK);
    assert_null(m);
    s_in_t first, again;
    assert_true(s_node_expect(t, GBX_FRAME_SUBMIT, 5000, &first));
    assert_int_equal(gbx_frame_tag(first.f), tag);
    /* the node dies without answering and comes back on the same port */
    zmq_close(t->router);
    s_bind(t);
    assert_true(s_node_expect(t, GBX_FRAME_CREDIT, 10000, &again)); /* Credit comes first */
    s_in_free(&again);
    assert_true(s_node_expect(t, GBX_FRAME_SUBMIT, 5000, &again));
    assert_int_equal(first.n, again.n);
    for (size_t i = 0; i < first.n; i++) {
        assert_int_equal(zmq_msg_size(&first.parts[i]), zmq_msg_size(&again.parts[i]));
        assert_memory_equal(zmq_msg_data(&first.parts[i]), zmq_msg_data(&again.parts[i]),
                            zmq_msg_size(&first.parts[i]));
    }
    /* a signed receipt for it */
    uint8_t hh[GBX_HASH_BYTES], ph[GBX_HASH_BYTES] = {0};
    gbx_envelope_header_hash(gbx_frame_envelope(again.f), hh);
    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    r.message_id = (ProtobufCBinaryData){GBX_MSG_ID_BYTES, id};
    r.header_hash = (ProtobufCBinaryData){GBX_HASH_BYTES, hh};
    r.node_id = "demo-1";
    r.accepted_at_ms = 1790000000000ull;
    r.sequence = 42;
    r.status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r.rule_id = "allow-all";
    r.policy_hash = (ProtobufCBinaryData){GBX_HASH_BYTES, ph};
    uint8_t *rb = NULL, *buf = NULL;
    size_t rlen = 0, len = 0;
    assert_rc(gbx_receipt_sign(t->node, &r, &rb, &rlen), GBX_OK);
    assert_rc(gbx_frame_accepted(tag, rb, rlen, 0, &buf, &len), GBX_OK);
    s_node_send(t, buf, len, NULL, 0);
    gbx_event_t ev;
    assert_true(s_event(t, GBX_EV_ACCEPTED, 5000, &ev));
    assert_int_equal(ev.tag, tag);
    assert_memory_equal(ev.message_id, id, GBX_MSG_ID_BYTES);
    assert_int_equal(ev.sequence, 42);
    assert_int_equal(ev.receipt_len, rlen);
    assert_memory_equal(ev.receipt, rb, rlen);
    assert_int_equal(gbx_client_pending(t->c), 0);
    gbx_event_clear(&ev);
    free(rb);
    s_in_free(&first);
    s_in_free(&again);
}

static void test_ping_pong(void **state)
{
    s_t *t = *state;
    s_connected(t);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_rc(gbx_frame_ping(77, 99, &buf, &len), GBX_OK);
    s_node_send(t, buf, len, NULL, 0);
    s_in_t in;
    assert_true(s_node_expect(t, GBX_FRAME_PONG, 2000, &in));
    assert_int_equal(gbx_frame_tag(in.f), 77);
    assert_int_equal(gbx_frame_message(in.f)->pong->nonce, 99);
    s_in_free(&in);
    /* idle: the client pings within its 300 ms heartbeat */
    assert_true(s_node_expect(t, GBX_FRAME_PING, 1500, &in));
    s_in_free(&in);
}

static void s_deliver(s_t *t, uint64_t delivery_id, const gbx_envelope_t *env,
                      const uint8_t *sealed, size_t slen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_rc(gbx_frame_deliver(delivery_id, 1, env, &buf, &len), GBX_OK);
    s_node_send(t, buf, len, sealed, slen);
}

static void test_deliver_ack_dedupe(void **state)
{
    s_t *t = *state;
    s_connected(t);
    gbx_envelope_t *env = NULL;
    uint8_t *sealed = NULL;
    size_t slen = 0;
    s_foreign(t->qh, "hk.cr", &t->peers[0], "company 2875113", &env, &sealed, &slen);
    s_deliver(t, 7001, env, sealed, slen);
    gbx_event_t ev;
    assert_true(s_event(t, GBX_EV_DELIVERY, 5000, &ev));
    assert_int_equal(ev.delivery->delivery_id, 7001);
    assert_int_equal(ev.delivery->len, 15);
    assert_memory_equal(ev.delivery->data, "company 2875113", 15);
    assert_string_equal(ev.delivery->header->from_agency, "gd.qh-amr");
    assert_rc(gbx_client_ack(t->c, 7001), GBX_OK);
    assert_rc(gbx_client_ack(t->c, 7001), GBX_E_ARG); /* once */
    gbx_event_clear(&ev);
    s_in_t in;
    assert_true(s_node_expect(t, GBX_FRAME_ACK, 2000, &in));
    const Gbx__V1__Ack *a = gbx_frame_message(in.f)->ack;
    assert_int_equal(a->n_delivery_ids, 1);
    assert_int_equal(a->delivery_ids[0], 7001);
    s_in_free(&in);
    assert_true(s_node_expect(t, GBX_FRAME_CREDIT, 2000, &in));
    assert_int_equal(gbx_frame_message(in.f)->credit->messages, 1);
    assert_int_equal(gbx_frame_message(in.f)->credit->bytes, slen);
    s_in_free(&in);
    /* redelivered (the ack was lost, say): acked again, not surfaced */
    s_deliver(t, 7002, env, sealed, slen);
    assert_true(s_node_expect(t, GBX_FRAME_ACK, 2000, &in));
    a = gbx_frame_message(in.f)->ack;
    assert_int_equal(a->n_delivery_ids, 1);
    assert_int_equal(a->delivery_ids[0], 7002);
    s_in_free(&in);
    assert_false(s_event(t, GBX_EV_DELIVERY, 200, &ev));
    assert_non_null(strstr(t->log, "GBX-CLI-DUPLICATE delivery=7002"));
    gbx_envelope_destroy(&env);
    free(sealed);
}

static void test_deliver_refused(void **state)
{
    s_t *t = *state;
    s_connected(t);
    gbx_envelope_t *env = NULL;
    uint8_t *sealed = NULL, *buf = NULL;
    size_t slen = 0, len = 0;
    /* 1: a flipped signature bit */
    s_foreign(t->qh, "hk.cr", &t->peers[0], "one", &env, &sealed, &slen);
    assert_rc(gbx_frame_deliver(8001, 1, env, &buf, &len), GBX_OK);
    const ProtobufCBinaryData *sig = &gbx_envelope_message(env)->signature;
    uint8_t *at = memmem(buf, len, sig->data, sig->len);
    assert_non_null(at);
    at[10] ^= 1;
    s_node_send(t, buf, len, sealed, slen);
    gbx_envelope_destroy(&env);
    free(sealed);
    /* 2: for hk.ehealth, properly signed and sealed to hk.ehealth */
    s_foreign(t->qh, "hk.ehealth", &t->peers[2], "two", &env, &sealed, &slen);
    s_deliver(t, 8002, env, sealed, slen);
    gbx_envelope_destroy(&env);
    free(sealed);
    /* 3: a flipped payload bit */
    s_foreign(t->qh, "hk.cr", &t->peers[0], "three", &env, &sealed, &slen);
    sealed[slen - 1] ^= 0x80;
    s_deliver(t, 8003, env, sealed, slen);
    gbx_envelope_destroy(&env);
    free(sealed);
    /* credit comes back for the three; nothing is acked or surfaced */
    uint32_t credited = 0;
    uint64_t end = s_ms() + 3000;
    s_in_t in;
    while (credited < 3 && s_ms() < end) {
        if (!s_node_expect(t, GBX_FRAME_CREDIT, 200, &in))
            continue;
        credited += gbx_frame_message(in.f)->credit->messages;
        s_in_free(&in);
    }
    assert_int_equal(credited, 3);
    assert_false(s_node_expect(t, GBX_FRAME_ACK, 300, &in));
    gbx_event_t ev;
    assert_false(s_event(t, GBX_EV_DELIVERY, 100, &ev));
    assert_non_null(strstr(t->log, "delivery=8001 from=gd.qh-amr"));
    assert_non_null(strstr(t->log, "reason=BAD_SIGNATURE"));
    assert_non_null(strstr(t->log, "reason=UNKNOWN_DESTINATION"));
    assert_non_null(strstr(t->log, "reason=PAYLOAD_HASH_MISMATCH"));
}

static void test_notice(void **state)
{
    s_t *t = *state;
    s_connected(t);
    uint8_t id[GBX_MSG_ID_BYTES], *buf = NULL;
    size_t len = 0;
    gbx_message_id_new(id);
    assert_rc(gbx_frame_notice(id, GBX_E_DEAD_LETTERED, "5 attempts", &buf, &len), GBX_OK);
    s_node_send(t, buf, len, NULL, 0);
    gbx_event_t ev;
    assert_true(s_event(t, GBX_EV_NOTICE, 2000, &ev));
    assert_rc(ev.reason, GBX_E_DEAD_LETTERED);
    assert_memory_equal(ev.message_id, id, GBX_MSG_ID_BYTES);
    assert_string_equal(ev.detail, "5 attempts");
    gbx_event_clear(&ev);
}

static void test_rejected(void **state)
{
    s_t *t = *state;
    s_connected(t);
    gbx_header_t h;
    s_header(&h, "gd.qh-amr");
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(t->c, &h, "x", 1, &m), GBX_OK);
    uint8_t id[GBX_MSG_ID_BYTES];
    memcpy(id, gbx_msg_id(m), sizeof id);
    uint64_t tag = 0;
    assert_rc(gbx_client_submit(t->c, &m, &tag), GBX_OK);
    s_in_t in;
    assert_true(s_node_expect(t, GBX_FRAME_SUBMIT, 5000, &in));
    s_in_free(&in);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_rc(
        gbx_frame_rejected(tag, id, sizeof id, GBX_E_RETRY_LATER, "queue full", 500, &buf, &len),
        GBX_OK);
    s_node_send(t, buf, len, NULL, 0);
    gbx_event_t ev;
    assert_true(s_event(t, GBX_EV_REJECTED, 2000, &ev));
    assert_int_equal(ev.tag, tag);
    assert_rc(ev.reason, GBX_E_RETRY_LATER);
    assert_int_equal(ev.retry_after_ms, 500);
    assert_string_equal(ev.detail, "queue full");
    assert_int_equal(gbx_client_pending(t->c), 0);
    gbx_event_clear(&ev);
}

static void test_send_timeout(void **state)
{
    s_t *t = *state;
    gbx_header_t h;
    s_header(&h, "gd.qh-amr");
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(t->c, &h, "x", 1, &m), GBX_OK);
    gbx_event_t res;
    uint64_t t0 = s_ms();
    errno = 0;
    assert_rc(gbx_client_send(t->c, m, 300, &res), GBX_E_IO);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(s_ms() - t0 >= 290 && s_ms() - t0 < 3000);
    assert_int_equal(res.kind, GBX_EV_NONE);
    assert_int_equal(gbx_client_pending(t->c), 0);
    gbx_msg_destroy(&m);
    /* unknown recipients are refused before anything is sealed */
    s_header(&h, "gd.nobody");
    assert_rc(gbx_client_msg(t->c, &h, "x", 1, &m), GBX_E_UNKNOWN_DESTINATION);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_credit_on_connect, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_resend_after_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ping_pong, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_deliver_ack_dedupe, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_deliver_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_notice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_send_timeout, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
