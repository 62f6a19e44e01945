/*  test_control_live: the operators' control socket (broker/control.h,
    docs/control.md) of the real gbxd (GBXD_PATH, a child process), spoken
    by the test itself: a ZeroMQ DEALER, CurveZMQ client of the node's key
    (node demo-1's curve_pk from the registry) with the operator's keys
    (gbx_identity_load of DIR/h/keys/<id>.secret), one JSON request
    {"tag", "cmd", "args"} and its one JSON answer, parsed with jansson.

    Setup writes the demo configuration (gbx_config_write_default: the
    sample policy beside it as policy.yaml, operators op.admin, op.approver
    and op.viewer) into a fresh directory under /tmp (always /tmp, never
    $TMPDIR: listen.control, DIR/h/gbxd.ctl by default, is a unix socket
    path, at most 107 bytes), moves listen.adapter to a free loopback port
    and starts gbxd -c on it with its stderr in DIR/gbxd.log. hk.kiosk (the
    sender) and gd.tax (the recipient) are libgbx clients with credit and
    200 ms heartbeats, pumped while the test waits for anything, so that
    hk.kiosk's Notices and gd.tax's deliveries are seen. A held message is
    the sample's paycert request hk.kiosk -> gd.tax (GD-SI-PAYCERT,
    SENSITIVE_PERSONAL, SI-CERT, GBA_STANDARD_CONTRACT GBA-SC-2024-0193,
    SEPARATE_CONSENT with its reference, impact and end-user references)
    marked RESTRICTED with a release authority reference: rule
    sp-hk-gd-paycert-request allows it, the built-in RESTRICTED check holds it.

    The tests run in order against the same data dir:
      roles         every operator's status names it and its role; op.viewer
                    may status, policy.show, policy.check, holds.list and
                    gets NOT_AUTHORIZED (and a GBX-CONTROL-REFUSED line) for
                    holds.approve, holds.reject, policy.reload; op.approver
                    may approve and reject (NOT_FOUND for an id nobody
                    holds: past the role check) but not reload; op.admin may
                    all (reload of the unchanged file: ok, same hash). Not
                    JSON and an unknown command: BAD_REQUEST. Every answer
                    carries the request's tag.
      zap_refused   hk.kiosk's key, the node's own key and a fresh key: no
                    answer at all within 1 s (ZAP refuses the handshake);
                    gbxd then still answers op.viewer
      policy_check  the paycert request: ALLOW, rule sp-hk-gd-paycert-request
                    v1, policy_hash = BLAKE2b-256 of policy.yaml, counters
                    listed; the same RESTRICTED with a release reference:
                    HOLD; without consent: DENY POLICY_DENIED, why names the
                    rule; hk.kiosk -> hk.dpo XB-STATS-MONTHLY (no rule
                    matches): DENY POLICY_NO_MATCH, no rule; without service
                    or with an unknown enum name: BAD_REQUEST
      hold_approve  the held paycert request: Accepted, receipt (verified
                    with the node's keys) status HELD; holds.list shows it
                    (message id, receipt's seq, from, to); gd.tax gets nothing
                    in 1 s; op.approver approves with a comment: ok, decision
                    "approved"; gd.tax gets it once (acked, nothing more in
                    1 s); approving again: NOT_FOUND; hk.kiosk gets no Notice
      hold_reject   another held one; reject without comment and with an
                    empty one: BAD_REQUEST, still held; with a comment: ok,
                    decision "rejected"; hk.kiosk gets a Notice HOLD_REJECTED
                    for its id; gd.tax gets nothing; holds.list no longer
                    shows it; rejecting again: NOT_FOUND
      reload        policy.yaml with a misspelt service (GD-SI-PAYCRT),
                    policy.reload as op.admin: POLICY_INVALID whose detail
                    has "policy.yaml:LINE:COL:" at the bad scalar; policy.show
                    keeps the old hash; policy.yaml = the sample with a new
                    version: ok with the new version and hash, which
                    policy.show and status then show (GBX-POLICY-LOADED
                    by=op.admin in the log)
      hold_timeout  gbxd restarted (SIGTERM, exit 0) with
                    limits.hold_timeout_ms: 2s; a held message nobody
                    decides: holds.list shows until_ms within 2 s (+ slack)
                    of its acceptance; Notice HOLD_TIMEOUT to hk.kiosk not
                    before 2 s and within 15 s; holds.list empty; approving
                    it now: NOT_FOUND; gd.tax got nothing
      audit         SIGTERM: exit 0; the data dir opened with gbx_store_open,
                    GBX_KS_AUDIT read: HELD for each of the three messages;
                    exactly one HOLD_APPROVED (by=op.approver, the comment)
                    for the approved one; HOLD_REJECTED (reason=HOLD_REJECTED,
                    by=op.approver, the comment) for the rejected one;
                    HOLD_TIMEOUT (reason=HOLD_TIMEOUT, by=gbxd, no comment)
                    for the third; POLICY_LOADED by=op.admin with the new
                    policy's hash
    Every wait is bounded; group teardown SIGKILLs the child if it lives.
    GBX_TEST_KEEP=1 keeps the directory. */
#include "tu_cmocka.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "gbx/client.h"
#include "gbx/identity.h"
#include "gbx/receipt.h"
#include "policy.h"
#include "registry.h"
#include "store.h"
#include "tb_fixture.h"
#include "tb_gbxd.h"

#ifndef GBXD_PATH
#error "GBXD_PATH must be defined (tests/broker/CMakeLists.txt)"
#endif

#define S_NODE            "demo-1"
#define S_PING_MS         200   /* libgbx heartbeats */
#define S_WAIT_MS         10000 /* an answer, a delivery */
#define S_CTL_MS          10000 /* a control answer */
#define S_REFUSED_MS      1000  /* how long a refused key waits for nothing */
#define S_QUIET_MS        1000  /* how long "nothing arrives" is watched */
#define S_HOLD_MS         2000  /* limits.hold_timeout_ms of the timeout case */
#define S_TIMEOUT_MS      15000 /* the HOLD_TIMEOUT notice, at most */
#define S_APPROVE_COMMENT "release authority REL-7 checked"
#define S_REJECT_COMMENT  "no release authority on file"
#define S_HEX_LEN         (2 * GBX_MSG_ID_BYTES + 1)
#define S_START_MS        10000 /* gbxd listening */
#define S_STOP_MS         10000 /* gbxd's clean exit after SIGTERM */
#define S_LOG_MS          5000  /* a line in gbxd's log */

static const char s_limits_default[] = "";
static const char s_limits_timeout[] = "  hold_timeout_ms: 2s\n";

