/*  test_client_live: libgbx and gbx-send against the real gbxd binary
    (GBXD_PATH), with real RocksDB, ZeroMQ over TCP loopback and CurveZMQ.
    Setup writes the demo configuration into a fresh directory, moves
    listen.adapter to a free port and starts gbxd -c on it; the client is
    gd.qh-amr with its keys from DIR/keys, the node key DIR/keys/demo-1.pub.

      accept        blocking send to hk.cr: Accepted, receipt verified by
                    the library and kept
      duplicate     the same message again: Accepted duplicate, same receipt
      pipelined     N submits (1000; 50 with GBX_TEST_QUICK) all Accepted
      batch         N messages under one batch signature, all Accepted
      unknown_dest  an agency the client knows but the node does not:
                    Rejected UNKNOWN_DESTINATION
      gbx_send      the gbx-send binary (GBXSEND_PATH): exit 0, one
                    "accepted" line per message
    Every wait is bounded; teardown SIGKILLs gbxd. */
#include "tu_cmocka.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#include "config.h"
#include "gbx/client.h"
#include "gbx/receipt.h"

#ifndef GBXD_PATH
#error "GBXD_PATH must be defined (tests/adapters/CMakeLists.txt)"
#endif
#ifndef GBXSEND_PATH
#error "GBXSEND_PATH must be defined (tests/adapters/CMakeLists.txt)"
#endif

typedef struct {
    char *dir;
    char *cfg;
    int port;
    char endpoint[64];
    pid_t pid;
    gbx_config_t *config;
    gbx_identity_t *me;
    gbx_identity_t *stranger;
    gbx_pubid_t node;
    gbx_client_t *c;
    pid_t pid2;
    gbx_msg_t *first;
    uint8_t *receipt;
    size_t receipt_len;
} s_lv_t;

/*  Rewrites the listen.adapter line of the generated config. */
static void s_set_port(s_lv_t *lv)
{
    size_t len = 0;
    char *text = (char *)tu_read_file(lv->cfg, &len);
    assert_non_null(text);
    const char *old = "adapter: tcp://127.0.0.1:7400\n  metrics: 127.0.0.1:9400";
    char *at = strstr(text, old);
    assert_non_null(at);
    char *out = NULL;
    assert_true(asprintf(&out, "%.*sadapter: %s\n  metrics: off%s", (int)(at - text), text,
                         lv->endpoint, at + strlen(old)) > 0);
    assert_int_equal(tu_write_file(lv->cfg, out, strlen(out), 0600), 0);
    free(out);
    free(text);
}

/*  Starts gbxd -c CFG and waits (at most 5 s) until it listens. */
static void s_start(s_lv_t *lv)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO); /* the banner; logs stay on stderr */
        execl(GBXD_PATH, "gbxd", "-c", lv->cfg, (char *)NULL);
        _exit(127);
    }
    lv->pid = pid;
    for (int i = 0; i < 100; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            lv->pid = 0;
            fail_msg("gbxd exited during start-up (status %d)", status);
        }
        if (tu_port_open(lv->port))
            return;
        tu_sleep_ms(50);
    }
    fail_msg("gbxd did not listen on %s within 5 s", lv->endpoint);
}

static void s_kill(s_lv_t *lv)
{
    if (lv->pid > 0) {
        kill(lv->pid, SIGKILL);
        waitpid(lv->pid, NULL, 0);
        lv->pid = 0;
    }
}

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    s_lv_t *lv = arg;
    if (strcmp(id, "gd.stranger") == 0)
        return gbx_identity_public(lv->stranger);
    const gbx_agency_t *a = gbx_registry_agency(gbx_config_registry(lv->config), id);
    return a ? &a->pub : NULL;
}

