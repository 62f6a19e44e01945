/*  test_gbxd_live: the real gbxd binary (GBXD_PATH) as a child process, with
    real RocksDB, real ZeroMQ over TCP loopback and CurveZMQ.

    Setup writes the demo configuration (gbx_config_write_default) into a
    fresh directory, moves listen.adapter to a free loopback port (bound to
    127.0.0.1:0 by the test, read back, closed: a small race, accepted), and
    starts gbxd -c on it. The adapter is gd.qh-amr with its keys from
    DIR/keys; the server key comes from DIR/keys/demo-1.pub.

    The tests run in order against the same broker (later ones use the
    receipt of the first):
      accept        a signed, sealed Submit to hk.cr: Accepted, the receipt
                    verifies with the node's keys and speaks of the envelope
      duplicate     the same bytes again: Accepted duplicate, same receipt bytes
      spoof         an envelope of hk.cr sent on gd.qh-amr's connection:
                    Rejected SENDER_MISMATCH
      unknown_key   a CURVE key no registry knows: no answer within 500 ms
      too_many_parts  a Submit in 5003 parts (cap 4096): Rejected MALFORMED,
                    and the broker answers the next message
      restart       SIGKILL, restart on the same data dir, resubmit: duplicate
                    with the same receipt (dedupe survives the crash)
      sigterm       SIGTERM: exit status 0 within 5 s
    Every wait is bounded; group teardown SIGKILLs the child if it lives. */
#include "tu_cmocka.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "gbx/payload.h"
#include "gbx/receipt.h"
#include "tb_gbxd.h"

#ifndef GBXD_PATH
#error "GBXD_PATH must be defined (tests/broker/CMakeLists.txt)"
#endif

#define S_NODE "demo-1"
#define S_FROM "gd.qh-amr"
#define S_TO   "hk.cr"
#define S_TAG  7u

typedef struct {
    char *dir;
    tb_gbxd_t gd; /* gbxd, its stderr the test's */
    void *ctx;
    void *dealer;
    gbx_identity_t *me;   /* gd.qh-amr */
    gbx_identity_t *hkcr; /* hk.cr, for the spoof */
    gbx_pubid_t node;     /* demo-1 */
    gbx_pubid_t to;       /* hk.cr */
    gbx_pubid_t qh;       /* gd.qh-amr */
    uint8_t *frame;       /* the message of test accept: part 1 */
    size_t frame_len;
    uint8_t *sealed; /* and its payload */
    size_t sealed_len;
    gbx_envelope_t *env;
    uint8_t *receipt; /* the packed SignedReceipt it got */
    size_t receipt_len;
} s_live_t;

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  A CURVE DEALER as IDN (public/secret curve keys) to the node. */
static void *s_dealer(s_live_t *lv, const uint8_t *pk, const uint8_t *sk)
{
    void *s = zmq_socket(lv->ctx, ZMQ_DEALER);
    assert_non_null(s);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, lv->node.curve_pk, GBX_KEY_BYTES), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pk, GBX_KEY_BYTES), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sk, GBX_KEY_BYTES), 0);
    assert_int_equal(zmq_connect(s, lv->gd.endpoint), 0);
    return s;
}