/*  A libgbx client and the events it got that were not taken yet. */
typedef struct {
    gbx_client_t *c;
    gbx_event_t *evs;
    size_t nev, capev;
} s_cli_t;

typedef struct {
    char *dir;
    char *home;
    tb_gbxd_t gd; /* its stderr in DIR/gbxd.log */
    char *policy; /* DIR/h/policy.yaml */
    char ctl_ep[160];
    const char *limits; /* of the running gbxd */
    void *ctx;          /* the control sockets' */
    json_int_t tag;
    gbx_config_t *config;
    gbx_pubid_t node;
    gbx_identity_t *admin, *approver, *viewer, *kiosk_id, *tax_id, *node_id;
    s_cli_t *kiosk, *tax;
    uint8_t hash[GBX_HASH_BYTES];     /* policy.yaml as written */
    uint8_t new_hash[GBX_HASH_BYTES]; /* after test_reload */
    int reloaded;
    size_t rules; /* of the sample */
    /* the held messages of the hold tests, for the audit */
    char approved[S_HEX_LEN], rejected[S_HEX_LEN], timed_out[S_HEX_LEN];
} s_lv_t;

/* ---------------------------------------------------------------- helpers */

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_hex(const uint8_t *bin, size_t len, char *out, size_t cap)
{
    sodium_bin2hex(out, cap, bin, len);
}

static gbx_identity_t *s_load(const s_lv_t *lv, const char *id)
{
    char *p = NULL;
    gbx_identity_t *idn = NULL;
    assert_true(asprintf(&p, "%s/keys/%s.secret", lv->home, id) > 0);
    assert_rc(gbx_identity_load(p, &idn), GBX_OK);
    free(p);
    return idn;
}

/* ------------------------------------------------------------------- gbxd */

/*  gbxd running with LIMITS (lines added at the top of the limits: section). */
static void s_use(s_lv_t *lv, const char *limits)
{
    if (lv->gd.pid > 0 && lv->limits == limits)
        return;
    tb_gbxd_term(&lv->gd, S_STOP_MS);
    char *with = NULL;
    assert_true(asprintf(&with, "limits:\n%s", limits) > 0);
    tb_gbxd_write(&lv->gd, "limits:\n", with);
    free(with);
    lv->limits = limits;
    tb_gbxd_start(&lv->gd, S_START_MS);
}

/* ---------------------------------------------------------------- clients */

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    s_lv_t *lv = arg;
    const gbx_agency_t *a = gbx_registry_agency(gbx_config_registry(lv->config), id);
    return a ? &a->pub : NULL;
}

static void s_cli_free(s_cli_t **kp)
{
    s_cli_t *k = *kp;
    if (!k)
        return;
    gbx_client_destroy(&k->c);
    for (size_t i = 0; i < k->nev; i++)
        gbx_event_clear(&k->evs[i]);
    free(k->evs);
    free(k);
    *kp = NULL;
}

/*  Runs both clients' protocol for MS (at least one round). */
static void s_pump(s_lv_t *lv, int ms)
{
    uint64_t end = s_mono_ms() + (uint64_t)(ms > 0 ? ms : 0);
    s_cli_t *all[2] = {lv->kiosk, lv->tax};
    do {
        zmq_pollitem_t items[4];
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (all[i]) {
                items[n++] = (zmq_pollitem_t){gbx_client_socket(all[i]->c), 0, ZMQ_POLLIN, 0};
                items[n++] = (zmq_pollitem_t){gbx_client_monitor(all[i]->c), 0, ZMQ_POLLIN, 0};
            }
        uint64_t now = s_mono_ms();
        long wait = now < end ? (long)(end - now) : 0;
        if (wait > 10)
            wait = 10;
        if (n)
            zmq_poll(items, n, wait);
        else if (wait)
            tu_sleep_ms(wait);
        for (int i = 0; i < 2; i++) {
            s_cli_t *k = all[i];
            if (!k)
                continue;
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
        }
    } while (s_mono_ms() < end);
}

/*  Takes the first event of KIND of K into *OUT, pumping for at most MS;
    0 when none came. */
static int s_take(s_lv_t *lv, s_cli_t *k, gbx_event_kind_t kind, int ms, gbx_event_t *out)
{
    uint64_t end = s_mono_ms() + (uint64_t)ms;
    for (;;) {
        for (size_t i = 0; i < k->nev; i++)
            if (k->evs[i].kind == kind) {
                *out = k->evs[i];
                memmove(&k->evs[i], &k->evs[i + 1], (k->nev - i - 1) * sizeof *k->evs);
                k->nev--;
                return 1;
            }
        if (s_mono_ms() >= end)
            return 0;
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

static s_cli_t *s_client(s_lv_t *lv, const gbx_identity_t *idn)
{
    s_cli_t *k = calloc(1, sizeof *k);
    assert_non_null(k);
    gbx_client_opts_t o = {.endpoint = lv->gd.endpoint,
                           .identity = idn,
                           .node = &lv->node,
                           .peer = s_peer,
                           .peer_arg = lv,
                           .heartbeat_ivl_ms = S_PING_MS};
    assert_rc(gbx_client_new(&o, &k->c), GBX_OK); /* its own ZeroMQ context */
    return k;
}

/*  hk.kiosk and gd.tax connected (a session each) unless they are. */
static void s_clients_up(s_lv_t *lv)
{
    if (lv->kiosk && lv->tax)
        return;
    lv->kiosk = s_client(lv, lv->kiosk_id);
    lv->tax = s_client(lv, lv->tax_id);
    gbx_event_t ev;
    if (!s_take(lv, lv->kiosk, GBX_EV_CONNECTED, S_WAIT_MS, &ev))
        fail_msg("hk.kiosk did not connect within %d ms", S_WAIT_MS);
    gbx_event_clear(&ev);
    if (!s_take(lv, lv->tax, GBX_EV_CONNECTED, S_WAIT_MS, &ev))
        fail_msg("gd.tax did not connect within %d ms", S_WAIT_MS);
    gbx_event_clear(&ev);
}

static void s_clients_down(s_lv_t *lv)
{
    s_cli_free(&lv->kiosk);
    s_cli_free(&lv->tax);
}

/*  Sends the held paycert request from hk.kiosk: Accepted, receipt (verified
    with the node's keys) status HELD. ID gets its hex id, *SEQ the
    receipt's sequence, *ACCEPTED_AT the receipt's time. */
static void s_send_held(s_lv_t *lv, char id[S_HEX_LEN], uint64_t *seq, uint64_t *accepted_at)
{
    gbx_header_t h;
    gbx_header_init(&h);
    h.to_agency = "gd.tax";
    h.service_code = "GD-SI-PAYCERT";
    h.service_version = 1;
    h.kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h.data_class = GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL;
    h.hk_marking = GBX__V1__HK_MARKING__RESTRICTED;
    h.purpose_code = "SI-CERT";
    h.legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h.legal_route_ref = "GBA-SC-2024-0193";
    h.consent_type = GBX__V1__CONSENT_TYPE__SEPARATE_CONSENT;
    h.consent_ref = "PA-2026-55120";
    h.impact_assessment_ref = "PIA-GD-2025-031";
    h.end_user_ref = "iamsmart:5f3c9a";
    h.release_authority_ref = "REL-7";
    h.subject_count = 1;
    static const char q[] = "{\"hkid\":\"A1234567\",\"months\":12}";
    gbx_msg_t *m = NULL;
    assert_rc(gbx_client_msg(lv->kiosk->c, &h, q, strlen(q), &m), GBX_OK);
    s_hex(gbx_msg_id(m), GBX_MSG_ID_BYTES, id, S_HEX_LEN);
    gbx_event_t ev;
    gbx_err_t rc = gbx_client_send(lv->kiosk->c, m, S_WAIT_MS, &ev);
    gbx_msg_destroy(&m);
    if (rc != GBX_OK)
        fail_msg("held paycert request: %s %s", gbx_err_name(rc), ev.detail);
    assert_int_equal(ev.kind, GBX_EV_ACCEPTED);
    assert_int_equal(ev.duplicate, 0);
    assert_int_equal(ev.held, 1);
    assert_non_null(ev.receipt);
    Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, ev.receipt_len, ev.receipt);
    assert_non_null(sr);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify(sr, &lv->node, &r), GBX_OK);
    if (r->status != GBX__V1__RECEIPT_STATUS__HELD)
        fail_msg("receipt status %d, want HELD (%d)", (int)r->status,
                 (int)GBX__V1__RECEIPT_STATUS__HELD);
    gbx__v1__receipt__free_unpacked(r, NULL);
    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    *seq = ev.sequence;
    if (accepted_at)
        *accepted_at = ev.accepted_at_ms;
    gbx_event_clear(&ev);
}

