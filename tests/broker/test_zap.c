/*  test_zap: gbx_zap against real ZeroMQ. A CURVE ROUTER server on
    tcp://127.0.0.1:<ephemeral> with node hk-1's keys and DEALER clients;
    raw ZAP requests over a REQ socket for the malformed cases (s_raw_cases).
    Registry: nodes hk-1 (HK) and gd-1 (GD), agency hk.cr on hk-1; "hk.evil"
    has keys but no entry. Every wait is bounded. */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "registry.h"
#include "zap.h"

#define S_WAIT_MS    3000 /* for things that must happen */
#define S_SILENCE_MS 500  /* for things that must not */

/* ------------------------------------------------------------- fixtures */

static gbx_pubid_t s_pub(const char *id)
{
    gbx_identity_t *idn = tu_identity_fixed(id, NULL);
    gbx_pubid_t p = *gbx_identity_public(idn);
    gbx_identity_destroy(&idn);
    return p;
}

static gbx_registry_t *s_registry(void)
{
    gbx_registry_t *reg = NULL;
    assert_rc(gbx_registry_new(&reg), GBX_OK);
    const char *nodes[] = {"hk-1", "gd-1"};
    const gbx_jurisdiction_t jur[] = {GBX_JUR_HK, GBX_JUR_GD};
    for (int i = 0; i < 2; i++) {
        gbx_node_t n;
        memset(&n, 0, sizeof n);
        snprintf(n.id, sizeof n.id, "%s", nodes[i]);
        n.jurisdiction = jur[i];
        n.pub = s_pub(nodes[i]);
        assert_rc(gbx_registry_add_node(reg, &n, NULL), GBX_OK);
    }
    gbx_agency_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "hk.cr");
    a.jurisdiction = GBX_JUR_HK;
    snprintf(a.city, sizeof a.city, "hong-kong");
    snprintf(a.node, sizeof a.node, "hk-1");
    a.pub = s_pub("hk.cr");
    assert_rc(gbx_registry_add_agency(reg, &a, NULL), GBX_OK);
    return reg;
}

typedef struct {
    void *ctx;
    gbx_registry_t *reg;
    gbx_zap_t *zap;
    void *server; /* ROUTER, CURVE server, domain "gbx" */
    char endpoint[256];
    uint8_t server_pk[GBX_KEY_BYTES];
    void *socks[16]; /* clients and helpers, closed by teardown even when a test fails */
    int nsocks;
} s_fix_t;

/*  Hands SOCK to the fixture (so a failed test cannot leave it open and
    hang zmq_ctx_term); returns it. */
static void *s_track(s_fix_t *f, void *sock)
{
    assert_non_null(sock);
    assert_true(f->nsocks < 16);
    f->socks[f->nsocks++] = sock;
    return sock;
}

/*  Closes a tracked socket early. */
static void s_untrack(s_fix_t *f, void *sock)
{
    for (int i = 0; i < f->nsocks; i++)
        if (f->socks[i] == sock) {
            zmq_close(sock);
            f->socks[i] = f->socks[--f->nsocks];
            return;
        }
    fail_msg("socket not tracked");
}

static void *s_server(void *ctx, const char *domain, char *endpoint, size_t len)
{
    gbx_identity_t *node = tu_identity_fixed("hk-1", NULL);
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    assert_non_null(s);
    int one = 1, zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(node), 32), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, domain, strlen(domain)), 0);
    assert_int_equal(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    size_t n = len;
    assert_int_equal(zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &n), 0);
    gbx_identity_destroy(&node);
    return s;
}

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    f->reg = s_registry();
    /* The handler first: a CURVE server bound without one admits anyone. */
    assert_rc(gbx_zap_start(f->ctx, f->reg, &f->zap), GBX_OK);
    f->server = s_server(f->ctx, GBX_ZAP_DOMAIN, f->endpoint, sizeof f->endpoint);
    memcpy(f->server_pk, s_pub("hk-1").curve_pk, GBX_KEY_BYTES);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    if (f->server) /* stops a monitor a failed test left running */
        zmq_socket_monitor(f->server, NULL, 0);
    for (int i = 0; i < f->nsocks; i++)
        zmq_close(f->socks[i]);
    if (f->server)
        zmq_close(f->server); /* servers before their handler */
    gbx_zap_destroy(&f->zap);
    assert_null(f->zap);
    assert_int_equal(zmq_ctx_term(f->ctx), 0);
    gbx_registry_destroy(&f->reg);
    free(f);
    return 0;
}