static void s_send(void *s, const uint8_t *frame, size_t flen, const uint8_t *sealed, size_t slen)
{
    assert_true(zmq_send(s, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(s, frame, flen, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(s, sealed, slen, 0) >= 0);
}

/*  The answer's Frame (caller frees), or NULL when nothing came within MS. */
static Gbx__V1__Frame *s_recv(void *s, int ms)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return NULL;
    zmq_msg_t p0, p1;
    zmq_msg_init(&p0);
    zmq_msg_init(&p1);
    assert_true(zmq_msg_recv(&p0, s, 0) >= 0);
    assert_int_equal(zmq_msg_size(&p0), GBX_FRAME_PROTOCOL_LEN);
    assert_memory_equal(zmq_msg_data(&p0), GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN);
    assert_true(zmq_msg_more(&p0));
    assert_true(zmq_msg_recv(&p1, s, 0) >= 0);
    assert_false(zmq_msg_more(&p1));
    Gbx__V1__Frame *f = gbx__v1__frame__unpack(NULL, zmq_msg_size(&p1), zmq_msg_data(&p1));
    assert_non_null(f);
    zmq_msg_close(&p0);
    zmq_msg_close(&p1);
    return f;
}

/*  A signed envelope from SIGNER to TO_ID (box key TO_BOX) with a fresh
    message id and times around now; part 1 and the sealed payload. */
static void s_make(const gbx_identity_t *signer, const char *to_id, const uint8_t *to_box,
                   gbx_envelope_t **env, uint8_t **frame, size_t *flen, uint8_t **sealed,
                   size_t *slen)
{
    tu_header_t t;
    tu_header_fixture(&t, 1);
    randombytes_buf(t.message_id, sizeof t.message_id);
    char from[GBX_ID_MAX + 1], to[GBX_ID_MAX + 1];
    snprintf(from, sizeof from, "%s", gbx_identity_public(signer)->id);
    snprintf(to, sizeof to, "%s", to_id);
    t.h.from_agency = from;
    t.h.to_agency = to;
    uint64_t now = s_now_ms();
    t.h.created_at_ms = now - 1000;
    t.h.expires_at_ms = now + 3600u * 1000u;
    uint8_t plain[1024];
    memset(plain, 0x5a, sizeof plain);
    t.h.payload_length = sizeof plain;
    gbx_binding_t b = {t.message_id, t.h.from_agency, t.h.to_agency};
    assert_rc(gbx_payload_seal(to_box, &b, plain, sizeof plain, sealed, slen, t.payload_hash),
              GBX_OK);
    assert_rc(gbx_envelope_sign(signer, &t.h, env), GBX_OK);
    assert_rc(gbx_frame_submit(S_TAG, *env, frame, flen), GBX_OK);
}

static uint8_t *s_pack_receipt(const Gbx__V1__SignedReceipt *sr, size_t *len)
{
    *len = gbx__v1__signed_receipt__get_packed_size(sr);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    gbx__v1__signed_receipt__pack(sr, b);
    return b;
}

/*  Checks F is Accepted(DUP) with a receipt that verifies and speaks of the
    test's envelope; returns the packed receipt. */
static uint8_t *s_expect_accepted(s_live_t *lv, const Gbx__V1__Frame *f, int dup, size_t *len)
{
    assert_non_null(f);
    if (f->body_case == GBX__V1__FRAME__BODY_REJECTED)
        fail_msg("Rejected %s", gbx_err_name((gbx_err_t)f->rejected->reason));
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    assert_int_equal(f->tag, S_TAG);
    assert_int_equal(!!f->accepted->duplicate, dup);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify(f->accepted->receipt, &lv->node, &r), GBX_OK);
    assert_rc(gbx_receipt_check(r, lv->env, S_NODE), GBX_OK);
    assert_int_equal(r->status, GBX__V1__RECEIPT_STATUS__ACCEPTED);
    gbx__v1__receipt__free_unpacked(r, NULL);
    return s_pack_receipt(f->accepted->receipt, len);
}

/* ------------------------------------------------------------------ setup */