/* ---------------------------------------------------------------- control */

/*  Sends TEXT on a fresh DEALER with the keys PK / SK and waits at most
    WAIT_MS for one answer (pumping the clients meanwhile); the answer
    parsed, or NULL when none came. */
static json_t *s_call_text(s_lv_t *lv, const uint8_t *pk, const uint8_t *sk, const char *text,
                           int wait_ms)
{
    void *sock = zmq_socket(lv->ctx, ZMQ_DEALER);
    assert_non_null(sock);
    int zero = 0, sndtimeo = 1000;
    assert_int_equal(zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo), 0);
    assert_int_equal(zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, lv->node.curve_pk, GBX_KEY_BYTES),
                     0);
    assert_int_equal(zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pk, GBX_KEY_BYTES), 0);
    assert_int_equal(zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sk, GBX_KEY_BYTES), 0);
    assert_int_equal(zmq_connect(sock, lv->ctl_ep), 0);
    if (zmq_send(sock, text, strlen(text), 0) != (int)strlen(text))
        fail_msg("control send: %s", zmq_strerror(errno));
    json_t *ans = NULL;
    uint64_t end = s_mono_ms() + (uint64_t)wait_ms;
    for (;;) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10) > 0) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            assert_true(zmq_msg_recv(&m, sock, 0) >= 0);
            assert_false(zmq_msg_more(&m));
            json_error_t jerr;
            ans = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, &jerr);
            if (!ans)
                fail_msg("control answer is not JSON: %s: %.*s", jerr.text, (int)zmq_msg_size(&m),
                         (const char *)zmq_msg_data(&m));
            zmq_msg_close(&m);
            break;
        }
        s_pump(lv, 0);
        if (s_mono_ms() >= end)
            break;
    }
    zmq_close(sock);
    return ans;
}

/*  {"tag", "cmd": CMD, "args": ARGS (stolen; NULL: {})} as PK / SK; the
    answer (its tag checked) or NULL after WAIT_MS. */
static json_t *s_call_keys(s_lv_t *lv, const uint8_t *pk, const uint8_t *sk, const char *cmd,
                           json_t *args, int wait_ms)
{
    json_int_t tag = ++lv->tag;
    json_t *req =
        json_pack("{s:I, s:s, s:o}", "tag", tag, "cmd", cmd, "args", args ? args : json_object());
    assert_non_null(req);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(text);
    json_t *ans = s_call_text(lv, pk, sk, text, wait_ms);
    free(text);
    if (ans) {
        json_t *t = json_object_get(ans, "tag");
        if (!json_is_integer(t) || json_integer_value(t) != tag)
            fail_msg("%s: answer's tag is not %lld", cmd, (long long)tag);
        assert_true(json_is_boolean(json_object_get(ans, "ok")));
    }
    return ans;
}

/*  CMD as operator OP (ARGS stolen): the answer, which must come. */
static json_t *s_call(s_lv_t *lv, const gbx_identity_t *op, const char *cmd, json_t *args)
{
    json_t *ans = s_call_keys(lv, gbx_identity_public(op)->curve_pk, gbx_identity_curve_sk(op), cmd,
                              args, S_CTL_MS);
    if (!ans)
        fail_msg("%s as %s: no answer within %d ms", cmd, gbx_identity_public(op)->id, S_CTL_MS);
    return ans;
}

/*  CMD as OP must succeed: its data (caller json_decrefs the returned
    answer through *ANS). */
static json_t *s_ok(s_lv_t *lv, const gbx_identity_t *op, const char *cmd, json_t *args,
                    json_t **ans)
{
    *ans = s_call(lv, op, cmd, args);
    if (!json_is_true(json_object_get(*ans, "ok")))
        fail_msg("%s as %s: %s: %s", cmd, gbx_identity_public(op)->id,
                 json_string_value(json_object_get(*ans, "error")),
                 json_string_value(json_object_get(*ans, "detail")));
    json_t *data = json_object_get(*ans, "data");
    assert_true(json_is_object(data));
    return data;
}

static void s_ok_drop(s_lv_t *lv, const gbx_identity_t *op, const char *cmd, json_t *args)
{
    json_t *ans = NULL;
    (void)s_ok(lv, op, cmd, args, &ans);
    json_decref(ans);
}

/*  CMD as OP must fail with ERROR; its detail copied into DETAIL (may be
    NULL, CAP bytes). */