/*  A DEALER connected to the fixture's server as ID (CURVE), or with the
    NULL mechanism when ID is NULL. It never reconnects, so every ZAP
    request in a test is one connection attempt. */
static void *s_client(s_fix_t *f, const char *id)
{
    void *c = s_track(f, zmq_socket(f->ctx, ZMQ_DEALER));
    int zero = 0, never = -1;
    assert_int_equal(zmq_setsockopt(c, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(c, ZMQ_RECONNECT_IVL, &never, sizeof never), 0);
    if (id) {
        gbx_identity_t *idn = tu_identity_fixed(id, NULL);
        assert_int_equal(zmq_setsockopt(c, ZMQ_CURVE_SERVERKEY, f->server_pk, 32), 0);
        assert_int_equal(
            zmq_setsockopt(c, ZMQ_CURVE_PUBLICKEY, gbx_identity_public(idn)->curve_pk, 32), 0);
        assert_int_equal(zmq_setsockopt(c, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(idn), 32), 0);
        gbx_identity_destroy(&idn);
    }
    assert_int_equal(zmq_connect(c, f->endpoint), 0);
    return c;
}

/*  Waits up to MS for a message on the server. On 1, *body holds its last
    part (the caller closes it). */
static int s_server_recv(s_fix_t *f, int ms, zmq_msg_t *body)
{
    zmq_pollitem_t it = {f->server, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return 0;
    zmq_msg_t routing;
    zmq_msg_init(&routing);
    assert_true(zmq_msg_recv(&routing, f->server, 0) >= 0);
    assert_true(zmq_msg_more(&routing));
    zmq_msg_close(&routing);
    zmq_msg_init(body);
    assert_true(zmq_msg_recv(body, f->server, 0) >= 0);
    assert_false(zmq_msg_more(body));
    return 1;
}

/*  CLIENT says hello; the server must get it from USER_ID in ROLE. */
static void s_expect_admitted(s_fix_t *f, void *client, const char *user_id, const char *role)
{
    assert_int_equal(zmq_send(client, "hello", 5, 0), 5);
    zmq_msg_t body;
    assert_true(s_server_recv(f, S_WAIT_MS, &body));
    assert_int_equal(zmq_msg_size(&body), 5);
    const char *uid = zmq_msg_gets(&body, "User-Id");
    const char *got_role = zmq_msg_gets(&body, GBX_ZAP_ROLE_PROPERTY);
    assert_non_null(uid);
    assert_non_null(got_role);
    assert_string_equal(uid, user_id);
    assert_string_equal(got_role, role);
    zmq_msg_close(&body);
}

static void s_expect_silence(s_fix_t *f, void *client)
{
    zmq_send(client, "hello", 5, ZMQ_DONTWAIT); /* queued at most; never delivered */
    zmq_msg_t body;
    assert_false(s_server_recv(f, S_SILENCE_MS, &body));
}

static void s_expect_stats(s_fix_t *f, uint64_t accepted, uint64_t refused, uint64_t malformed)
{
    gbx_zap_stats_t st;
    gbx_zap_stats(f->zap, &st);
    assert_int_equal(st.accepted, accepted);
    assert_int_equal(st.refused, refused);
    assert_int_equal(st.malformed, malformed);
}

/* ---------------------------------------------------------------- tests */

static void test_agency_admitted(void **state)
{
    s_fix_t *f = *state;
    s_expect_admitted(f, s_client(f, "hk.cr"), "hk.cr", "agency");
    s_expect_stats(f, 1, 0, 0);
}

static void test_node_admitted(void **state)
{
    s_fix_t *f = *state;
    s_expect_admitted(f, s_client(f, "gd-1"), "gd-1", "node");
    s_expect_stats(f, 1, 0, 0);
}

static void test_unknown_key_refused(void **state)
{
    s_fix_t *f = *state;
    void *mon = s_track(f, zmq_socket(f->ctx, ZMQ_PAIR));
    assert_int_equal(
        zmq_socket_monitor(f->server, "inproc://test-zap-mon",
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
        0);
    assert_int_equal(zmq_connect(mon, "inproc://test-zap-mon"), 0);

    void *evil = s_client(f, "hk.evil");
    /* The server sees the handshake fail on authentication, status 400. */
    zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, S_WAIT_MS), 1);
    uint8_t ev[6];
    assert_int_equal(zmq_recv(mon, ev, sizeof ev, 0), 6);
    uint16_t event;
    uint32_t value;
    memcpy(&event, ev, 2);
    memcpy(&value, ev + 2, 4);
    assert_int_equal(event, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(value, 400);
    char addr[256];
    assert_true(zmq_recv(mon, addr, sizeof addr, 0) >= 0);

    s_expect_silence(f, evil);
    s_expect_stats(f, 0, 1, 0);

    assert_int_equal(zmq_socket_monitor(f->server, NULL, 0), 0);
    s_untrack(f, mon);
}

static void test_null_mechanism_refused(void **state)
{
    s_fix_t *f = *state;
    s_expect_silence(f, s_client(f, NULL));
    /* A NULL client fails the greeting (mechanism mismatch) before any ZAP
       request: nothing is admitted, nothing counted. */
    s_expect_stats(f, 0, 0, 0);
}

static void test_counters(void **state)
{
    s_fix_t *f = *state;
    s_expect_admitted(f, s_client(f, "hk.cr"), "hk.cr", "agency");
    s_expect_silence(f, s_client(f, "hk.evil"));
    s_expect_admitted(f, s_client(f, "gd-1"), "gd-1", "node");
    s_expect_admitted(f, s_client(f, "hk.cr"), "hk.cr", "agency"); /* a second session */
    s_expect_silence(f, s_client(f, "gd.nobody"));
    s_expect_stats(f, 3, 2, 0);
}

/*  Per-domain roles: a server for adapters refuses nodes, one for peers
    refuses agencies, one with a foreign domain refuses everyone. */
static void test_domains(void **state)
{
    s_fix_t *f = *state;
    const struct {
        const char *domain, *client, *role; /* role NULL: refused */
    } cases[] = {
        {GBX_ZAP_DOMAIN_ADAPTER, "hk.cr", "agency"},
        {GBX_ZAP_DOMAIN_ADAPTER, "gd-1", NULL},
        {GBX_ZAP_DOMAIN_PEER, "gd-1", "node"},
        {GBX_ZAP_DOMAIN_PEER, "hk.cr", NULL},
        {"other", "hk.cr", NULL},
    };
    uint64_t acc = 0, ref = 0;
    zmq_close(f->server);
    f->server = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->server = s_server(f->ctx, cases[i].domain, f->endpoint, sizeof f->endpoint);
        void *c = s_client(f, cases[i].client);
        if (cases[i].role) {
            s_expect_admitted(f, c, cases[i].client, cases[i].role);
            acc++;
        } else {
            s_expect_silence(f, c);
            ref++;
        }
        s_expect_stats(f, acc, ref, 0);
        s_untrack(f, c);
        zmq_close(f->server);
        f->server = NULL;
    }
    f->server = s_server(f->ctx, GBX_ZAP_DOMAIN, f->endpoint, sizeof f->endpoint);
}

/* ----------------------------------------------- raw ZAP requests (REQ) */

#define S_MAX_PARTS 24

typedef struct {
    const char *name;
    int nparts;
    const char *parts[S_MAX_PARTS]; /* "@KEY:<id>": that id's 32-byte curve key; "@31" 31 bytes */
    const char *status;
    const char *request_id; /* echoed */
    const char *user_id;
} s_raw_case_t;

#define K_CR  "@KEY:hk.cr"
#define K_GD1 "@KEY:gd-1"

static const s_raw_case_t s_raw_cases[] = {
    {"one frame", 1, {"1.0"}, "500", "", ""},
    {"three frames", 3, {"1.0", "r3", "gbx"}, "500", "r3", ""},
    {"version 2.0", 7, {"2.0", "r4", "gbx", "127.0.0.1", "", "CURVE", K_CR}, "500", "r4", ""},
    {"empty version", 7, {"", "r5", "gbx", "127.0.0.1", "", "CURVE", K_CR}, "500", "r5", ""},
    {"curve key 31 bytes",
     7,
     {"1.0", "r6", "gbx", "127.0.0.1", "", "CURVE", "@31"},
     "500",
     "r6",
     ""},
    {"curve without key", 6, {"1.0", "r7", "gbx", "127.0.0.1", "", "CURVE"}, "500", "r7", ""},
    {"curve two keys",
     8,
     {"1.0", "r8", "gbx", "127.0.0.1", "", "CURVE", K_CR, K_CR},
     "500",
     "r8",
     ""},
    {"twenty frames",
     20,
     {"1.0", "r9", "gbx", "a", "",  "CURVE", "x", "x", "x", "x",
      "x",   "x",  "x",   "x", "x", "x",     "x", "x", "x", "x"},
     "500",
     "r9",
     ""},
    {"null mechanism", 6, {"1.0", "r10", "gbx", "127.0.0.1", "", "NULL"}, "400", "r10", ""},
    {"plain mechanism",
     8,
     {"1.0", "r11", "gbx", "127.0.0.1", "", "PLAIN", "hk.cr", "pw"},
     "400",
     "r11",
     ""},
    {"unknown domain",
     7,
     {"1.0", "r12", "other", "127.0.0.1", "", "CURVE", K_CR},
     "400",
     "r12",
     ""},
    {"no domain", 7, {"1.0", "r13", "", "127.0.0.1", "", "CURVE", K_CR}, "400", "r13", ""},
    {"agency on peer domain",
     7,
     {"1.0", "r14", "gbx.peer", "127.0.0.1", "", "CURVE", K_CR},
     "400",
     "r14",
     ""},
    {"unknown key",
     7,
     {"1.0", "r15", "gbx", "127.0.0.1", "", "CURVE", "@KEY:hk.evil"},
     "400",
     "r15",
     ""},
    {"agency ok", 7, {"1.0", "r16", "gbx", "127.0.0.1", "", "CURVE", K_CR}, "200", "r16", "hk.cr"},
    {"node on peer domain ok",
     7,
     {"1.0", "", "gbx.peer", "127.0.0.1", "", "CURVE", K_GD1},
     "200",
     "",
     "gd-1"},
};

static void s_send_part(void *req, const char *p, int more)
{
    int flags = more ? ZMQ_SNDMORE : 0;
    if (strncmp(p, "@KEY:", 5) == 0) {
        gbx_pubid_t pub = s_pub(p + 5);
        assert_int_equal(zmq_send(req, pub.curve_pk, 32, flags), 32);
    } else if (strcmp(p, "@31") == 0) {
        uint8_t k[31] = {1};
        assert_int_equal(zmq_send(req, k, sizeof k, flags), 31);
    } else {
        assert_int_equal(zmq_send(req, p, strlen(p), flags), (int)strlen(p));
    }
}

/*  Receives one reply of exactly 6 parts into PARTS (NUL-terminated). */
static void s_recv_reply(const char *name, void *req, char parts[6][128], size_t lens[6])
{
    zmq_pollitem_t it = {req, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, S_WAIT_MS) != 1)
        fail_msg("case \"%s\": no reply", name);
    for (int i = 0; i < 6; i++) {
        int n = zmq_recv(req, parts[i], 127, 0);
        assert_true(n >= 0 && n <= 127);
        parts[i][n] = '\0';
        lens[i] = (size_t)n;
        int more;
        size_t ml = sizeof more;
        assert_int_equal(zmq_getsockopt(req, ZMQ_RCVMORE, &more, &ml), 0);
        if (more != (i < 5))
            fail_msg("case \"%s\": reply part %d more=%d", name, i, more);
    }
}