static int s_group_setup(void **state)
{
    assert_true(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    s_live_t *lv = calloc(1, sizeof *lv);
    assert_non_null(lv);
    *state = lv;
    lv->dir = tu_tmpdir();
    char *home = NULL;
    assert_true(asprintf(&home, "%s/home", lv->dir) > 0);
    tb_gbxd_home(&lv->gd, GBXD_PATH, home, NULL);
    assert_int_equal(tu_policy_open(home), 0); /* delivery mechanics, not policy */

    char *p = NULL;
    assert_true(asprintf(&p, "%s/keys/%s.secret", home, S_FROM) > 0);
    assert_rc(gbx_identity_load(p, &lv->me), GBX_OK);
    free(p);
    assert_true(asprintf(&p, "%s/keys/%s.secret", home, S_TO) > 0);
    assert_rc(gbx_identity_load(p, &lv->hkcr), GBX_OK);
    free(p);
    assert_true(asprintf(&p, "%s/keys/%s.pub", home, S_NODE) > 0);
    assert_rc(gbx_pubid_load(p, &lv->node), GBX_OK);
    free(p);
    lv->to = *gbx_identity_public(lv->hkcr);
    lv->qh = *gbx_identity_public(lv->me);
    free(home);

    lv->ctx = zmq_ctx_new();
    assert_non_null(lv->ctx);
    tb_gbxd_start(&lv->gd, 5000);
    lv->dealer = s_dealer(lv, lv->qh.curve_pk, gbx_identity_curve_sk(lv->me));
    return 0;
}

static int s_group_teardown(void **state)
{
    s_live_t *lv = *state;
    if (!lv)
        return 0;
    tb_gbxd_kill(&lv->gd);
    if (lv->dealer)
        zmq_close(lv->dealer);
    if (lv->ctx)
        zmq_ctx_term(lv->ctx);
    gbx_identity_destroy(&lv->me);
    gbx_identity_destroy(&lv->hkcr);
    gbx_envelope_destroy(&lv->env);
    free(lv->frame);
    free(lv->sealed);
    free(lv->receipt);
    tb_gbxd_free(&lv->gd);
    if (lv->dir)
        tu_rmtree_path(lv->dir);
    free(lv->dir);
    free(lv);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_accept(void **state)
{
    s_live_t *lv = *state;
    s_make(lv->me, S_TO, lv->to.box_pk, &lv->env, &lv->frame, &lv->frame_len, &lv->sealed,
           &lv->sealed_len);
    s_send(lv->dealer, lv->frame, lv->frame_len, lv->sealed, lv->sealed_len);
    Gbx__V1__Frame *f = s_recv(lv->dealer, 5000);
    lv->receipt = s_expect_accepted(lv, f, 0, &lv->receipt_len);
    gbx__v1__frame__free_unpacked(f, NULL);
}

static void test_duplicate(void **state)
{
    s_live_t *lv = *state;
    assert_non_null(lv->receipt);
    s_send(lv->dealer, lv->frame, lv->frame_len, lv->sealed, lv->sealed_len);
    Gbx__V1__Frame *f = s_recv(lv->dealer, 5000);
    size_t len = 0;
    uint8_t *r = s_expect_accepted(lv, f, 1, &len);
    assert_int_equal(len, lv->receipt_len);
    assert_memory_equal(r, lv->receipt, len);
    free(r);
    gbx__v1__frame__free_unpacked(f, NULL);
}

static void test_spoof(void **state)
{
    s_live_t *lv = *state;
    gbx_envelope_t *env = NULL;
    uint8_t *frame = NULL, *sealed = NULL;
    size_t flen = 0, slen = 0;
    /* hk.cr's own signature, but on gd.qh-amr's authenticated connection */
    s_make(lv->hkcr, S_FROM, lv->qh.box_pk, &env, &frame, &flen, &sealed, &slen);
    s_send(lv->dealer, frame, flen, sealed, slen);
    Gbx__V1__Frame *f = s_recv(lv->dealer, 5000);
    assert_non_null(f);
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_REJECTED);
    assert_rc((gbx_err_t)f->rejected->reason, GBX_E_SENDER_MISMATCH);
    assert_int_equal(f->tag, S_TAG);
    gbx__v1__frame__free_unpacked(f, NULL);
    gbx_envelope_destroy(&env);
    free(frame);
    free(sealed);
}

static void test_unknown_key(void **state)
{
    s_live_t *lv = *state;
    gbx_identity_t *stranger = NULL;
    assert_rc(gbx_identity_generate("gd.stranger", &stranger), GBX_OK);
    void *s =
        s_dealer(lv, gbx_identity_public(stranger)->curve_pk, gbx_identity_curve_sk(stranger));
    /* the bytes of a valid Submit; they must never reach the ingress */
    s_send(s, lv->frame, lv->frame_len, lv->sealed, lv->sealed_len);
    Gbx__V1__Frame *f = s_recv(s, 500);
    assert_null(f);
    zmq_close(s);
    gbx_identity_destroy(&stranger);
}

static void test_too_many_parts(void **state)
{
    s_live_t *lv = *state;
    assert_true(zmq_send(lv->dealer, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(lv->dealer, lv->frame, lv->frame_len, ZMQ_SNDMORE) >= 0);
    for (int i = 0; i < 5000; i++)
        assert_true(zmq_send(lv->dealer, "", 0, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(lv->dealer, lv->sealed, lv->sealed_len, 0) >= 0);
    Gbx__V1__Frame *f = s_recv(lv->dealer, 5000);
    assert_non_null(f);
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_REJECTED);
    assert_rc((gbx_err_t)f->rejected->reason, GBX_E_MALFORMED);
    gbx__v1__frame__free_unpacked(f, NULL);
    /* and the broker still answers */
    s_send(lv->dealer, lv->frame, lv->frame_len, lv->sealed, lv->sealed_len);
    f = s_recv(lv->dealer, 5000);
    size_t len = 0;
    free(s_expect_accepted(lv, f, 1, &len));
    gbx__v1__frame__free_unpacked(f, NULL);
}

/*  One part larger than any valid message: libzmq drops that connection
    (ZMQ_MAXMSGSIZE) before gbxd buffers it, and gbxd goes on serving. */
static void test_oversized_part(void **state)
{
    s_live_t *lv = *state;
    size_t big = 17u << 20; /* above the demo config's 16 MiB payload limit */
    uint8_t *junk = calloc(1, big);
    assert_non_null(junk);
    void *s = s_dealer(lv, lv->qh.curve_pk, gbx_identity_curve_sk(lv->me));
    s_send(s, lv->frame, lv->frame_len, junk, big);
    Gbx__V1__Frame *f = s_recv(s, 1500);
    assert_null(f);
    zmq_close(s);
    free(junk);
    /* the established client is still answered */
    s_send(lv->dealer, lv->frame, lv->frame_len, lv->sealed, lv->sealed_len);
    f = s_recv(lv->dealer, 5000);
    size_t len = 0;
    free(s_expect_accepted(lv, f, 1, &len));
    gbx__v1__frame__free_unpacked(f, NULL);
}

static void test_restart(void **state)
{
    s_live_t *lv = *state;
    assert_non_null(lv->receipt);
    int st = tb_gbxd_stop(&lv->gd, SIGKILL, 5000);
    assert_true(st != -1 && WIFSIGNALED(st));
    tb_gbxd_start(&lv->gd, 5000);
    zmq_close(lv->dealer);
    lv->dealer = s_dealer(lv, lv->qh.curve_pk, gbx_identity_curve_sk(lv->me));
    s_send(lv->dealer, lv->frame, lv->frame_len, lv->sealed, lv->sealed_len);
    Gbx__V1__Frame *f = s_recv(lv->dealer, 5000);
    size_t len = 0;
    uint8_t *r = s_expect_accepted(lv, f, 1, &len);
    assert_int_equal(len, lv->receipt_len);
    assert_memory_equal(r, lv->receipt, len);
    free(r);
    gbx__v1__frame__free_unpacked(f, NULL);
}

static void test_sigterm(void **state)
{
    s_live_t *lv = *state;
    assert_true(lv->gd.pid > 0);
    tb_gbxd_term(&lv->gd, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept),         cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_spoof),          cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_too_many_parts), cmocka_unit_test(test_oversized_part),
        cmocka_unit_test(test_restart),        cmocka_unit_test(test_sigterm),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