static void s_err(s_lv_t *lv, const gbx_identity_t *op, const char *cmd, json_t *args,
                  const char *error, char *detail, size_t cap)
{
    json_t *ans = s_call(lv, op, cmd, args);
    const char *got = json_string_value(json_object_get(ans, "error"));
    const char *det = json_string_value(json_object_get(ans, "detail"));
    if (json_is_true(json_object_get(ans, "ok")) || !got || strcmp(got, error) != 0)
        fail_msg("%s as %s: ok=%d error=%s (%s), want %s", cmd, gbx_identity_public(op)->id,
                 json_is_true(json_object_get(ans, "ok")), got ? got : "-", det ? det : "-", error);
    assert_non_null(det);
    if (detail)
        snprintf(detail, cap, "%s", det);
    json_decref(ans);
}

static const char *s_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no string \"%s\" in the answer", key);
    return s;
}

static json_int_t s_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("no integer \"%s\" in the answer", key);
    return json_integer_value(v);
}

static json_t *s_id_args(const char *id, const char *comment)
{
    json_t *a = json_pack("{s:s}", "id", id);
    assert_non_null(a);
    if (comment)
        json_object_set_new(a, "comment", json_string(comment));
    return a;
}

/*  The entry of holds.list (as op.viewer) for ID, copied, or NULL; *N gets
    how many are held. */
static json_t *s_held(s_lv_t *lv, const char *id, size_t *n)
{
    json_t *ans = NULL;
    json_t *data = s_ok(lv, lv->viewer, "holds.list", NULL, &ans);
    json_t *holds = json_object_get(data, "holds"), *h, *found = NULL;
    assert_true(json_is_array(holds));
    size_t i;
    json_array_foreach(holds, i, h)
    {
        if (strcmp(s_str(h, "message_id"), id) == 0)
            found = json_deep_copy(h);
    }
    if (n)
        *n = json_array_size(holds);
    json_decref(ans);
    return found;
}

/*  The header args of the sample's paycert request (allowed). */
static json_t *s_paycert_args(void)
{
    json_t *a =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "from", "hk.kiosk",
                  "to", "gd.tax", "service", "GD-SI-PAYCERT", "kind", "REQUEST", "purpose",
                  "SI-CERT", "route", "GBA_STANDARD_CONTRACT", "route_ref", "GBA-SC-2024-0193",
                  "consent", "SEPARATE_CONSENT", "consent_ref", "PA-2026-55120", "impact_ref",
                  "PIA-GD-2025-031", "end_user", "iamsmart:5f3c9a");
    assert_non_null(a);
    return a;
}

static void s_hash_hex(const uint8_t *hash, char out[2 * GBX_HASH_BYTES + 1])
{
    sodium_bin2hex(out, 2 * GBX_HASH_BYTES + 1, hash, GBX_HASH_BYTES);
}

/* ------------------------------------------------------------------ setup */