static void test_raw_requests(void **state)
{
    s_fix_t *f = *state;
    void *req = s_track(f, zmq_socket(f->ctx, ZMQ_REQ));
    int zero = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(req, GBX_ZAP_ENDPOINT), 0);

    uint64_t want[3] = {0, 0, 0}; /* accepted, refused, malformed */
    int fails = 0;
    for (size_t i = 0; i < sizeof s_raw_cases / sizeof s_raw_cases[0]; i++) {
        const s_raw_case_t *c = &s_raw_cases[i];
        for (int p = 0; p < c->nparts; p++)
            s_send_part(req, c->parts[p], p + 1 < c->nparts);
        char r[6][128];
        size_t lens[6];
        s_recv_reply(c->name, req, r, lens);
        want[c->status[0] == '2' ? 0 : c->status[0] == '4' ? 1 : 2]++;
        if (strcmp(r[0], "1.0") || strcmp(r[1], c->request_id) || strcmp(r[2], c->status) ||
            strcmp(r[4], c->user_id)) {
            print_error("case \"%s\": got %s / %s / %s %s / %s\n", c->name, r[0], r[1], r[2], r[3],
                        r[4]);
            fails++;
        }
        /* Metadata: the role property on 200, nothing otherwise. */
        if (c->status[0] == '2') {
            const char *role = strcmp(c->user_id, "hk.cr") == 0 ? "agency" : "node";
            uint8_t m[64];
            size_t ml = 0;
            m[ml++] = 10;
            memcpy(m + ml, "X-Gbx-Role", 10);
            ml += 10;
            m[ml++] = 0, m[ml++] = 0, m[ml++] = 0, m[ml++] = (uint8_t)strlen(role);
            memcpy(m + ml, role, strlen(role));
            ml += strlen(role);
            if (lens[5] != ml || memcmp(r[5], m, ml) != 0) {
                print_error("case \"%s\": bad metadata\n", c->name);
                fails++;
            }
        } else if (lens[5] != 0 || lens[4] != 0) {
            print_error("case \"%s\": user id or metadata on a refusal\n", c->name);
            fails++;
        }
    }
    assert_int_equal(fails, 0);
    s_untrack(f, req);
    s_expect_stats(f, want[0], want[1], want[2]);

    /* Still serving: a real client gets in. */
    s_expect_admitted(f, s_client(f, "hk.cr"), "hk.cr", "agency");
    s_expect_stats(f, want[0] + 1, want[1], want[2]);
}

