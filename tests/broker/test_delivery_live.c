/*  test_delivery_live: delivery at a real gbxd (GBXD_PATH, a child process)
    over CurveZMQ on loopback, with libgbx clients and, where the library
    would hide what is under test (it drops a redelivery of a message the
    application holds), raw DEALER sessions that speak the frames of
    proto/spec/5-adapter.md themselves. Sections 5 to 9 of that spec.

    Setup writes the demo configuration (gbx_config_write_default: node
    demo-1 serves every agency) into a fresh directory and moves
    listen.adapter to a free loopback port; the policy is tu_policy_open's
    one rule (delivery, not policy, is under test here) and every agency of
    s_agencies gets its test service (tu_config_test_services), which the
    messages use unless a test names a service. Each test names the limits it
    needs; gbxd is stopped (SIGTERM) and restarted on the same data dir when
    they change. gbxd's stderr goes to DIR/gbxd.log, which some tests read.

      A: ack_timeout 300 ms, backoff 50 ms, max_attempts 3, session_timeout
         10 s, max_payload 64 KiB, max_ttl 2 h, queue_max_messages 3
      D: ack_timeout 300 ms, backoff 50 ms, max_attempts 2, session_timeout 10 s
         (a stale session outlives the test)
      E: ack_timeout 10 s, session_timeout 2 s (a session end, not an ack
         timeout, sends the message back)

    A libgbx client grants credit once per connection, so a session the
    node ends for silence gets no deliveries until the client reconnects;
    every client is pumped (S_PING_MS heartbeats) and session timeouts are
    long except where a session end is what is tested. Under valgrind the
    clients are slow: the waits (S_WAIT_MS) are generous.
      C: the defaults (ack_timeout 30 s)

      request_response  (A) hk.kiosk -> gd.tax REQUEST; gd.tax gets it
                        verified, replies; hk.kiosk gets the RESPONSE with
                        correlation_id = the request's id; both ack and
                        gbxd logs no ack timeout for either
      ack_timeout       (A) raw receiver does not ack: attempt 2 after the
                        ack timeout with a new delivery id; an Ack of the
                        FIRST id acks the message (7.3): no attempt 3, no
                        notice to the sender
      disconnect        (E) receiver A destroyed holding a delivery; when
                        SESSION_TIMEOUT (2 s) ends its session, a new receiver B
                        of the same agency gets it, attempt 2
      expiry            (A) 1.5 s TTL, no receiver: Notice EXPIRED to the
                        sender, not before the expiry; a receiver that
                        connects afterwards gets nothing
      rejects           (A) raw Submits: replay (duplicate, same receipt),
                        bad signature, tampered payload, expired, TTL too
                        long, payload too large, malformed part 1, unknown
                        destination; each gets its reason and gbxd goes on
                        answering (the replay again after each)
      queue_full        (A) no receiver: 3 accepted, the 4th RETRY_LATER
                        with retry_after_ms > 0; once a receiver acked one,
                        the 4th is accepted
      dead_letter       (D) raw receiver never acks: 2 deliveries, Notice
                        DEAD_LETTERED to the sender, no third delivery
      notice_live_session  (D) the sender has a stale session (connection
                        gone, node not yet aware) and a live one: the
                        Notice reaches the live one
      stale_session_attempt  (D) receiver A destroyed holding a delivery, B
                        connected: the ack-timeout redelivery fails on A's
                        stale session, B gets it with attempt 2 (not 3, and
                        not dead-lettered)
      restart_once      (C) N accepted (200; 20 with GBX_TEST_QUICK); a raw
                        receiver gets 3N/4 and acks N/2; SIGTERM, restart;
                        a fresh receiver gets exactly the other N/2 (attempt
                        2 for those delivered before, 1 for the others)

    Every wait polls with a deadline; the whole run takes about 20 s.
    Teardown SIGKILLs the child if it lives. */
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
#include "gbx/client.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "gbx/payload.h"
#include "gbx/receipt.h"
#include "tb_gbxd.h"

#ifndef GBXD_PATH
#error "GBXD_PATH must be defined (tests/broker/CMakeLists.txt)"
#endif

#define S_NODE    "demo-1"
#define S_MAX_CLI 4
#define S_PING_MS 200 /* raw sessions and libgbx heartbeats: well under 1 s */
#define S_WAIT_MS 10000
#define S_ACK_MS  300
#define S_BACKOFF 50

#define S_START_MS 5000  /* gbxd listening */
#define S_STOP_MS  10000 /* gbxd's clean exit after SIGTERM */

static const char s_limits_a[] = "  max_payload_bytes: 64KiB\n"
                                 "  max_ttl_ms: 2h\n"
                                 "  ack_timeout_ms: 300ms\n"
                                 "  redelivery_backoff_ms: 50ms\n"
                                 "  max_attempts: 3\n"
                                 "  session_timeout_ms: 10s\n"
                                 "  queue_max_messages: 3\n";
static const char s_limits_d[] = "  ack_timeout_ms: 300ms\n"
                                 "  redelivery_backoff_ms: 50ms\n"
                                 "  max_attempts: 2\n"
                                 "  session_timeout_ms: 10s\n";
static const char s_limits_e[] = "  ack_timeout_ms: 10s\n"
                                 "  redelivery_backoff_ms: 50ms\n"
                                 "  max_attempts: 3\n"
                                 "  session_timeout_ms: 2s\n";
static const char s_limits_c[] = "  max_payload_bytes: 16MiB\n";

/*  One adapter session: a libgbx client (c) or a raw DEALER (raw), with
    what arrived and was not taken yet. */
typedef struct {
    char id[GBX_ID_MAX + 1];
    gbx_client_t *c;
    void *raw;
    gbx_event_t *evs; /* libgbx */
    size_t nev, capev;
    Gbx__V1__Frame **frs; /* raw */
    size_t nfr, capfr;
    uint64_t next_ping;
} s_cli_t;

typedef struct {
    char *dir;
    char *home;
    tb_gbxd_t gd;       /* its stderr in DIR/gbxd.log */
    const char *limits; /* of the running gbxd */
    void *ctx;
    gbx_config_t *config; /* the registry, for keys */
    gbx_pubid_t node;
    gbx_identity_t *ids[8];
    size_t nids;
    s_cli_t *cli[S_MAX_CLI];
} s_lv_t;