static int s_count(void)
{
    const char *q = getenv("GBX_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0 ? 50 : 1000;
}

static int s_group_setup(void **state)
{
    assert_true(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    s_lv_t *lv = calloc(1, sizeof *lv);
    assert_non_null(lv);
    *state = lv;
    lv->dir = tu_tmpdir();
    char *home = NULL, *p = NULL;
    assert_true(asprintf(&home, "%s/home", lv->dir) > 0);
    assert_rc(gbx_config_write_default(home, &lv->cfg), GBX_OK);
    assert_int_equal(tu_policy_open(home), 0); /* delivery mechanics, not policy */
    lv->port = tu_free_port();
    assert_true(lv->port > 0);
    snprintf(lv->endpoint, sizeof lv->endpoint, "tcp://127.0.0.1:%d", lv->port);
    s_set_port(lv);
    char err[256];
    assert_rc(gbx_config_load(lv->cfg, &lv->config, err, sizeof err), GBX_OK);
    assert_true(asprintf(&p, "%s/keys/gd.qh-amr.secret", home) > 0);
    assert_rc(gbx_identity_load(p, &lv->me), GBX_OK);
    free(p);
    assert_true(asprintf(&p, "%s/keys/demo-1.pub", home) > 0);
    assert_rc(gbx_pubid_load(p, &lv->node), GBX_OK);
    free(p);
    free(home);
    assert_rc(gbx_identity_generate("gd.stranger", &lv->stranger), GBX_OK);
    s_start(lv);
    gbx_client_opts_t o = {.endpoint = lv->endpoint,
                           .identity = lv->me,
                           .node = &lv->node,
                           .peer = s_peer,
                           .peer_arg = lv};
    assert_rc(gbx_client_new(&o, &lv->c), GBX_OK);
    return 0;
}

static int s_group_teardown(void **state)
{
    s_lv_t *lv = *state;
    if (!lv)
        return 0;
    gbx_client_destroy(&lv->c);
    s_kill(lv);
    gbx_msg_destroy(&lv->first);
    gbx_identity_destroy(&lv->me);
    gbx_identity_destroy(&lv->stranger);
    gbx_config_destroy(&lv->config);
    free(lv->receipt);
    free(lv->cfg);
    if (lv->dir)
        tu_rmtree_path(lv->dir);
    free(lv->dir);
    free(lv);
    return 0;
}

static void s_header(gbx_header_t *h, const char *to)
{
    gbx_header_init(h);
    h->to_agency = (char *)to;
    h->service_code = "HK-CR-COEXTRACT";
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = "MARKET-SUPERVISION";
}

static void test_accept(void **state)
{
    s_lv_t *lv = *state;
    gbx_header_t h;
    s_header(&h, "hk.cr");
    assert_rc(gbx_client_msg(lv->c, &h, "{\"company\":\"2875113\"}", 21, &lv->first), GBX_OK);
    gbx_event_t ev;
    gbx_err_t rc = gbx_client_send(lv->c, lv->first, 10000, &ev);
    if (rc != GBX_OK)
        fail_msg("send: %s %s", gbx_err_name(rc), ev.detail);
    assert_int_equal(ev.kind, GBX_EV_ACCEPTED);
    assert_int_equal(ev.duplicate, 0);
    assert_true(ev.sequence > 0);
    assert_memory_equal(ev.message_id, gbx_msg_id(lv->first), GBX_MSG_ID_BYTES);
    /* the kept bytes are a SignedReceipt that verifies */
    Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, ev.receipt_len, ev.receipt);
    assert_non_null(sr);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify(sr, &lv->node, &r), GBX_OK);
    assert_rc(gbx_receipt_check(r, gbx_msg_envelope(lv->first), "demo-1"), GBX_OK);
    gbx__v1__receipt__free_unpacked(r, NULL);
    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    lv->receipt = ev.receipt;
    lv->receipt_len = ev.receipt_len;
    ev.receipt = NULL;
    gbx_event_clear(&ev);
}

static void test_duplicate(void **state)
{
    s_lv_t *lv = *state;
    assert_non_null(lv->receipt);
    gbx_event_t ev;
    assert_rc(gbx_client_send(lv->c, lv->first, 10000, &ev), GBX_OK);
    assert_int_equal(ev.duplicate, 1);
    assert_int_equal(ev.receipt_len, lv->receipt_len);
    assert_memory_equal(ev.receipt, lv->receipt, lv->receipt_len);
    gbx_event_clear(&ev);
}

/*  Submits MSGS[0..n-1] and waits for n answers; returns the accepted count. */
static int s_submit_all(s_lv_t *lv, gbx_msg_t **msgs, int n)
{
    for (int i = 0; i < n; i++)
        assert_rc(gbx_client_submit(lv->c, &msgs[i], NULL), GBX_OK);
    int answered = 0, accepted = 0;
    while (answered < n) {
        gbx_event_t ev;
        assert_rc(gbx_client_poll(lv->c, 20000, &ev), GBX_OK);
        if (ev.kind == GBX_EV_ACCEPTED || ev.kind == GBX_EV_REJECTED) {
            answered++;
            accepted += ev.kind == GBX_EV_ACCEPTED && !ev.duplicate;
        }
        gbx_event_clear(&ev);
    }
    assert_int_equal(gbx_client_pending(lv->c), 0);
    return accepted;
}