static int s_group_setup(void **state)
{
    assert_true(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    s_lv_t *lv = calloc(1, sizeof *lv);
    assert_non_null(lv);
    *state = lv;
    lv->dir = strdup("/tmp/gbxctl-XXXXXX"); /* short: see the top */
    assert_non_null(lv->dir);
    assert_non_null(mkdtemp(lv->dir));
    assert_true(asprintf(&lv->home, "%s/h", lv->dir) > 0);
    char *log = NULL;
    assert_true(asprintf(&log, "%s/gbxd.log", lv->dir) > 0);
    assert_true(asprintf(&lv->policy, "%s/policy.yaml", lv->home) > 0);
    tb_gbxd_home(&lv->gd, GBXD_PATH, lv->home, log);
    free(log);

    size_t len = 0;
    uint8_t *pol = tu_read_file(lv->policy, &len);
    assert_non_null(pol);
    assert_int_equal(len, gbx_policy_sample_len);
    crypto_generichash(lv->hash, sizeof lv->hash, pol, len, NULL, 0);
    free(pol);

    assert_non_null(strstr(lv->gd.text, "limits:\n"));

    char err[512] = "";
    gbx_err_t rc = gbx_config_load(lv->gd.cfg, &lv->config, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s: %s", lv->gd.cfg, gbx_err_name(rc), err);
    const char *ctl = gbx_config_str(lv->config, GBX_SETTING_LISTEN_CONTROL);
    assert_non_null(ctl);
    assert_true(strlen(ctl) < 108);
    snprintf(lv->ctl_ep, sizeof lv->ctl_ep, "ipc://%s", ctl);
    /* the CURVE server key: node demo-1's, from the registry */
    const gbx_node_t *node = gbx_registry_node(gbx_config_registry(lv->config), S_NODE);
    assert_non_null(node);
    lv->node = node->pub;
    gbx_policy_t *sample = NULL;
    rc = gbx_policy_load(lv->policy, gbx_config_registry(lv->config), &sample, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s: %s", lv->policy, gbx_err_name(rc), err);
    assert_memory_equal(gbx_policy_hash(sample), lv->hash, GBX_HASH_BYTES);
    lv->rules = gbx_policy_rule_count(sample);
    gbx_policy_destroy(&sample);

    lv->admin = s_load(lv, "op.admin");
    lv->approver = s_load(lv, "op.approver");
    lv->viewer = s_load(lv, "op.viewer");
    lv->kiosk_id = s_load(lv, "hk.kiosk");
    lv->tax_id = s_load(lv, "gd.tax");
    lv->node_id = s_load(lv, S_NODE);
    lv->ctx = zmq_ctx_new();
    assert_non_null(lv->ctx);
    s_use(lv, s_limits_default);
    return 0;
}

static int s_group_teardown(void **state)
{
    s_lv_t *lv = *state;
    if (!lv)
        return 0;
    s_clients_down(lv);
    tb_gbxd_kill(&lv->gd);
    if (lv->ctx)
        zmq_ctx_term(lv->ctx);
    gbx_identity_destroy(&lv->admin);
    gbx_identity_destroy(&lv->approver);
    gbx_identity_destroy(&lv->viewer);
    gbx_identity_destroy(&lv->kiosk_id);
    gbx_identity_destroy(&lv->tax_id);
    gbx_identity_destroy(&lv->node_id);
    gbx_config_destroy(&lv->config);
    const char *keep = getenv("GBX_TEST_KEEP");
    if (lv->dir && !(keep && *keep && strcmp(keep, "0") != 0))
        tu_rmtree_path(lv->dir);
    else if (lv->dir)
        print_message("kept %s\n", lv->dir);
    tb_gbxd_free(&lv->gd);
    free(lv->policy);
    free(lv->home);
    free(lv->dir);
    free(lv);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_roles(void **state)
{
    s_lv_t *lv = *state;
    tb_gbxd_alive(&lv->gd);
    static const char *const fake = "00112233445566778899aabbccddeeff";
    struct {
        const gbx_identity_t *op;
        const char *id, *role;
    } ops[] = {{lv->viewer, "op.viewer", "viewer"},
               {lv->approver, "op.approver", "approver"},
               {lv->admin, "op.admin", "admin"}};
    char hex[2 * GBX_HASH_BYTES + 1];
    s_hash_hex(lv->hash, hex);
    for (size_t i = 0; i < 3; i++) {
        json_t *ans = NULL;
        json_t *data = s_ok(lv, ops[i].op, "status", NULL, &ans);
        assert_string_equal(s_str(data, "node"), S_NODE);
        assert_string_equal(s_str(data, "operator"), ops[i].id);
        assert_string_equal(s_str(data, "role"), ops[i].role);
        assert_true(s_int(data, "uptime_ms") >= 0);
        assert_string_equal(s_str(json_object_get(data, "policy"), "hash"), hex);
        json_decref(ans);
        /* what every role may */
        data = s_ok(lv, ops[i].op, "policy.show", NULL, &ans);
        assert_string_equal(s_str(data, "hash"), hex);
        assert_string_equal(s_str(data, "version"), "2026-11-22.1");
        assert_int_equal(s_int(data, "rules"), (json_int_t)lv->rules);
        json_decref(ans);
        s_ok_drop(lv, ops[i].op, "policy.check", s_paycert_args());
        s_ok_drop(lv, ops[i].op, "holds.list", NULL);
    }

    /* the viewer: nothing that changes anything */
    int refused = tb_gbxd_log_count(&lv->gd, "GBX-CONTROL-REFUSED operator=op.viewer");
    s_err(lv, lv->viewer, "holds.approve", s_id_args(fake, "x"), "NOT_AUTHORIZED", NULL, 0);
    s_err(lv, lv->viewer, "holds.reject", s_id_args(fake, "x"), "NOT_AUTHORIZED", NULL, 0);
    s_err(lv, lv->viewer, "policy.reload", NULL, "NOT_AUTHORIZED", NULL, 0);
    /* the approver: decides holds (NOT_FOUND is past the role check), no reload */
    s_err(lv, lv->approver, "holds.approve", s_id_args(fake, NULL), "NOT_FOUND", NULL, 0);
    s_err(lv, lv->approver, "holds.reject", s_id_args(fake, "x"), "NOT_FOUND", NULL, 0);
    s_err(lv, lv->approver, "policy.reload", NULL, "NOT_AUTHORIZED", NULL, 0);
    /* the admin: everything */
    s_err(lv, lv->admin, "holds.approve", s_id_args(fake, NULL), "NOT_FOUND", NULL, 0);
    s_err(lv, lv->admin, "holds.reject", s_id_args(fake, "x"), "NOT_FOUND", NULL, 0);
    json_t *ans = NULL;
    json_t *data = s_ok(lv, lv->admin, "policy.reload", NULL, &ans);
    assert_string_equal(s_str(data, "hash"), hex); /* the same file */
    json_decref(ans);
    tb_gbxd_log_wait(&lv->gd, "GBX-CONTROL-REFUSED operator=op.viewer", refused + 2, S_LOG_MS);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, "GBX-CONTROL-REFUSED operator=op.viewer"),
                     refused + 3);

    /* requests that are not requests */
    const gbx_identity_t *v = lv->viewer;
    ans = s_call_text(lv, gbx_identity_public(v)->curve_pk, gbx_identity_curve_sk(v), "{not json",
                      S_CTL_MS);
    assert_non_null(ans);
    assert_false(json_is_true(json_object_get(ans, "ok")));
    assert_string_equal(s_str(ans, "error"), "BAD_REQUEST");
    json_decref(ans);
    s_err(lv, lv->viewer, "holds.frobnicate", NULL, "BAD_REQUEST", NULL, 0);
    tb_gbxd_alive(&lv->gd);
}

static void test_zap_refused(void **state)
{
    s_lv_t *lv = *state;
    tb_gbxd_alive(&lv->gd);
    uint8_t pk[GBX_KEY_BYTES], sk[GBX_KEY_BYTES];
    crypto_box_keypair(pk, sk); /* a key nobody registered */
    struct {
        const char *who;
        const uint8_t *pk, *sk;
    } keys[] = {
        {"hk.kiosk (an agency)", gbx_identity_public(lv->kiosk_id)->curve_pk,
         gbx_identity_curve_sk(lv->kiosk_id)},
        {"demo-1 (the node)", gbx_identity_public(lv->node_id)->curve_pk,
         gbx_identity_curve_sk(lv->node_id)},
        {"an unknown key", pk, sk},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint64_t t0 = s_mono_ms();
        json_t *ans = s_call_keys(lv, keys[i].pk, keys[i].sk, "status", NULL, S_REFUSED_MS);
        if (ans) {
            char *t = json_dumps(ans, JSON_COMPACT);
            fail_msg("%s got an answer on the control socket: %s", keys[i].who, t ? t : "?");
        }
        assert_true(s_mono_ms() - t0 >= S_REFUSED_MS);
        /* gbxd keeps serving the operators */
        json_t *a2 = NULL;
        json_t *data = s_ok(lv, lv->viewer, "status", NULL, &a2);
        assert_string_equal(s_str(data, "operator"), "op.viewer");
        json_decref(a2);
    }
    tb_gbxd_alive(&lv->gd);
}

static void test_policy_check(void **state)
{
    s_lv_t *lv = *state;
    tb_gbxd_alive(&lv->gd);
    char hex[2 * GBX_HASH_BYTES + 1];
    s_hash_hex(lv->hash, hex);

    /* allowed */
    json_t *ans = NULL;
    json_t *d = s_ok(lv, lv->viewer, "policy.check", s_paycert_args(), &ans);
    assert_string_equal(s_str(d, "outcome"), "ALLOW");
    assert_string_equal(s_str(d, "reason"), "OK");
    assert_string_equal(s_str(d, "rule_id"), "sp-hk-gd-paycert-request");
    assert_int_equal(s_int(d, "rule_version"), 1);
    assert_string_equal(s_str(d, "policy_hash"), hex);
    assert_true(json_array_size(json_object_get(d, "counts")) > 0);
    json_decref(ans);

    /* RESTRICTED with a release reference: held */
    json_t *a = s_paycert_args();
    json_object_set_new(a, "marking", json_string("RESTRICTED"));
    json_object_set_new(a, "release_ref", json_string("REL-7"));
    d = s_ok(lv, lv->viewer, "policy.check", a, &ans);
    assert_string_equal(s_str(d, "outcome"), "HOLD");
    assert_string_equal(s_str(d, "policy_hash"), hex);
    json_decref(ans);

    /* without consent: denied by the rule, which why names */
    a = s_paycert_args();
    json_object_del(a, "consent");
    json_object_del(a, "consent_ref");
    d = s_ok(lv, lv->viewer, "policy.check", a, &ans);
    assert_string_equal(s_str(d, "outcome"), "DENY");
    assert_string_equal(s_str(d, "reason"), "POLICY_DENIED");
    assert_string_equal(s_str(d, "rule_id"), "sp-hk-gd-paycert-request");
    if (!strstr(s_str(d, "why"), "sp-hk-gd-paycert-request"))
        fail_msg("why \"%s\" does not name the rule", s_str(d, "why"));
    assert_int_equal(json_array_size(json_object_get(d, "counts")), 0);
    json_decref(ans);

    /* no rule matches */
    a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "from", "hk.kiosk", "to", "hk.dpo", "service",
                  "XB-STATS-MONTHLY", "kind", "REQUEST", "agreement_ref", "XB-COOP-2024-01");
    d = s_ok(lv, lv->viewer, "policy.check", a, &ans);
    assert_string_equal(s_str(d, "outcome"), "DENY");
    assert_string_equal(s_str(d, "reason"), "POLICY_NO_MATCH");
    assert_string_equal(s_str(d, "rule_id"), "");
    assert_string_equal(s_str(d, "policy_hash"), hex);
    json_decref(ans);

    /* not a header */
    a = s_paycert_args();
    json_object_del(a, "service");
    s_err(lv, lv->viewer, "policy.check", a, "BAD_REQUEST", NULL, 0);
    a = s_paycert_args();
    json_object_set_new(a, "consent", json_string("SORT_OF"));
    s_err(lv, lv->viewer, "policy.check", a, "BAD_REQUEST", NULL, 0);
    tb_gbxd_alive(&lv->gd);
}

static void test_hold_approve(void **state)
{
    s_lv_t *lv = *state;
    tb_gbxd_alive(&lv->gd);
    s_clients_up(lv);
    char id[S_HEX_LEN];
    uint64_t seq = 0;
    s_send_held(lv, id, &seq, NULL);

    json_t *h = s_held(lv, id, NULL);
    if (!h)
        fail_msg("holds.list does not show held message %s", id);
    assert_int_equal(s_int(h, "seq"), (json_int_t)seq);
    assert_string_equal(s_str(h, "from"), "hk.kiosk");
    assert_string_equal(s_str(h, "to"), "gd.tax");
    assert_true(s_int(h, "payload_bytes") > 0);
    assert_true(s_int(h, "until_ms") > (json_int_t)s_now_ms());
    assert_true(s_int(h, "expires_at_ms") >= s_int(h, "until_ms"));
    json_decref(h);

    /* held: nothing for gd.tax */
    s_pump(lv, S_QUIET_MS);
    assert_int_equal(s_count_ev(lv->tax, GBX_EV_DELIVERY), 0);

    json_t *ans = NULL;
    json_t *d = s_ok(lv, lv->approver, "holds.approve", s_id_args(id, S_APPROVE_COMMENT), &ans);
    assert_string_equal(s_str(d, "decision"), "approved");
    assert_string_equal(s_str(d, "message_id"), id);
    assert_int_equal(s_int(d, "seq"), (json_int_t)seq);
    assert_string_equal(s_str(d, "from"), "hk.kiosk");
    assert_string_equal(s_str(d, "to"), "gd.tax");
    json_decref(ans);
    snprintf(lv->approved, sizeof lv->approved, "%s", id);

    /* delivered, once */
    gbx_event_t ev;
    if (!s_take(lv, lv->tax, GBX_EV_DELIVERY, S_WAIT_MS, &ev))
        fail_msg("gd.tax did not get the approved message %s within %d ms", id, S_WAIT_MS);
    char got[S_HEX_LEN];
    assert_int_equal(ev.delivery->header->message_id.len, GBX_MSG_ID_BYTES);
    s_hex(ev.delivery->header->message_id.data, GBX_MSG_ID_BYTES, got, sizeof got);
    assert_string_equal(got, id);
    assert_string_equal(ev.delivery->header->from_agency, "hk.kiosk");
    assert_int_equal(ev.delivery->attempt, 1);
    assert_rc(gbx_client_ack(lv->tax->c, ev.delivery->delivery_id), GBX_OK);
    assert_rc(gbx_client_flush(lv->tax->c), GBX_OK);
    gbx_event_clear(&ev);
    s_pump(lv, S_QUIET_MS);
    assert_int_equal(s_count_ev(lv->tax, GBX_EV_DELIVERY), 0);
    assert_int_equal(s_count_ev(lv->kiosk, GBX_EV_NOTICE), 0);

    /* decided: no longer held */
    s_err(lv, lv->approver, "holds.approve", s_id_args(id, NULL), "NOT_FOUND", NULL, 0);
    h = s_held(lv, id, NULL);
    assert_null(h);
    tb_gbxd_alive(&lv->gd);
}

static void test_hold_reject(void **state)
{
    s_lv_t *lv = *state;
    tb_gbxd_alive(&lv->gd);
    s_clients_up(lv);
    char id[S_HEX_LEN];
    uint64_t seq = 0;
    s_send_held(lv, id, &seq, NULL);
    json_t *h = s_held(lv, id, NULL);
    if (!h)
        fail_msg("holds.list does not show held message %s", id);
    assert_int_equal(s_int(h, "seq"), (json_int_t)seq);
    json_decref(h);

    /* a rejection says why */
    s_err(lv, lv->approver, "holds.reject", s_id_args(id, NULL), "BAD_REQUEST", NULL, 0);
    s_err(lv, lv->approver, "holds.reject", s_id_args(id, ""), "BAD_REQUEST", NULL, 0);
    h = s_held(lv, id, NULL);
    assert_non_null(h); /* still held */
    json_decref(h);

    json_t *ans = NULL;
    json_t *d = s_ok(lv, lv->approver, "holds.reject", s_id_args(id, S_REJECT_COMMENT), &ans);
    assert_string_equal(s_str(d, "decision"), "rejected");
    assert_string_equal(s_str(d, "message_id"), id);
    assert_int_equal(s_int(d, "seq"), (json_int_t)seq);
    json_decref(ans);
    snprintf(lv->rejected, sizeof lv->rejected, "%s", id);

    /* the sender is told */
    gbx_event_t n;
    if (!s_take(lv, lv->kiosk, GBX_EV_NOTICE, S_WAIT_MS, &n))
        fail_msg("hk.kiosk got no Notice for rejected %s within %d ms", id, S_WAIT_MS);
    char got[S_HEX_LEN];
    assert_int_equal(n.message_id_len, GBX_MSG_ID_BYTES);
    s_hex(n.message_id, GBX_MSG_ID_BYTES, got, sizeof got);
    assert_string_equal(got, id);
    if (n.reason != GBX_E_HOLD_REJECTED)
        fail_msg("Notice reason %s, want HOLD_REJECTED", gbx_err_name(n.reason));
    gbx_event_clear(&n);

    /* gone */
    s_pump(lv, S_QUIET_MS);
    assert_int_equal(s_count_ev(lv->tax, GBX_EV_DELIVERY), 0);
    assert_int_equal(s_count_ev(lv->kiosk, GBX_EV_NOTICE), 0);
    h = s_held(lv, id, NULL);
    assert_null(h);
    s_err(lv, lv->approver, "holds.reject", s_id_args(id, S_REJECT_COMMENT), "NOT_FOUND", NULL, 0);
    s_err(lv, lv->approver, "holds.approve", s_id_args(id, NULL), "NOT_FOUND", NULL, 0);
    tb_gbxd_alive(&lv->gd);
}

static void test_reload(void **state)
{
    s_lv_t *lv = *state;
    tb_gbxd_alive(&lv->gd);
    char old[2 * GBX_HASH_BYTES + 1], neu[2 * GBX_HASH_BYTES + 1];
    s_hash_hex(lv->hash, old);

    /* invalid: the first match.service of the paycert request rule, misspelt */
    char *text = strndup(gbx_policy_sample, gbx_policy_sample_len);
    assert_non_null(text);
    char *r = strstr(text, "  - id: sp-hk-gd-paycert-request\n");
    assert_non_null(r);
    const char *svc = "      service: [GD-SI-PAYCERT]\n";
    char *at = strstr(r, svc);
    assert_non_null(at);
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    int col = (int)(strchr(at, '[') - at) + 2; /* the scalar after "[" */
    char *bad = NULL;
    assert_true(asprintf(&bad, "%.*s      service: [GD-SI-PAYCRT]\n%s", (int)(at - text), text,
                         at + strlen(svc)) > 0);
    assert_int_equal(tu_write_file(lv->policy, bad, strlen(bad), 0600), 0);
    free(bad);
    free(text);
    char detail[512], want[64];
    s_err(lv, lv->admin, "policy.reload", NULL, "POLICY_INVALID", detail, sizeof detail);
    snprintf(want, sizeof want, "policy.yaml:%d:%d:", line, col);
    if (!strstr(detail, want))
        fail_msg("POLICY_INVALID detail \"%s\" does not say \"%s\"", detail, want);
    print_message("  POLICY_INVALID: %s\n", detail);
    json_t *ans = NULL;
    json_t *d = s_ok(lv, lv->viewer, "policy.show", NULL, &ans);
    assert_string_equal(s_str(d, "hash"), old);
    assert_string_equal(s_str(d, "version"), "2026-11-22.1");
    json_decref(ans);

    /* valid and changed: a new version */
    text = strndup(gbx_policy_sample, gbx_policy_sample_len);
    assert_non_null(text);
    tb_replace(&text, "version: \"2026-11-22.1\"\n", "version: \"2026-11-22.2-ctl\"\n");
    assert_int_equal(tu_write_file(lv->policy, text, strlen(text), 0600), 0);
    crypto_generichash(lv->new_hash, GBX_HASH_BYTES, (const unsigned char *)text, strlen(text),
                       NULL, 0);
    free(text);
    s_hash_hex(lv->new_hash, neu);
    assert_string_not_equal(neu, old);
    int loaded = tb_gbxd_log_count(&lv->gd, "GBX-POLICY-LOADED by=op.admin");
    d = s_ok(lv, lv->admin, "policy.reload", NULL, &ans);
    assert_string_equal(s_str(d, "hash"), neu);
    assert_string_equal(s_str(d, "version"), "2026-11-22.2-ctl");
    json_decref(ans);
    lv->reloaded = 1;
    d = s_ok(lv, lv->viewer, "policy.show", NULL, &ans);
    assert_string_equal(s_str(d, "hash"), neu);
    assert_string_equal(s_str(d, "version"), "2026-11-22.2-ctl");
    json_decref(ans);
    d = s_ok(lv, lv->viewer, "status", NULL, &ans);
    assert_string_equal(s_str(json_object_get(d, "policy"), "hash"), neu);
    json_decref(ans);
    d = s_ok(lv, lv->viewer, "policy.check", s_paycert_args(), &ans);
    assert_string_equal(s_str(d, "policy_hash"), neu);
    json_decref(ans);
    tb_gbxd_log_wait(&lv->gd, "GBX-POLICY-LOADED by=op.admin", loaded, S_LOG_MS);
    tb_gbxd_alive(&lv->gd);
}

static void test_hold_timeout(void **state)
{
    s_lv_t *lv = *state;
    s_clients_down(lv);
    s_use(lv, s_limits_timeout); /* restarts gbxd */
    s_clients_up(lv);
    char id[S_HEX_LEN];
    uint64_t seq = 0, accepted_at = 0;
    uint64_t sent = s_mono_ms();
    s_send_held(lv, id, &seq, &accepted_at);
    snprintf(lv->timed_out, sizeof lv->timed_out, "%s", id);
    json_t *h = s_held(lv, id, NULL);
    if (!h)
        fail_msg("holds.list does not show held message %s", id);
    json_int_t until = s_int(h, "until_ms");
    if (until < (json_int_t)accepted_at + S_HOLD_MS - 50 ||
        until > (json_int_t)accepted_at + S_HOLD_MS + 1000)
        fail_msg("held until %lld, accepted at %llu: want about %d ms later", (long long)until,
                 (unsigned long long)accepted_at, S_HOLD_MS);
    json_decref(h);

    gbx_event_t n;
    if (!s_take(lv, lv->kiosk, GBX_EV_NOTICE, S_TIMEOUT_MS, &n))
        fail_msg("hk.kiosk got no Notice for %s within %d ms (hold_timeout %d ms)", id,
                 S_TIMEOUT_MS, S_HOLD_MS);
    uint64_t after = s_mono_ms() - sent;
    char got[S_HEX_LEN];
    assert_int_equal(n.message_id_len, GBX_MSG_ID_BYTES);
    s_hex(n.message_id, GBX_MSG_ID_BYTES, got, sizeof got);
    assert_string_equal(got, id);
    if (n.reason != GBX_E_HOLD_TIMEOUT)
        fail_msg("Notice reason %s, want HOLD_TIMEOUT", gbx_err_name(n.reason));
    gbx_event_clear(&n);
    if (after + 100 < S_HOLD_MS)
        fail_msg("HOLD_TIMEOUT %llu ms after sending, before the %d ms hold timeout",
                 (unsigned long long)after, S_HOLD_MS);
    print_message("  HOLD_TIMEOUT %llu ms after sending\n", (unsigned long long)after);

    size_t held = 99;
    h = s_held(lv, id, &held);
    assert_null(h);
    assert_int_equal(held, 0);
    s_err(lv, lv->approver, "holds.approve", s_id_args(id, NULL), "NOT_FOUND", NULL, 0);
    s_pump(lv, 300);
    assert_int_equal(s_count_ev(lv->tax, GBX_EV_DELIVERY), 0);
    tb_gbxd_alive(&lv->gd);
}

/*  1 when record REC (NUL-terminated, "\n" first) has the line KEY=VALUE. */
static int s_rec_has(const char *rec, const char *key, const char *value)
{
    char *needle = NULL;
    assert_true(asprintf(&needle, "\n%s=%s\n", key, value) > 0);
    int found = strstr(rec, needle) != NULL;
    free(needle);
    return found;
}

/*  The audit records of EVENT for message ID: how many; the last one into
 *OUT (malloc'ed, may be NULL). */
static size_t s_audit_find(char **recs, size_t n, const char *event, const char *id, char **out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s_rec_has(recs[i], "event", event) && (!id || s_rec_has(recs[i], "message_id", id))) {
            k++;
            if (out)
                *out = recs[i];
        }
    return k;
}