/* ---------------------------------------------------------------- helpers */

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int s_quick(void)
{
    const char *q = getenv("GBX_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

static void s_hex16(const uint8_t *id, char out[2 * GBX_MSG_ID_BYTES + 1])
{
    sodium_bin2hex(out, 2 * GBX_MSG_ID_BYTES + 1, id, GBX_MSG_ID_BYTES);
}

/* ------------------------------------------------------------------- gbxd */

/*  gbxd running with LIMITS (the body of the limits: section). */
static void s_use(s_lv_t *lv, const char *limits)
{
    if (lv->gd.pid > 0 && lv->limits == limits)
        return;
    tb_gbxd_term(&lv->gd, S_STOP_MS);
    char *with = NULL;
    assert_true(asprintf(&with, "limits:\n%s", limits) > 0);
    tb_gbxd_write(&lv->gd, "limits:\n  max_payload_bytes: 16MiB\n", with);
    free(with);
    lv->limits = limits;
    tb_gbxd_start(&lv->gd, S_START_MS);
}

/* ---------------------------------------------------------------- clients */

static const gbx_identity_t *s_idn(s_lv_t *lv, const char *id)
{
    for (size_t i = 0; i < lv->nids; i++)
        if (strcmp(gbx_identity_public(lv->ids[i])->id, id) == 0)
            return lv->ids[i];
    fail_msg("no identity %s", id);
    return NULL;
}

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    s_lv_t *lv = arg;
    const gbx_agency_t *a = gbx_registry_agency(gbx_config_registry(lv->config), id);
    return a ? &a->pub : NULL;
}

static s_cli_t *s_slot(s_lv_t *lv, const char *id)
{
    for (int i = 0; i < S_MAX_CLI; i++)
        if (!lv->cli[i]) {
            lv->cli[i] = calloc(1, sizeof *lv->cli[i]);
            assert_non_null(lv->cli[i]);
            snprintf(lv->cli[i]->id, sizeof lv->cli[i]->id, "%s", id);
            return lv->cli[i];
        }
    fail_msg("too many clients");
    return NULL;
}

/*  A libgbx client of agency ID (default credit). */
static s_cli_t *s_client(s_lv_t *lv, const char *id)
{
    s_cli_t *k = s_slot(lv, id);
    gbx_client_opts_t o = {.endpoint = lv->gd.endpoint,
                           .identity = s_idn(lv, id),
                           .node = &lv->node,
                           .peer = s_peer,
                           .peer_arg = lv,
                           .heartbeat_ivl_ms = S_PING_MS};
    /* Its own ZeroMQ context: libgbx names its monitor endpoint after the
       client's address, so with a shared context a client allocated where a
       destroyed one was fails (EADDRINUSE) while the old endpoint is being
       torn down. */
    assert_rc(gbx_client_new(&o, &k->c), GBX_OK);
    return k;
}

static void s_raw_send(s_cli_t *k, const uint8_t *p1, size_t l1, const uint8_t *pl, size_t plen)
{
    assert_true(zmq_send(k->raw, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(k->raw, p1, l1, pl ? ZMQ_SNDMORE : 0) >= 0);
    if (pl)
        assert_true(zmq_send(k->raw, pl, plen, 0) >= 0);
}

/*  Sends a part 1 built by a gbx_frame_* call (freed here). */
static void s_raw_frame(s_cli_t *k, gbx_err_t rc, uint8_t *p1, size_t l1)
{
    assert_rc(rc, GBX_OK);
    s_raw_send(k, p1, l1, NULL, 0);
    free(p1);
}

static void s_raw_ack(s_cli_t *k, const uint64_t *ids, size_t n)
{
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    gbx_err_t rc = gbx_frame_ack(ids, n, &p1, &l1);
    s_raw_frame(k, rc, p1, l1);
}

static void s_raw_ping(s_cli_t *k, uint64_t tag, uint64_t nonce)
{
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    gbx_err_t rc = gbx_frame_ping(tag, nonce, &p1, &l1);
    s_raw_frame(k, rc, p1, l1);
}

/*  A raw CURVE DEALER as agency ID; grants CREDIT messages (and 64 MiB)
    when CREDIT > 0. */
static s_cli_t *s_raw(s_lv_t *lv, const char *id, uint32_t credit)
{
    s_cli_t *k = s_slot(lv, id);
    const gbx_identity_t *idn = s_idn(lv, id);
    k->raw = zmq_socket(lv->ctx, ZMQ_DEALER);
    assert_non_null(k->raw);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(k->raw, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(k->raw, ZMQ_CURVE_SERVERKEY, lv->node.curve_pk, GBX_KEY_BYTES),
                     0);
    assert_int_equal(zmq_setsockopt(k->raw, ZMQ_CURVE_PUBLICKEY, gbx_identity_public(idn)->curve_pk,
                                    GBX_KEY_BYTES),
                     0);
    assert_int_equal(
        zmq_setsockopt(k->raw, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(idn), GBX_KEY_BYTES), 0);
    assert_int_equal(zmq_connect(k->raw, lv->gd.endpoint), 0);
    if (credit) {
        uint8_t *p1 = NULL;
        size_t l1 = 0;
        gbx_err_t rc = gbx_frame_credit(credit, UINT64_C(64) << 20, &p1, &l1);
        s_raw_frame(k, rc, p1, l1);
    } else {
        s_raw_ping(k, 0, 1); /* opens the session */
    }
    k->next_ping = s_now_ms() + S_PING_MS;
    return k;
}

static void s_cli_free(s_lv_t *lv, s_cli_t **kp)
{
    s_cli_t *k = *kp;
    if (!k)
        return;
    for (int i = 0; i < S_MAX_CLI; i++)
        if (lv->cli[i] == k)
            lv->cli[i] = NULL;
    gbx_client_destroy(&k->c);
    if (k->raw)
        zmq_close(k->raw);
    for (size_t i = 0; i < k->nev; i++)
        gbx_event_clear(&k->evs[i]);
    free(k->evs);
    for (size_t i = 0; i < k->nfr; i++)
        gbx__v1__frame__free_unpacked(k->frs[i], NULL);
    free(k->frs);
    free(k);
    *kp = NULL;
}

static void s_free_all(s_lv_t *lv)
{
    for (int i = 0; i < S_MAX_CLI; i++) {
        s_cli_t *k = lv->cli[i];
        s_cli_free(lv, &k);
    }
}

/*  Reads every message waiting on a raw session: answers the node's Pings,
    keeps the rest. */
static void s_raw_drain(s_cli_t *k)
{
    for (;;) {
        zmq_msg_t p0, p1;
        zmq_msg_init(&p0);
        if (zmq_msg_recv(&p0, k->raw, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&p0);
            assert_int_equal(errno, EAGAIN);
            return;
        }
        assert_int_equal(zmq_msg_size(&p0), GBX_FRAME_PROTOCOL_LEN);
        assert_true(zmq_msg_more(&p0));
        zmq_msg_close(&p0);
        zmq_msg_init(&p1);
        assert_true(zmq_msg_recv(&p1, k->raw, 0) >= 0);
        Gbx__V1__Frame *f = gbx__v1__frame__unpack(NULL, zmq_msg_size(&p1), zmq_msg_data(&p1));
        assert_non_null(f);
        int more = zmq_msg_more(&p1);
        zmq_msg_close(&p1);
        while (more) { /* the payload of a Deliver: not looked at */
            zmq_msg_t px;
            zmq_msg_init(&px);
            assert_true(zmq_msg_recv(&px, k->raw, 0) >= 0);
            more = zmq_msg_more(&px);
            zmq_msg_close(&px);
        }
        if (f->body_case == GBX__V1__FRAME__BODY_PING) {
            uint8_t *b = NULL;
            size_t l = 0;
            gbx_err_t rc = gbx_frame_pong(f->tag, f->ping->nonce, &b, &l);
            s_raw_frame(k, rc, b, l);
            gbx__v1__frame__free_unpacked(f, NULL);
            continue;
        }
        if (k->nfr == k->capfr) {
            k->capfr = k->capfr ? 2 * k->capfr : 16;
            k->frs = realloc(k->frs, k->capfr * sizeof *k->frs);
            assert_non_null(k->frs);
        }
        k->frs[k->nfr++] = f;
    }
}

/*  Runs every session's protocol for MS (at least one round). */
static void s_pump(s_lv_t *lv, int ms)
{
    uint64_t end = s_now_ms() + (uint64_t)(ms > 0 ? ms : 0);
    do {
        zmq_pollitem_t items[2 * S_MAX_CLI];
        int n = 0;
        for (int i = 0; i < S_MAX_CLI; i++) {
            s_cli_t *k = lv->cli[i];
            if (!k)
                continue;
            if (k->c) {
                items[n++] = (zmq_pollitem_t){gbx_client_socket(k->c), 0, ZMQ_POLLIN, 0};
                items[n++] = (zmq_pollitem_t){gbx_client_monitor(k->c), 0, ZMQ_POLLIN, 0};
            } else {
                items[n++] = (zmq_pollitem_t){k->raw, 0, ZMQ_POLLIN, 0};
            }
        }
        uint64_t now = s_now_ms();
        long wait = now < end ? (long)(end - now) : 0;
        if (wait > 10)
            wait = 10;
        if (n)
            zmq_poll(items, n, wait);
        else
            tu_sleep_ms(wait);
        for (int i = 0; i < S_MAX_CLI; i++) {
            s_cli_t *k = lv->cli[i];
            if (!k)
                continue;
            if (k->c) {
                for (;;) {
                    gbx_event_t ev;
                    if (gbx_client_poll(k->c, 0, &ev) != GBX_OK)
                        break;
                    if (k->nev == k->capev) {
                        k->capev = k->capev ? 2 * k->capev : 16;
                        k->evs = realloc(k->evs, k->capev * sizeof *k->evs);
                        assert_non_null(k->evs);
                    }
                    k->evs[k->nev++] = ev;
                }
            } else {
                s_raw_drain(k);
                if (s_now_ms() >= k->next_ping) {
                    s_raw_ping(k, 0, s_now_ms());
                    k->next_ping = s_now_ms() + S_PING_MS;
                }
            }
        }
    } while (s_now_ms() < end);
}

/*  Takes the first event of KIND of K into *OUT, pumping for at most MS;
    0 when none came. */
static int s_take(s_lv_t *lv, s_cli_t *k, gbx_event_kind_t kind, int ms, gbx_event_t *out)
{
    uint64_t end = s_now_ms() + (uint64_t)ms;
    for (;;) {
        for (size_t i = 0; i < k->nev; i++)
            if (k->evs[i].kind == kind) {
                *out = k->evs[i];
                memmove(&k->evs[i], &k->evs[i + 1], (k->nev - i - 1) * sizeof *k->evs);
                k->nev--;
                return 1;
            }
        if (s_now_ms() >= end)
            return 0;
        s_pump(lv, 10);
    }
}

/*  The same for a raw session and a frame body; the caller frees it. */
static Gbx__V1__Frame *s_take_frame(s_lv_t *lv, s_cli_t *k, Gbx__V1__Frame__BodyCase body, int ms)
{
    uint64_t end = s_now_ms() + (uint64_t)ms;
    for (;;) {
        for (size_t i = 0; i < k->nfr; i++)
            if (k->frs[i]->body_case == body) {
                Gbx__V1__Frame *f = k->frs[i];
                memmove(&k->frs[i], &k->frs[i + 1], (k->nfr - i - 1) * sizeof *k->frs);
                k->nfr--;
                return f;
            }
        if (s_now_ms() >= end)
            return NULL;
        s_pump(lv, 10);
    }
}

static size_t s_count_ev(const s_cli_t *k, gbx_event_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < k->nev; i++)
        n += k->evs[i].kind == kind;
    return n;
}

static size_t s_count_fr(const s_cli_t *k, Gbx__V1__Frame__BodyCase body)
{
    size_t n = 0;
    for (size_t i = 0; i < k->nfr; i++)
        n += k->frs[i]->body_case == body;
    return n;
}

/*  The message id of a Deliver's envelope into ID. */
static void s_deliver_id(const Gbx__V1__Frame *f, uint8_t id[GBX_MSG_ID_BYTES])
{
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_DELIVER);
    assert_non_null(f->deliver->envelope);
    Gbx__V1__Header *h = gbx__v1__header__unpack(NULL, f->deliver->envelope->header.len,
                                                 f->deliver->envelope->header.data);
    assert_non_null(h);
    assert_int_equal(h->message_id.len, GBX_MSG_ID_BYTES);
    memcpy(id, h->message_id.data, GBX_MSG_ID_BYTES);
    gbx__v1__header__free_unpacked(h, NULL);
}