static void test_pipelined(void **state)
{
    s_lv_t *lv = *state;
    int n = s_count();
    gbx_msg_t **msgs = calloc((size_t)n, sizeof *msgs);
    assert_non_null(msgs);
    gbx_header_t h;
    s_header(&h, "hk.cr");
    for (int i = 0; i < n; i++)
        assert_rc(gbx_client_msg(lv->c, &h, "x", 1, &msgs[i]), GBX_OK);
    assert_int_equal(s_submit_all(lv, msgs, n), n);
    free(msgs);
}

static void test_batch(void **state)
{
    s_lv_t *lv = *state;
    int n = s_count() / 10;
    gbx_msg_t **msgs = calloc((size_t)n, sizeof *msgs);
    const gbx_header_t **hs = calloc((size_t)n, sizeof *hs);
    const void **ps = calloc((size_t)n, sizeof *ps);
    size_t *ls = calloc((size_t)n, sizeof *ls);
    assert_true(msgs && hs && ps && ls);
    gbx_header_t h;
    s_header(&h, "hk.cr");
    for (int i = 0; i < n; i++)
        hs[i] = &h, ps[i] = "batch", ls[i] = 5;
    assert_rc(gbx_client_msg_batch(lv->c, hs, ps, ls, (size_t)n, msgs), GBX_OK);
    assert_true(gbx_envelope_is_batch(gbx_msg_envelope(msgs[0])));
    assert_int_equal(s_submit_all(lv, msgs, n), n);
    free(msgs);
    free(hs);
    free(ps);
    free(ls);
}

static void test_unknown_dest(void **state)
{
    s_lv_t *lv = *state;
    gbx_header_t h;
    s_header(&h, "gd.stranger");
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(lv->c, &h, "x", 1, &m), GBX_OK);
    gbx_event_t ev;
    assert_rc(gbx_client_send(lv->c, m, 10000, &ev), GBX_E_UNKNOWN_DESTINATION);
    assert_int_equal(ev.kind, GBX_EV_REJECTED);
    assert_rc(ev.reason, GBX_E_UNKNOWN_DESTINATION);
    assert_memory_equal(ev.message_id, gbx_msg_id(m), GBX_MSG_ID_BYTES);
    gbx_event_clear(&ev);
    gbx_msg_destroy(&m);
}

static void test_gbx_send(void **state)
{
    s_lv_t *lv = *state;
    char *payload = NULL, *out = NULL;
    assert_true(asprintf(&payload, "%s/payload.json", lv->dir) > 0);
    assert_true(asprintf(&out, "%s/send.out", lv->dir) > 0);
    assert_int_equal(tu_write_file(payload, "{\"q\":1}", 7, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, STDOUT_FILENO);
        execl(GBXSEND_PATH, "gbx-send", "-c", lv->cfg, "--as", "gd.qh-amr", "--to", "hk.cr",
              "--service", "HK-CR-COEXTRACT", "--file", payload, "--count", "5", "--pipeline", "3",
              "--timeout-ms", "10000", (char *)NULL);
        _exit(127);
    }
    lv->pid2 = pid;
    int st = -1;
    for (int i = 0; i < 1500 && waitpid(pid, &st, WNOHANG) != pid; i++)
        tu_sleep_ms(20);
    lv->pid2 = 0;
    if (!WIFEXITED(st)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("gbx-send did not exit within 30 s");
    }
    assert_int_equal(WEXITSTATUS(st), 0);
    size_t len = 0;
    char *text = (char *)tu_read_file(out, &len);
    assert_non_null(text);
    int lines = 0;
    for (char *at = text; (at = strstr(at, "accepted id=")); at++)
        lines++;
    assert_int_equal(lines, 5);
    free(text);
    free(payload);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept),       cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_pipelined),    cmocka_unit_test(test_batch),
        cmocka_unit_test(test_unknown_dest), cmocka_unit_test(test_gbx_send),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