/* ------------------------------------------------------------ lifecycle */

static void test_lifecycle(void **state)
{
    (void)state;
    gbx_registry_t *reg = s_registry();
    gbx_zap_t *zap = NULL, *second = NULL;

    gbx_zap_destroy(NULL);
    gbx_zap_destroy(&zap);
    assert_rc(gbx_zap_start(NULL, reg, &zap), GBX_E_ARG);

    /* Many contexts, one handler each. */
    for (int i = 0; i < 30; i++) {
        void *ctx = zmq_ctx_new();
        assert_non_null(ctx);
        assert_rc(gbx_zap_start(ctx, reg, &zap), GBX_OK);
        assert_rc(gbx_zap_start(ctx, NULL, &second), GBX_E_ARG);
        assert_rc(gbx_zap_start(ctx, reg, &second), GBX_E_STATE); /* one per context */
        assert_null(second);
        gbx_zap_destroy(&zap);
        assert_null(zap);
        assert_int_equal(zmq_ctx_term(ctx), 0);
    }

    /* One context, restarted: the endpoint is free again at once. */
    void *ctx = zmq_ctx_new();
    for (int i = 0; i < 30; i++) {
        assert_rc(gbx_zap_start(ctx, reg, &zap), GBX_OK);
        gbx_zap_destroy(&zap);
    }
    /* ... and the last one still serves. */
    assert_rc(gbx_zap_start(ctx, reg, &zap), GBX_OK);
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int zero = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(req, GBX_ZAP_ENDPOINT), 0);
    s_send_part(req, "1.0", 0);
    char r[6][128];
    size_t lens[6];
    s_recv_reply("after restarts", req, r, lens);
    assert_string_equal(r[2], "500");
    zmq_close(req);
    gbx_zap_destroy(&zap);
    assert_int_equal(zmq_ctx_term(ctx), 0);
    gbx_registry_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agency_admitted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_node_admitted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_null_mechanism_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_counters, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_domains, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_raw_requests, s_setup, s_teardown),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