/*  The agencies the tests speak as; each has its test service
    (tu_config_test_services), so any of them can be sent to. */
#define S_NAGENCIES 6
static const char *const s_agencies[S_NAGENCIES] = {"hk.cr",     "hk.ehealth", "hk.kiosk",
                                                    "gd.qh-amr", "gd.hkush",   "gd.tax"};

/*  A header to TO for SERVICE (NULL: TO's test service). */
static char s_service_buf[80];
static void s_header(gbx_header_t *h, const char *to, const char *service)
{
    if (!service) {
        tu_test_service(to, s_service_buf);
        service = s_service_buf;
    }
    gbx_header_init(h);
    h->to_agency = (char *)to;
    h->service_code = (char *)service;
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = "MARKET-SUPERVISION";
}

/*  Builds and sends (blocking) TEXT from K to TO; Accepted, not duplicate.
    ID gets the message id. EXPIRES_IN (ms, 0: the default TTL). */
static void s_send_ok(s_cli_t *k, const char *to, const char *text, uint64_t expires_in,
                      uint8_t id[GBX_MSG_ID_BYTES])
{
    gbx_header_t h;
    s_header(&h, to, NULL);
    if (expires_in) {
        h.created_at_ms = s_now_ms();
        h.expires_at_ms = h.created_at_ms + expires_in;
    }
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(k->c, &h, text, strlen(text), &m), GBX_OK);
    gbx_event_t ev;
    gbx_err_t rc = gbx_client_send(k->c, m, 10000, &ev);
    if (rc != GBX_OK)
        fail_msg("send %s -> %s: %s %s", k->id, to, gbx_err_name(rc), ev.detail);
    assert_int_equal(ev.kind, GBX_EV_ACCEPTED);
    assert_int_equal(ev.duplicate, 0);
    memcpy(id, gbx_msg_id(m), GBX_MSG_ID_BYTES);
    gbx_event_clear(&ev);
    gbx_msg_destroy(&m);
}

/* ------------------------------------------------------------------ setup */