static void test_audit(void **state)
{
    s_lv_t *lv = *state;
    s_clients_down(lv);
    tb_gbxd_term(&lv->gd, S_STOP_MS); /* SIGTERM, exit 0 */
    char *data = NULL;
    assert_true(asprintf(&data, "%s/data", lv->home) > 0);
    gbx_store_t *st = NULL;
    assert_rc(gbx_store_open(data, NULL, &st), GBX_OK);
    free(data);
    size_t n = 0;
    char **recs = tb_audit_records(st, &n);
    for (size_t k = 0; k < n; k++) { /* so that every line is "\nkey=value\n" */
        char *r = NULL;
        assert_true(asprintf(&r, "\n%s", recs[k]) > 0);
        free(recs[k]);
        recs[k] = r;
    }
    gbx_store_destroy(&st);
    print_message("  %zu audit records\n", n);

    int fails = 0;
#define S_AUDIT_CHECK(cond, ...)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)
    const char *ids[3] = {lv->approved, lv->rejected, lv->timed_out};
    for (int i = 0; i < 3; i++) {
        S_AUDIT_CHECK(ids[i][0], "hold test %d did not run", i);
        if (ids[i][0])
            S_AUDIT_CHECK(s_audit_find(recs, n, "HELD", ids[i], NULL) == 1,
                          "%s: want one HELD record", ids[i]);
    }
    char *rec = NULL;
    if (lv->approved[0]) {
        size_t k = s_audit_find(recs, n, "HOLD_APPROVED", lv->approved, &rec);
        S_AUDIT_CHECK(k == 1, "%s: %zu HOLD_APPROVED records, want 1", lv->approved, k);
        if (k) {
            S_AUDIT_CHECK(s_rec_has(rec, "by", "op.approver"),
                          "HOLD_APPROVED without by=op.approver:%s", rec);
            S_AUDIT_CHECK(s_rec_has(rec, "comment", S_APPROVE_COMMENT),
                          "HOLD_APPROVED without comment=" S_APPROVE_COMMENT ":%s", rec);
            S_AUDIT_CHECK(s_rec_has(rec, "from", "hk.kiosk") && s_rec_has(rec, "to", "gd.tax"),
                          "HOLD_APPROVED without from/to:%s", rec);
        }
        S_AUDIT_CHECK(s_audit_find(recs, n, "HOLD_REJECTED", lv->approved, NULL) == 0,
                      "%s: approved and rejected", lv->approved);
    }
    if (lv->rejected[0]) {
        size_t k = s_audit_find(recs, n, "HOLD_REJECTED", lv->rejected, &rec);
        S_AUDIT_CHECK(k == 1, "%s: %zu HOLD_REJECTED records, want 1", lv->rejected, k);
        if (k) {
            S_AUDIT_CHECK(s_rec_has(rec, "by", "op.approver"),
                          "HOLD_REJECTED without by=op.approver:%s", rec);
            S_AUDIT_CHECK(s_rec_has(rec, "comment", S_REJECT_COMMENT),
                          "HOLD_REJECTED without comment=" S_REJECT_COMMENT ":%s", rec);
            S_AUDIT_CHECK(s_rec_has(rec, "reason", gbx_err_name(GBX_E_HOLD_REJECTED)),
                          "HOLD_REJECTED without reason=HOLD_REJECTED:%s", rec);
        }
        S_AUDIT_CHECK(s_audit_find(recs, n, "HOLD_APPROVED", lv->rejected, NULL) == 0,
                      "%s: rejected and approved", lv->rejected);
    }
    if (lv->timed_out[0]) {
        size_t k = s_audit_find(recs, n, "HOLD_TIMEOUT", lv->timed_out, &rec);
        S_AUDIT_CHECK(k == 1, "%s: %zu HOLD_TIMEOUT records, want 1", lv->timed_out, k);
        if (k) {
            S_AUDIT_CHECK(s_rec_has(rec, "by", "gbxd"), "HOLD_TIMEOUT without by=gbxd:%s", rec);
            S_AUDIT_CHECK(s_rec_has(rec, "reason", gbx_err_name(GBX_E_HOLD_TIMEOUT)),
                          "HOLD_TIMEOUT without reason=HOLD_TIMEOUT:%s", rec);
            S_AUDIT_CHECK(!strstr(rec, "\ncomment="), "HOLD_TIMEOUT with a comment:%s", rec);
        }
    }
    if (lv->reloaded) {
        char hex[2 * GBX_HASH_BYTES + 1];
        s_hash_hex(lv->new_hash, hex);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += s_rec_has(recs[i], "event", "POLICY_LOADED") &&
                 s_rec_has(recs[i], "by", "op.admin") && s_rec_has(recs[i], "policy_hash", hex);
        S_AUDIT_CHECK(k == 1, "%zu POLICY_LOADED records by=op.admin with policy_hash=%s, want 1",
                      k, hex);
    }
#undef S_AUDIT_CHECK
    for (size_t i = 0; i < n; i++)
        free(recs[i]);
    free(recs);
    if (fails)
        fail_msg("%d differences in the audit trail (above)", fails);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),        cmocka_unit_test(test_zap_refused),
        cmocka_unit_test(test_policy_check), cmocka_unit_test(test_hold_approve),
        cmocka_unit_test(test_hold_reject),  cmocka_unit_test(test_reload),
        cmocka_unit_test(test_hold_timeout), cmocka_unit_test(test_audit),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