static int s_group_setup(void **state)
{
    assert_true(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    s_lv_t *lv = calloc(1, sizeof *lv);
    assert_non_null(lv);
    *state = lv;
    lv->dir = tu_tmpdir();
    assert_true(asprintf(&lv->home, "%s/home", lv->dir) > 0);
    char *log = NULL;
    assert_true(asprintf(&log, "%s/gbxd.log", lv->dir) > 0);
    tb_gbxd_home(&lv->gd, GBXD_PATH, lv->home, log);
    free(log);
    assert_int_equal(tu_policy_open(lv->home), 0); /* delivery mechanics, not policy */
    assert_int_equal(tu_config_test_services(lv->gd.cfg, s_agencies, S_NAGENCIES), 0);
    tb_gbxd_edit(&lv->gd, NULL, NULL); /* the services, for every start */

    char err[256];
    assert_rc(gbx_config_load(lv->gd.cfg, &lv->config, err, sizeof err), GBX_OK);
    for (size_t i = 0; i < S_NAGENCIES; i++) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/keys/%s.secret", lv->home, s_agencies[i]) > 0);
        assert_rc(gbx_identity_load(p, &lv->ids[lv->nids]), GBX_OK);
        lv->nids++;
        free(p);
    }
    char *p = NULL;
    assert_true(asprintf(&p, "%s/keys/%s.pub", lv->home, S_NODE) > 0);
    assert_rc(gbx_pubid_load(p, &lv->node), GBX_OK);
    free(p);
    lv->ctx = zmq_ctx_new();
    assert_non_null(lv->ctx);
    return 0;
}

static int s_group_teardown(void **state)
{
    s_lv_t *lv = *state;
    if (!lv)
        return 0;
    s_free_all(lv);
    tb_gbxd_kill(&lv->gd);
    if (lv->ctx)
        zmq_ctx_term(lv->ctx);
    for (size_t i = 0; i < lv->nids; i++)
        gbx_identity_destroy(&lv->ids[i]);
    gbx_config_destroy(&lv->config);
    if (lv->dir && !getenv("GBX_TEST_KEEP"))
        tu_rmtree_path(lv->dir);
    tb_gbxd_free(&lv->gd);
    free(lv->home);
    free(lv->dir);
    free(lv);
    return 0;
}

/*  Each test starts and ends without clients (a failed one leaves some). */
static int s_setup(void **state)
{
    s_free_all(*state);
    return 0;
}

static int s_teardown(void **state)
{
    s_free_all(*state);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_request_response(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_a);
    s_cli_t *kiosk = s_client(lv, "hk.kiosk");
    s_cli_t *tax = s_client(lv, "gd.tax");
    static const char q[] = "{\"hkid\":\"A1234567\",\"months\":12}";
    static const char a[] = "{\"certificate\":\"GD-SI-2026-000917\"}";

    gbx_header_t h;
    s_header(&h, "gd.tax", "GD-SI-PAYCERT");
    h.data_class = GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL;
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(kiosk->c, &h, q, strlen(q), &m), GBX_OK);
    uint8_t req_id[GBX_MSG_ID_BYTES];
    memcpy(req_id, gbx_msg_id(m), sizeof req_id);
    gbx_event_t ev;
    gbx_err_t rc = gbx_client_send(kiosk->c, m, 10000, &ev);
    if (rc != GBX_OK)
        fail_msg("request: %s %s", gbx_err_name(rc), ev.detail);
    gbx_event_clear(&ev);
    gbx_msg_destroy(&m);

    /* gd.tax: the request, verified and decrypted by libgbx */
    gbx_event_t req;
    assert_true(s_take(lv, tax, GBX_EV_DELIVERY, S_WAIT_MS, &req));
    const gbx_delivery_t *d = req.delivery;
    assert_int_equal(d->attempt, 1);
    assert_string_equal(d->header->from_agency, "hk.kiosk");
    assert_string_equal(d->header->to_agency, "gd.tax");
    assert_int_equal(d->header->kind, GBX__V1__MESSAGE_KIND__REQUEST);
    assert_int_equal(d->header->message_id.len, GBX_MSG_ID_BYTES);
    assert_memory_equal(d->header->message_id.data, req_id, GBX_MSG_ID_BYTES);
    assert_int_equal(d->len, strlen(q));
    assert_memory_equal(d->data, q, d->len);

    /* the reply, then the request's ack once it is Accepted (6.4) */
    uint64_t tag = 0;
    assert_rc(gbx_client_reply(tax->c, d, a, strlen(a), &tag), GBX_OK);
    gbx_event_t acc;
    uint64_t end = s_now_ms() + S_WAIT_MS;
    for (;;) {
        assert_true(s_now_ms() < end);
        if (s_take(lv, tax, GBX_EV_REJECTED, 0, &acc))
            fail_msg("response rejected: %s %s", gbx_err_name(acc.reason), acc.detail);
        if (s_take(lv, tax, GBX_EV_ACCEPTED, 10, &acc))
            break;
    }
    assert_int_equal(acc.tag, tag);
    assert_int_equal(acc.duplicate, 0);
    uint8_t resp_id[GBX_MSG_ID_BYTES];
    memcpy(resp_id, acc.message_id, sizeof resp_id);
    gbx_event_clear(&acc);
    assert_rc(gbx_client_ack(tax->c, d->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(tax->c), GBX_OK);

    /* hk.kiosk: the response */
    gbx_event_t resp;
    assert_true(s_take(lv, kiosk, GBX_EV_DELIVERY, S_WAIT_MS, &resp));
    const gbx_delivery_t *r = resp.delivery;
    assert_int_equal(r->attempt, 1);
    assert_string_equal(r->header->from_agency, "gd.tax");
    assert_string_equal(r->header->to_agency, "hk.kiosk");
    assert_int_equal(r->header->kind, GBX__V1__MESSAGE_KIND__RESPONSE);
    assert_int_equal(r->header->correlation_id.len, GBX_MSG_ID_BYTES);
    assert_memory_equal(r->header->correlation_id.data, req_id, GBX_MSG_ID_BYTES);
    assert_memory_equal(r->header->message_id.data, resp_id, GBX_MSG_ID_BYTES);
    assert_string_equal(r->header->service_code, "GD-SI-PAYCERT");
    assert_int_equal(r->len, strlen(a));
    assert_memory_equal(r->data, a, r->len);
    assert_rc(gbx_client_ack(kiosk->c, r->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(kiosk->c), GBX_OK);
    gbx_event_clear(&req);
    gbx_event_clear(&resp);

    /* both acks count: no redelivery (libgbx would hide one, gbxd's log
       does not), no notice */
    s_pump(lv, 3 * S_ACK_MS);
    char hex[2 * GBX_MSG_ID_BYTES + 1], needle[128];
    s_hex16(req_id, hex);
    snprintf(needle, sizeof needle, "message_id=%s to=gd.tax", hex);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, needle), 0);
    s_hex16(resp_id, hex);
    snprintf(needle, sizeof needle, "message_id=%s to=hk.kiosk", hex);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, needle), 0);
    assert_int_equal(s_count_ev(tax, GBX_EV_DELIVERY) + s_count_ev(kiosk, GBX_EV_DELIVERY), 0);
    assert_int_equal(s_count_ev(tax, GBX_EV_NOTICE) + s_count_ev(kiosk, GBX_EV_NOTICE), 0);
}

static void test_ack_timeout(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_a);
    s_cli_t *rx = s_raw(lv, "hk.cr", 10);
    s_cli_t *tx = s_client(lv, "gd.qh-amr");
    uint8_t id[GBX_MSG_ID_BYTES], got[GBX_MSG_ID_BYTES];
    s_send_ok(tx, "hk.cr", "{\"company\":\"2875113\"}", 0, id);

    Gbx__V1__Frame *d1 = s_take_frame(lv, rx, GBX__V1__FRAME__BODY_DELIVER, S_WAIT_MS);
    assert_non_null(d1);
    uint64_t t1 = s_now_ms();
    assert_int_equal(d1->tag, 0);
    assert_int_equal(d1->deliver->attempt, 1);
    s_deliver_id(d1, got);
    assert_memory_equal(got, id, sizeof id);

    /* no ack: the same message again after ACK_TIMEOUT (+ backoff) */
    Gbx__V1__Frame *d2 = s_take_frame(lv, rx, GBX__V1__FRAME__BODY_DELIVER, S_WAIT_MS);
    assert_non_null(d2);
    uint64_t gap = s_now_ms() - t1;
    assert_int_equal(d2->deliver->attempt, 2);
    assert_int_not_equal(d2->deliver->delivery_id, d1->deliver->delivery_id);
    s_deliver_id(d2, got);
    assert_memory_equal(got, id, sizeof id);
    if (gap + 20 < S_ACK_MS)
        fail_msg("redelivered %llu ms after the first delivery (ack timeout %d)",
                 (unsigned long long)gap, S_ACK_MS);

    /* the ack of the FIRST delivery acks the message in flight again */
    s_raw_ack(rx, &d1->deliver->delivery_id, 1);
    s_pump(lv, 3 * S_ACK_MS + 4 * S_BACKOFF + 300);
    assert_int_equal(s_count_fr(rx, GBX__V1__FRAME__BODY_DELIVER), 0);
    assert_int_equal(s_count_ev(tx, GBX_EV_NOTICE), 0);
    gbx__v1__frame__free_unpacked(d1, NULL);
    gbx__v1__frame__free_unpacked(d2, NULL);
}

static void test_disconnect(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_e);
    s_cli_t *tx = s_client(lv, "gd.qh-amr");
    s_cli_t *a = s_client(lv, "hk.ehealth");
    static const char text[] = "{\"patient\":\"P-0042\"}";
    uint8_t id[GBX_MSG_ID_BYTES];
    s_send_ok(tx, "hk.ehealth", text, 0, id);

    gbx_event_t e1;
    assert_true(s_take(lv, a, GBX_EV_DELIVERY, S_WAIT_MS, &e1));
    assert_int_equal(e1.delivery->attempt, 1);
    assert_memory_equal(e1.delivery->header->message_id.data, id, sizeof id);
    uint64_t first = e1.delivery->delivery_id;
    gbx_event_clear(&e1);
    s_cli_free(lv, &a); /* gone without an ack, silent from now on */
    uint64_t gone = s_now_ms();

    s_cli_t *b = s_client(lv, "hk.ehealth");
    gbx_event_t e2;
    assert_true(s_take(lv, b, GBX_EV_DELIVERY, S_WAIT_MS, &e2));
    /* A's session ended by SESSION_TIMEOUT (2 s after its last frame, which
       was at most a heartbeat, 200 ms, before it went), not ACK_TIMEOUT */
    uint64_t gap = s_now_ms() - gone;
    if (gap < 2000 - S_PING_MS - 100)
        fail_msg("redelivered %llu ms after the receiver went", (unsigned long long)gap);
    assert_int_equal(e2.delivery->attempt, 2);
    assert_int_not_equal(e2.delivery->delivery_id, first);
    assert_memory_equal(e2.delivery->header->message_id.data, id, sizeof id);
    assert_int_equal(e2.delivery->len, strlen(text));
    assert_memory_equal(e2.delivery->data, text, e2.delivery->len);
    assert_rc(gbx_client_ack(b->c, e2.delivery->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(b->c), GBX_OK);
    gbx_event_clear(&e2);

    s_pump(lv, 500);
    assert_int_equal(s_count_ev(b, GBX_EV_DELIVERY), 0);
    assert_int_equal(s_count_ev(tx, GBX_EV_NOTICE), 0);
}

static void test_expiry(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_a);
    s_cli_t *tx = s_client(lv, "hk.cr");
    uint8_t id[GBX_MSG_ID_BYTES];
    uint64_t sent = s_now_ms();
    s_send_ok(tx, "gd.qh-amr", "{\"extract\":\"short-lived\"}", 1500, id);

    gbx_event_t n;
    assert_true(s_take(lv, tx, GBX_EV_NOTICE, 1500 + 4000, &n));
    assert_true(s_now_ms() >= sent + 1500);
    assert_rc(n.reason, GBX_E_EXPIRED);
    assert_int_equal(n.message_id_len, GBX_MSG_ID_BYTES);
    assert_memory_equal(n.message_id, id, sizeof id);
    gbx_event_clear(&n);

    s_cli_t *rx = s_client(lv, "gd.qh-amr");
    gbx_event_t c;
    assert_true(s_take(lv, rx, GBX_EV_CONNECTED, S_WAIT_MS, &c));
    gbx_event_clear(&c);
    s_pump(lv, 600);
    assert_int_equal(s_count_ev(rx, GBX_EV_DELIVERY), 0);
    assert_int_equal(s_count_ev(tx, GBX_EV_NOTICE), 0); /* one notice only */
}

/*  A raw Submit from SIGNER to TO (box key TO_BOX), times as given, a
    PLEN-byte payload: part 1 (tag TAG) and the sealed payload. ID gets
    the message id. */
typedef struct {
    uint8_t *p1, *sealed;
    size_t l1, slen;
    uint8_t id[GBX_MSG_ID_BYTES];
} s_raw_msg_t;

static void s_raw_make(const gbx_identity_t *signer, const char *to, const uint8_t *to_box,
                       uint64_t created, uint64_t expires, size_t plen, uint64_t tag,
                       s_raw_msg_t *out)
{
    tu_header_t t;
    tu_header_fixture(&t, 1);
    randombytes_buf(t.message_id, sizeof t.message_id);
    memcpy(out->id, t.message_id, sizeof out->id);
    char from[GBX_ID_MAX + 1], dest[GBX_ID_MAX + 1];
    snprintf(from, sizeof from, "%s", gbx_identity_public(signer)->id);
    snprintf(dest, sizeof dest, "%s", to);
    char service[80];
    tu_test_service(to, service);
    t.h.from_agency = from;
    t.h.to_agency = dest;
    t.h.service_code = service;
    t.h.created_at_ms = created;
    t.h.expires_at_ms = expires;
    uint8_t *plain = malloc(plen);
    assert_non_null(plain);
    memset(plain, 0x5a, plen);
    t.h.payload_length = plen;
    gbx_binding_t b = {t.message_id, t.h.from_agency, t.h.to_agency};
    assert_rc(gbx_payload_seal(to_box, &b, plain, plen, &out->sealed, &out->slen, t.payload_hash),
              GBX_OK);
    free(plain);
    gbx_envelope_t *env = NULL;
    assert_rc(gbx_envelope_sign(signer, &t.h, &env), GBX_OK);
    assert_rc(gbx_frame_submit(tag, env, &out->p1, &out->l1), GBX_OK);
    gbx_envelope_destroy(&env);
}

static void s_raw_msg_free(s_raw_msg_t *m)
{
    free(m->p1);
    free(m->sealed);
    memset(m, 0, sizeof *m);
}

typedef enum {
    S_BAD_SIG,
    S_TAMPERED,
    S_EXPIRED,
    S_TTL,
    S_TOO_LARGE,
    S_MALFORMED,
    S_UNKNOWN_DEST
} s_bad_t;

static const struct {
    const char *name;
    s_bad_t bad;
    gbx_err_t want;
} s_rejects[] = {
    {"bad signature", S_BAD_SIG, GBX_E_BAD_SIGNATURE},
    {"tampered payload", S_TAMPERED, GBX_E_PAYLOAD_HASH_MISMATCH},
    {"expired", S_EXPIRED, GBX_E_EXPIRED},
    {"ttl too long", S_TTL, GBX_E_TTL_TOO_LONG},
    {"payload too large", S_TOO_LARGE, GBX_E_PAYLOAD_TOO_LARGE},
    {"malformed part 1", S_MALFORMED, GBX_E_MALFORMED},
    {"unknown destination", S_UNKNOWN_DEST, GBX_E_UNKNOWN_DESTINATION},
};

/*  Sends M on K and returns its answer (Accepted or Rejected). */
static Gbx__V1__Frame *s_raw_submit(s_lv_t *lv, s_cli_t *k, const s_raw_msg_t *m)
{
    s_raw_send(k, m->p1, m->l1, m->sealed, m->slen);
    uint64_t end = s_now_ms() + S_WAIT_MS;
    while (s_now_ms() < end) {
        Gbx__V1__Frame *f = s_take_frame(lv, k, GBX__V1__FRAME__BODY_ACCEPTED, 0);
        if (!f)
            f = s_take_frame(lv, k, GBX__V1__FRAME__BODY_REJECTED, 10);
        if (f)
            return f;
    }
    fail_msg("no answer within %d ms", S_WAIT_MS);
    return NULL;
}

static uint8_t *s_receipt_bytes(const Gbx__V1__Frame *f, size_t *len)
{
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    *len = gbx__v1__signed_receipt__get_packed_size(f->accepted->receipt);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    gbx__v1__signed_receipt__pack(f->accepted->receipt, b);
    return b;
}

static void test_rejects(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_a);
    s_cli_t *k = s_raw(lv, "gd.qh-amr", 0);
    const gbx_identity_t *me = s_idn(lv, "gd.qh-amr");
    const uint8_t *tax_box = gbx_identity_public(s_idn(lv, "gd.tax"))->box_pk;
    const uint64_t hour = 3600u * 1000u;

    /* a valid message (to gd.tax, which no later test reads) and its replay */
    s_raw_msg_t ok;
    uint64_t now = s_now_ms();
    s_raw_make(me, "gd.tax", tax_box, now - 1000, now + hour, 256, 11, &ok);
    Gbx__V1__Frame *f = s_raw_submit(lv, k, &ok);
    if (f->body_case == GBX__V1__FRAME__BODY_REJECTED)
        fail_msg("valid message rejected: %s", gbx_err_name((gbx_err_t)f->rejected->reason));
    assert_int_equal(f->tag, 11);
    assert_false(f->accepted->duplicate);
    Gbx__V1__Receipt *rc = NULL;
    assert_rc(gbx_receipt_verify(f->accepted->receipt, &lv->node, &rc), GBX_OK);
    gbx__v1__receipt__free_unpacked(rc, NULL);
    size_t rlen = 0;
    uint8_t *receipt = s_receipt_bytes(f, &rlen);
    gbx__v1__frame__free_unpacked(f, NULL);

    for (size_t i = 0; i < sizeof s_rejects / sizeof s_rejects[0]; i++) {
        s_raw_msg_t m;
        uint64_t tag = 100 + i;
        now = s_now_ms();
        const char *to = s_rejects[i].bad == S_UNKNOWN_DEST ? "hk.nobody" : "gd.tax";
        uint64_t created = now - 1000, expires = now + hour;
        size_t plen = 256;
        if (s_rejects[i].bad == S_EXPIRED)
            created = now - 2 * hour, expires = now - hour;
        if (s_rejects[i].bad == S_TTL)
            created = now, expires = now + 3 * hour; /* max_ttl 2 h */
        if (s_rejects[i].bad == S_TOO_LARGE)
            plen = (64u << 10) + 1; /* max_payload_bytes 64 KiB */
        s_raw_make(me, to, tax_box, created, expires, plen, tag, &m);
        if (s_rejects[i].bad == S_BAD_SIG) {
            Gbx__V1__Frame *fr = gbx__v1__frame__unpack(NULL, m.l1, m.p1);
            assert_non_null(fr);
            fr->submit->envelope->signature.data[7] ^= 0x01;
            assert_int_equal(gbx__v1__frame__get_packed_size(fr), m.l1);
            gbx__v1__frame__pack(fr, m.p1);
            gbx__v1__frame__free_unpacked(fr, NULL);
        } else if (s_rejects[i].bad == S_TAMPERED) {
            m.sealed[m.slen / 2] ^= 0x01;
        } else if (s_rejects[i].bad == S_MALFORMED) {
            memset(m.p1, 0xff, m.l1); /* not a protobuf Frame */
        }
        f = s_raw_submit(lv, k, &m);
        if (f->body_case != GBX__V1__FRAME__BODY_REJECTED)
            fail_msg("case \"%s\": accepted", s_rejects[i].name);
        assert_case_rc(s_rejects[i].name, (gbx_err_t)f->rejected->reason, s_rejects[i].want);
        assert_int_equal(f->rejected->retry_after_ms, 0);
        if (s_rejects[i].bad == S_MALFORMED) {
            assert_int_equal(f->rejected->message_id.len, 0);
        } else {
            assert_int_equal(f->tag, tag);
            assert_int_equal(f->rejected->message_id.len, GBX_MSG_ID_BYTES);
            assert_memory_equal(f->rejected->message_id.data, m.id, GBX_MSG_ID_BYTES);
        }
        gbx__v1__frame__free_unpacked(f, NULL);
        s_raw_msg_free(&m);

        /* still serving: the replay gets the original receipt, byte for byte */
        f = s_raw_submit(lv, k, &ok);
        if (f->body_case != GBX__V1__FRAME__BODY_ACCEPTED)
            fail_msg("after \"%s\": replay rejected %s", s_rejects[i].name,
                     gbx_err_name((gbx_err_t)f->rejected->reason));
        assert_true(f->accepted->duplicate);
        size_t len = 0;
        uint8_t *again = s_receipt_bytes(f, &len);
        assert_int_equal(len, rlen);
        assert_memory_equal(again, receipt, rlen);
        free(again);
        gbx__v1__frame__free_unpacked(f, NULL);
    }
    free(receipt);
    s_raw_msg_free(&ok);
    assert_int_equal(s_count_fr(k, GBX__V1__FRAME__BODY_DELIVER), 0);
}

static void test_dead_letter(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_d);
    s_cli_t *rx = s_raw(lv, "hk.cr", 10);
    s_cli_t *tx = s_client(lv, "gd.hkush");
    uint8_t id[GBX_MSG_ID_BYTES], got[GBX_MSG_ID_BYTES];
    s_send_ok(tx, "hk.cr", "{\"company\":\"0000001\"}", 0, id);

    uint64_t seen[2];
    for (uint32_t attempt = 1; attempt <= 2; attempt++) {
        Gbx__V1__Frame *d = s_take_frame(lv, rx, GBX__V1__FRAME__BODY_DELIVER, S_WAIT_MS);
        assert_non_null(d);
        assert_int_equal(d->deliver->attempt, attempt);
        s_deliver_id(d, got);
        assert_memory_equal(got, id, sizeof id);
        seen[attempt - 1] = d->deliver->delivery_id;
        gbx__v1__frame__free_unpacked(d, NULL);
    }
    assert_int_not_equal(seen[0], seen[1]);

    gbx_event_t n;
    assert_true(s_take(lv, tx, GBX_EV_NOTICE, S_WAIT_MS, &n));
    assert_rc(n.reason, GBX_E_DEAD_LETTERED);
    assert_int_equal(n.message_id_len, GBX_MSG_ID_BYTES);
    assert_memory_equal(n.message_id, id, sizeof id);
    gbx_event_clear(&n);

    s_pump(lv, 3 * S_ACK_MS + 4 * S_BACKOFF + 300);
    assert_int_equal(s_count_fr(rx, GBX__V1__FRAME__BODY_DELIVER), 0);
    assert_int_equal(s_count_ev(tx, GBX_EV_NOTICE), 0);
}

/*  A sender's stale session (its connection gone, the node not yet aware)
    must not swallow the Notice meant for its live session. */
static void test_notice_live_session(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_d);
    /* the stale one: opened first (so found first), then closed */
    s_cli_t *stale = s_raw(lv, "hk.kiosk", 0);
    s_raw_ping(stale, 5, 5);
    Gbx__V1__Frame *f = NULL;
    while (!f || f->tag != 5) {
        if (f)
            gbx__v1__frame__free_unpacked(f, NULL);
        f = s_take_frame(lv, stale, GBX__V1__FRAME__BODY_PONG, S_WAIT_MS);
        assert_non_null(f);
    }
    gbx__v1__frame__free_unpacked(f, NULL);
    s_cli_free(lv, &stale);

    s_cli_t *tx = s_client(lv, "hk.kiosk");
    s_cli_t *rx = s_raw(lv, "gd.tax", 10); /* never acks */
    uint8_t id[GBX_MSG_ID_BYTES];
    s_send_ok(tx, "gd.tax", "{\"company\":\"0000002\"}", 0, id);
    gbx_event_t n;
    if (!s_take(lv, tx, GBX_EV_NOTICE, S_WAIT_MS, &n))
        fail_msg("no Notice on the live session (%zu deliveries seen)",
                 s_count_fr(rx, GBX__V1__FRAME__BODY_DELIVER));
    assert_rc(n.reason, GBX_E_DEAD_LETTERED);
    assert_memory_equal(n.message_id, id, sizeof id);
    gbx_event_clear(&n);
}

/*  A redelivery handed to a stale session of the receiving agency fails to
    send: that is not an attempt. The live session gets attempt 2 (it got 3
    before broker/dispatch.c counted such MARKs out; with max_attempts 2
    the message was dead-lettered after ONE transmitted Deliver). */
static void test_stale_session_attempt(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_d);
    s_cli_t *tx = s_client(lv, "gd.qh-amr");
    s_cli_t *a = s_client(lv, "hk.ehealth");
    uint8_t id[GBX_MSG_ID_BYTES];
    s_send_ok(tx, "hk.ehealth", "{\"patient\":\"P-0043\"}", 0, id);
    gbx_event_t e1;
    assert_true(s_take(lv, a, GBX_EV_DELIVERY, S_WAIT_MS, &e1));
    assert_int_equal(e1.delivery->attempt, 1);
    gbx_event_clear(&e1);
    s_cli_free(lv, &a); /* its session stays at the node for 5 s */
    s_cli_t *b = s_client(lv, "hk.ehealth");
    gbx_event_t e2;
    if (!s_take(lv, b, GBX_EV_DELIVERY, S_WAIT_MS, &e2)) {
        gbx_event_t n;
        if (s_take(lv, tx, GBX_EV_NOTICE, 0, &n)) {
            gbx_err_t why = n.reason;
            gbx_event_clear(&n);
            fail_msg("never redelivered to the live session; sender told %s", gbx_err_name(why));
        }
        fail_msg("never redelivered to the live session");
    }
    uint32_t attempt = e2.delivery->attempt;
    assert_rc(gbx_client_ack(b->c, e2.delivery->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(b->c), GBX_OK);
    gbx_event_clear(&e2);
    assert_int_equal(attempt, 2);
}

static void test_queue_full(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_a);
    s_cli_t *tx = s_client(lv, "hk.ehealth");
    uint8_t ids[3][GBX_MSG_ID_BYTES];
    for (int i = 0; i < 3; i++)
        s_send_ok(tx, "hk.kiosk", "{\"report\":1}", 0, ids[i]);

    gbx_header_t h;
    s_header(&h, "hk.kiosk", NULL);
    gbx_msg_t *m4 = NULL;
    assert_rc(gbx_client_msg(tx->c, &h, "{\"report\":4}", 12, &m4), GBX_OK);
    gbx_event_t ev;
    assert_rc(gbx_client_send(tx->c, m4, 10000, &ev), GBX_E_RETRY_LATER);
    assert_int_equal(ev.kind, GBX_EV_REJECTED);
    assert_rc(ev.reason, GBX_E_RETRY_LATER);
    assert_true(ev.retry_after_ms > 0);
    assert_memory_equal(ev.message_id, gbx_msg_id(m4), GBX_MSG_ID_BYTES);
    gbx_event_clear(&ev);

    /* a receiver takes the three and acks one: room for one */
    s_cli_t *rx = s_client(lv, "hk.kiosk");
    gbx_event_t d[3];
    for (int i = 0; i < 3; i++) {
        assert_true(s_take(lv, rx, GBX_EV_DELIVERY, S_WAIT_MS, &d[i]));
        assert_int_equal(d[i].delivery->attempt, 1);
    }
    assert_rc(gbx_client_ack(rx->c, d[0].delivery->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(rx->c), GBX_OK);
    uint64_t end = s_now_ms() + S_WAIT_MS;
    gbx_err_t rc;
    for (;;) {
        rc = gbx_client_send(tx->c, m4, 10000, &ev);
        if (rc != GBX_E_RETRY_LATER || s_now_ms() > end)
            break;
        gbx_event_clear(&ev);
        s_pump(lv, 20);
    }
    if (rc != GBX_OK)
        fail_msg("4th after an ack: %s %s", gbx_err_name(rc), ev.detail);
    assert_int_equal(ev.duplicate, 0); /* the rejection stored nothing */
    gbx_event_clear(&ev);

    /* the rest, and the 4th, acked: the queue ends empty */
    for (int i = 1; i < 3; i++)
        assert_rc(gbx_client_ack(rx->c, d[i].delivery->delivery_id), GBX_OK);
    gbx_event_t d4;
    assert_true(s_take(lv, rx, GBX_EV_DELIVERY, S_WAIT_MS, &d4));
    assert_memory_equal(d4.delivery->header->message_id.data, gbx_msg_id(m4), GBX_MSG_ID_BYTES);
    assert_rc(gbx_client_ack(rx->c, d4.delivery->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(rx->c), GBX_OK);
    gbx_event_clear(&d4);
    for (int i = 0; i < 3; i++)
        gbx_event_clear(&d[i]);
    gbx_msg_destroy(&m4);
    s_pump(lv, 100);
    assert_int_equal(s_count_ev(tx, GBX_EV_NOTICE), 0);
}

static int s_index(uint8_t (*ids)[GBX_MSG_ID_BYTES], int n, const uint8_t *id)
{
    for (int i = 0; i < n; i++)
        if (memcmp(ids[i], id, GBX_MSG_ID_BYTES) == 0)
            return i;
    return -1;
}

static void test_restart_once(void **state)
{
    s_lv_t *lv = *state;
    s_use(lv, s_limits_c);
    const int n = s_quick() ? 20 : 200;
    const int n_ack = n / 2, n_credit = n / 2 + n / 4;
    uint8_t(*ids)[GBX_MSG_ID_BYTES] = calloc((size_t)n, GBX_MSG_ID_BYTES);
    int *state_of = calloc((size_t)n, sizeof *state_of); /* 0 new, 1 delivered, 2 acked */
    assert_true(ids && state_of);

    s_cli_t *tx = s_client(lv, "gd.qh-amr");
    gbx_header_t h;
    s_header(&h, "hk.cr", "HK-CR-COEXTRACT");
    for (int i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof text, "{\"n\":%d}", i);
        gbx_msg_t *m = NULL;
        assert_rc(gbx_client_msg(tx->c, &h, text, strlen(text), &m), GBX_OK);
        memcpy(ids[i], gbx_msg_id(m), GBX_MSG_ID_BYTES);
        assert_rc(gbx_client_submit(tx->c, &m, NULL), GBX_OK);
    }
    for (int accepted = 0; accepted < n;) {
        gbx_event_t ev;
        if (s_take(lv, tx, GBX_EV_REJECTED, 0, &ev))
            fail_msg("rejected: %s %s", gbx_err_name(ev.reason), ev.detail);
        if (!s_take(lv, tx, GBX_EV_ACCEPTED, 20000, &ev))
            fail_msg("%d of %d accepted", accepted, n);
        assert_int_equal(ev.duplicate, 0);
        assert_true(s_index(ids, n, ev.message_id) >= 0);
        gbx_event_clear(&ev);
        accepted++;
    }
    s_cli_free(lv, &tx);

    /* a raw receiver with credit for 3N/4 acks the first N/2 it gets */
    s_cli_t *rx = s_raw(lv, "hk.cr", (uint32_t)n_credit);
    int received = 0, acked = 0;
    uint64_t end = s_now_ms() + 20000;
    while (received < n_credit) {
        Gbx__V1__Frame *d = s_take_frame(lv, rx, GBX__V1__FRAME__BODY_DELIVER, 0);
        if (!d) {
            if (s_now_ms() > end)
                fail_msg("%d of %d deliveries before the restart", received, n_credit);
            s_pump(lv, 10);
            continue;
        }
        uint8_t id[GBX_MSG_ID_BYTES];
        s_deliver_id(d, id);
        int i = s_index(ids, n, id);
        assert_true(i >= 0);
        assert_int_equal(state_of[i], 0);
        assert_int_equal(d->deliver->attempt, 1);
        state_of[i] = 1;
        received++;
        if (acked < n_ack) {
            s_raw_ack(rx, &d->deliver->delivery_id, 1);
            state_of[i] = 2;
            acked++;
        }
        gbx__v1__frame__free_unpacked(d, NULL);
    }
    /* the node has read every Ack once it answers a later Ping */
    s_raw_ping(rx, 77, 0x5eed);
    Gbx__V1__Frame *pong = NULL;
    while (!pong || pong->tag != 77) {
        if (pong)
            gbx__v1__frame__free_unpacked(pong, NULL);
        pong = s_take_frame(lv, rx, GBX__V1__FRAME__BODY_PONG, S_WAIT_MS);
        assert_non_null(pong);
    }
    assert_int_equal(pong->pong->nonce, 0x5eed);
    gbx__v1__frame__free_unpacked(pong, NULL);
    assert_int_equal(s_count_fr(rx, GBX__V1__FRAME__BODY_DELIVER), 0);
    s_cli_free(lv, &rx);

    /* a clean stop and start on the same data */
    tb_gbxd_term(&lv->gd, S_STOP_MS);
    tb_gbxd_start(&lv->gd, S_START_MS);

    /* a fresh receiver (no dedupe memory) gets exactly the unacked N/2 */
    s_cli_t *rx2 = s_client(lv, "hk.cr");
    int after = 0;
    end = s_now_ms() + 20000;
    while (after < n - n_ack) {
        gbx_event_t ev;
        if (!s_take(lv, rx2, GBX_EV_DELIVERY, 0, &ev)) {
            if (s_now_ms() > end)
                fail_msg("%d of %d deliveries after the restart", after, n - n_ack);
            s_pump(lv, 10);
            continue;
        }
        int i = s_index(ids, n, ev.delivery->header->message_id.data);
        assert_true(i >= 0);
        if (state_of[i] == 2)
            fail_msg("message %d delivered again after its ack (attempt %u)", i,
                     (unsigned)ev.delivery->attempt);
        if (state_of[i] == 3)
            fail_msg("message %d delivered twice after the restart", i);
        /* attempts survive the restart */
        assert_int_equal(ev.delivery->attempt, state_of[i] == 1 ? 2 : 1);
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%d}", i);
        assert_int_equal(ev.delivery->len, strlen(want));
        assert_memory_equal(ev.delivery->data, want, ev.delivery->len);
        state_of[i] = 3;
        assert_rc(gbx_client_ack(rx2->c, ev.delivery->delivery_id), GBX_OK);
        gbx_event_clear(&ev);
        after++;
    }
    assert_rc(gbx_client_flush(rx2->c), GBX_OK);
    s_pump(lv, 500);
    assert_int_equal(s_count_ev(rx2, GBX_EV_DELIVERY), 0);
    for (int i = 0; i < n; i++)
        assert_true(state_of[i] == 2 || state_of[i] == 3);
    free(ids);
    free(state_of);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_response, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ack_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rejects, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_expiry, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_disconnect, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_notice_live_session, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stale_session_attempt, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_once, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
