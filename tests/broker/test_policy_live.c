/*  test_policy_live: the policy decision cases of test_policy (the shared
    table tp_cases, tp_cases.h) submitted to the real gbxd (GBXD_PATH, a child
    process) over CurveZMQ on loopback, and policy reloads without downtime
    (SIGHUP, docs/policy.md).

    Setup writes the demo configuration (gbx_config_write_default, which puts
    the sample policy beside it as policy.yaml, node.policy) into a fresh
    directory, moves listen.adapter to a free loopback port and
    limits.max_payload_bytes from 16 MiB to 64 MiB (one case declares a 64 MiB
    payload), and starts gbxd -c on it with its stderr in DIR/gbxd.log. Each
    case is sent by a libgbx client of its from_agency (keys from
    DIR/home/keys/<id>.secret; send only: nothing is delivered), which signs
    the header and seals a payload of the case's size to the recipient.

    The tests run in order against the same gbxd (one pid throughout):
      cases         every row of tp_cases that gbxd can decide today:
                    skipped are the rows decided at another date or created
                    at a fixed date (the broker decides with its real clock,
                    and times are built from it: created 1 s ago, expires
                    after the case's TTL), the rows that preset counters
                    (the live counters start at 0), the row whose sender is
                    not in the registry (it cannot connect), the 64 MiB row
                    under GBX_TEST_QUICK, and any row that the sample decides
                    otherwise today than on the table's date (the test's own
                    gbx_policy_decide at both times, whatever the table
                    expects; the sample's route references run to 2027-10-31
                    and later, so none until then). A RESPONSE gets a
                    fresh correlation_id. Checks:
                      ALLOW  Accepted, receipt (verified with the node's
                             keys) status ACCEPTED, rule_id = the case's
                             rule, policy_hash = BLAKE2b-256 of policy.yaml
                      HOLD   Accepted (held), receipt status HELD, the rule,
                             the hash
                      DENY   Rejected with the case's reason (POLICY_DENIED,
                             POLICY_NO_MATCH), a non-empty detail that names
                             the case's rule when a rule of the file denied
                    Prints how many ran and how many were skipped and why;
                    at least 40 must run. The volume caps of the sample
                    are 9,999 and more subjects or messages, and the cases
                    add at most a few dozen: the live counters never
                    decide a case.
      reload_rejected  policy.yaml overwritten with a rule naming an unknown
                    service (GD-SI-PAYCRT), SIGHUP: GBX-POLICY-REJECTED in
                    the log (within 10 s) with "policy.yaml:LINE:COL:
                    match.service:" at the bad scalar; a message the sample
                    allows (sp_hk_gd_paycert_request) is still accepted
                    with the sample's hash in its receipt
      reload_loaded    policy.yaml = the sample with the paycert request rule
                    disabled and a new version, SIGHUP: GBX-POLICY-READ with
                    the new version and hash, then GBX-POLICY-LOADED (within
                    10 s); sp_hk_gd_paycert_request is now Rejected
                    POLICY_NO_MATCH and an allowed message
                    (pi_gd_hk_gba_response) carries the new hash
      sigterm       still the first gbxd pid, one GBX-START in the log;
                    SIGTERM: exit status 0 within 10 s
    Every wait is bounded; group teardown SIGKILLs the child if it lives.
    GBX_TEST_KEEP=1 keeps the directory, GBX_TEST_VERBOSE=1 prints every
    case. */
#include "tu_cmocka.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "gbx/client.h"
#include "gbx/identity.h"
#include "gbx/receipt.h"
#include "policy.h"
#include "registry.h"
#include "tb_gbxd.h"
#include "tp_cases.h"

#ifndef GBXD_PATH
#error "GBXD_PATH must be defined (tests/broker/CMakeLists.txt)"
#endif

#define S_NODE       "demo-1"
#define S_MAX_AGENTS 24
#define S_MIN_RUN    40
#define S_SEND_MS    20000         /* one answer */
#define S_BIG_MS     90000         /* the answer to a payload over 1 MiB */
#define S_LOG_MS     10000         /* a line in gbxd's log */
#define S_START_MS   10000         /* gbxd listening */
#define S_STOP_MS    10000         /* gbxd's clean exit after SIGTERM */
#define S_QUICK_MAX  (16 * TP_MIB) /* larger payloads skipped with GBX_TEST_QUICK */

/*  One sending agency: its keys and its libgbx client. */
typedef struct {
    char id[GBX_ID_MAX + 1];
    gbx_identity_t *idn;
    gbx_client_t *c;
} s_agent_t;

typedef struct {
    char *dir;
    char *home;
    char *policy; /* DIR/home/policy.yaml, node.policy */
    tb_gbxd_t gd; /* its stderr in DIR/gbxd.log */
    pid_t first_pid;
    gbx_config_t *config; /* the registry: keys, and the date check */
    gbx_pubid_t node;
    gbx_policy_t *sample;         /* policy.yaml as written, the test's own engine */
    uint8_t hash[GBX_HASH_BYTES]; /* BLAKE2b-256 of policy.yaml as written */
    s_agent_t agents[S_MAX_AGENTS];
    size_t nagents;
} s_lv_t;

/* ---------------------------------------------------------------- helpers */

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/*  The last line of gbxd's log that contains NEEDLE (caller frees), or NULL. */
static char *s_log_line(const s_lv_t *lv, const char *needle)
{
    size_t len = 0;
    char *text = (char *)tu_read_file(lv->gd.log, &len);
    if (!text)
        return NULL;
    char *line = NULL;
    for (char *at = text; (at = strstr(at, needle)) != NULL; at += strlen(needle)) {
        char *start = at;
        while (start > text && start[-1] != '\n')
            start--;
        size_t n = strcspn(start, "\n");
        free(line);
        line = strndup(start, n);
        assert_non_null(line);
    }
    free(text);
    return line;
}

/*  gbxd is still the child it was at the start. */
static void s_alive(s_lv_t *lv)
{
    assert_int_equal(lv->gd.pid, lv->first_pid);
    tb_gbxd_alive(&lv->gd);
}

static void s_hash_hex(const uint8_t *hash, char out[2 * GBX_HASH_BYTES + 1])
{
    sodium_bin2hex(out, 2 * GBX_HASH_BYTES + 1, hash, GBX_HASH_BYTES);
}

/*  Writes TEXT over policy.yaml; its hash into HASH. */
static void s_write_policy(s_lv_t *lv, const char *text, uint8_t hash[GBX_HASH_BYTES])
{
    assert_int_equal(tu_write_file(lv->policy, text, strlen(text), 0600), 0);
    crypto_generichash(hash, GBX_HASH_BYTES, (const unsigned char *)text, strlen(text), NULL, 0);
}

/* ---------------------------------------------------------------- clients */

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    s_lv_t *lv = arg;
    const gbx_agency_t *a = gbx_registry_agency(gbx_config_registry(lv->config), id);
    return a ? &a->pub : NULL;
}

/*  The sending client of agency ID, made on first use. */
static gbx_client_t *s_agent(s_lv_t *lv, const char *id)
{
    for (size_t i = 0; i < lv->nagents; i++)
        if (strcmp(lv->agents[i].id, id) == 0)
            return lv->agents[i].c;
    assert_true(lv->nagents < S_MAX_AGENTS);
    s_agent_t *a = &lv->agents[lv->nagents++];
    snprintf(a->id, sizeof a->id, "%s", id);
    char *p = NULL;
    assert_true(asprintf(&p, "%s/keys/%s.secret", lv->home, id) > 0);
    assert_rc(gbx_identity_load(p, &a->idn), GBX_OK);
    free(p);
    /* its own ZeroMQ context (zmq_ctx NULL), as in test_delivery_live */
    gbx_client_opts_t o = {.endpoint = lv->gd.endpoint,
                           .identity = a->idn,
                           .node = &lv->node,
                           .peer = s_peer,
                           .peer_arg = lv,
                           .send_only = 1};
    assert_rc(gbx_client_new(&o, &a->c), GBX_OK);
    return a->c;
}

static void s_agents_free(s_lv_t *lv)
{
    for (size_t i = 0; i < lv->nagents; i++) {
        gbx_client_destroy(&lv->agents[i].c);
        gbx_identity_destroy(&lv->agents[i].idn);
    }
    lv->nagents = 0;
}

/* ---------------------------------------------------------------- a case */

/*  What the broker said about one submitted case. */
typedef struct {
    gbx_err_t rc;   /* gbx_client_send */
    gbx_event_t ev; /* its event */
    int status;     /* receipt status, -1 without a receipt */
    char rule[GBX_POLICY_ID_MAX + 1];
    uint8_t hash[GBX_HASH_BYTES];
    int have_hash;
} s_answer_t;

/*  Submits case C as its from_agency, created 1 s ago (real clock). */
static void s_submit(s_lv_t *lv, const tp_case_t *c, s_answer_t *a)
{
    memset(a, 0, sizeof *a);
    a->status = -1;
    gbx_client_t *cl = s_agent(lv, c->from);
    gbx_header_t h;
    tp_header(c, s_now_ms(), &h);
    uint8_t corr[GBX_MSG_ID_BYTES];
    if (h.kind == GBX__V1__MESSAGE_KIND__RESPONSE) { /* answers some request */
        randombytes_buf(corr, sizeof corr);
        h.correlation_id.data = corr;
        h.correlation_id.len = sizeof corr;
    }
    size_t len = (size_t)h.payload_length;
    uint8_t *plain = malloc(len ? len : 1);
    assert_non_null(plain);
    memset(plain, 0x5a, len);
    gbx_msg_t *m = NULL;
    gbx_err_t rc = gbx_client_msg(cl, &h, plain, len, &m);
    free(plain);
    if (rc != GBX_OK)
        fail_msg("case \"%s\": gbx_client_msg: %s", c->name, gbx_err_name(rc));
    a->rc = gbx_client_send(cl, m, len > TP_MIB ? S_BIG_MS : S_SEND_MS, &a->ev);
    gbx_msg_destroy(&m);
    if (a->rc == GBX_E_IO && a->ev.kind == GBX_EV_NONE)
        fail_msg("case \"%s\": no answer within %d ms (%s)", c->name,
                 len > TP_MIB ? S_BIG_MS : S_SEND_MS, strerror(errno));
    if (a->ev.kind != GBX_EV_ACCEPTED || !a->ev.receipt)
        return;
    Gbx__V1__SignedReceipt *sr =
        gbx__v1__signed_receipt__unpack(NULL, a->ev.receipt_len, a->ev.receipt);
    assert_non_null(sr);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify(sr, &lv->node, &r), GBX_OK);
    a->status = (int)r->status;
    snprintf(a->rule, sizeof a->rule, "%s", r->rule_id ? r->rule_id : "");
    if (r->policy_hash.len == GBX_HASH_BYTES) {
        memcpy(a->hash, r->policy_hash.data, GBX_HASH_BYTES);
        a->have_hash = 1;
    }
    gbx__v1__receipt__free_unpacked(r, NULL);
    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
}

/*  Reports one difference of case C and counts it. */
#define S_FAIL(fails, c, ...)                                                                      \
    do {                                                                                           \
        char msg_[512];                                                                            \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                  \
        print_error("case \"%s\": %s\n", (c)->name, msg_);                                         \
        (fails)++;                                                                                 \
    } while (0)

/*  Checks answer A of case C against the case's expectation, the receipt's
    hash against HASH. */
static void s_check(const tp_case_t *c, const s_answer_t *a, const uint8_t *hash, int *fails)
{
    const gbx_event_t *ev = &a->ev;
    if (c->outcome == GBX_OUTCOME_DENY) {
        if (ev->kind != GBX_EV_REJECTED) {
            S_FAIL(*fails, c, "%s (rule \"%s\", status %d), want Rejected %s",
                   ev->kind == GBX_EV_ACCEPTED ? "Accepted" : "no answer", a->rule, a->status,
                   gbx_err_name(c->reason));
            return;
        }
        if (ev->reason != c->reason || a->rc != c->reason)
            S_FAIL(*fails, c, "Rejected %s (%s), want %s", gbx_err_name(ev->reason), ev->detail,
                   gbx_err_name(c->reason));
        size_t rl = strlen(c->rule);
        int builtin = rl > 0 && c->rule[rl - 1] == ':';
        if (ev->detail[0] == '\0')
            S_FAIL(*fails, c, "Rejected without a detail");
        else if (c->reason == GBX_E_POLICY_DENIED && !builtin && !strstr(ev->detail, c->rule))
            S_FAIL(*fails, c, "detail \"%s\" does not name rule %s", ev->detail, c->rule);
        return;
    }
    int want_status = c->outcome == GBX_OUTCOME_HOLD ? GBX__V1__RECEIPT_STATUS__HELD
                                                     : GBX__V1__RECEIPT_STATUS__ACCEPTED;
    if (ev->kind != GBX_EV_ACCEPTED || a->rc != GBX_OK) {
        S_FAIL(*fails, c, "%s %s (%s), want Accepted %s by %s",
               ev->kind == GBX_EV_REJECTED ? "Rejected" : "answer", gbx_err_name(a->rc), ev->detail,
               gbx_outcome_name(c->outcome), c->rule);
        return;
    }
    if (ev->duplicate)
        S_FAIL(*fails, c, "Accepted as a duplicate");
    if (a->status != want_status || ev->held != (c->outcome == GBX_OUTCOME_HOLD))
        S_FAIL(*fails, c, "receipt status %d (held %d), want %d", a->status, ev->held, want_status);
    if (strcmp(a->rule, c->rule) != 0)
        S_FAIL(*fails, c, "receipt rule_id \"%s\", want \"%s\"", a->rule, c->rule);
    if (!a->have_hash || memcmp(a->hash, hash, GBX_HASH_BYTES) != 0) {
        char got[2 * GBX_HASH_BYTES + 1] = "(none)", want[2 * GBX_HASH_BYTES + 1];
        if (a->have_hash)
            s_hash_hex(a->hash, got);
        s_hash_hex(hash, want);
        S_FAIL(*fails, c, "receipt policy_hash %s, want %s", got, want);
    }
}

/*  Why case C is not sent today; NULL when it is. */
static const char *s_skip(const s_lv_t *lv, const tp_case_t *c, uint64_t now)
{
    if (c->now)
        return "decided at another date";
    if (c->created)
        return "created at a fixed date";
    if (tp_presets_counters(c))
        return "presets counters";
    if (!gbx_registry_agency(gbx_config_registry(lv->config), c->from))
        return "sender not in the registry";
    if (s_env("GBX_TEST_QUICK") && c->payload > S_QUICK_MAX)
        return "payload over 16 MiB (GBX_TEST_QUICK)";
    /* the table's expectations hold at TP_NOW (test_policy): skip a row the
       sample decides otherwise today, whatever the table says */
    const gbx_registry_t *reg = gbx_config_registry(lv->config);
    gbx_header_t h;
    gbx_decision_t then, today;
    tp_header(c, TP_NOW, &h);
    assert_rc(gbx_policy_decide(lv->sample, reg, &h, TP_NOW, tp_counter, (void *)c, &then), GBX_OK);
    tp_header(c, now, &h);
    assert_rc(gbx_policy_decide(lv->sample, reg, &h, now, tp_counter, (void *)c, &today), GBX_OK);
    if (then.outcome != today.outcome || then.reason != today.reason ||
        strcmp(then.rule_id, today.rule_id) != 0)
        return "decided otherwise today than on 2026-11-22";
    return NULL;
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
    assert_true(asprintf(&lv->policy, "%s/policy.yaml", lv->home) > 0);
    tb_gbxd_home(&lv->gd, GBXD_PATH, lv->home, log);
    free(log);
    tb_gbxd_edit(&lv->gd, "max_payload_bytes: 16MiB\n", "max_payload_bytes: 64MiB\n");

    /* policy.yaml is the sample; its hash is what receipts must carry */
    size_t len = 0;
    uint8_t *pol = tu_read_file(lv->policy, &len);
    assert_non_null(pol);
    assert_int_equal(len, gbx_policy_sample_len);
    assert_memory_equal(pol, gbx_policy_sample, len);
    crypto_generichash(lv->hash, sizeof lv->hash, pol, len, NULL, 0);
    free(pol);

    char err[512] = "";
    gbx_err_t rc = gbx_config_load(lv->gd.cfg, &lv->config, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s: %s", lv->gd.cfg, gbx_err_name(rc), err);
    rc = gbx_policy_load(lv->policy, gbx_config_registry(lv->config), &lv->sample, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s: %s", lv->policy, gbx_err_name(rc), err);
    assert_memory_equal(gbx_policy_hash(lv->sample), lv->hash, GBX_HASH_BYTES);
    char *p = NULL;
    assert_true(asprintf(&p, "%s/keys/%s.pub", lv->home, S_NODE) > 0);
    assert_rc(gbx_pubid_load(p, &lv->node), GBX_OK);
    free(p);

    tb_gbxd_start(&lv->gd, S_START_MS);
    lv->first_pid = lv->gd.pid;
    return 0;
}

static int s_group_teardown(void **state)
{
    s_lv_t *lv = *state;
    if (!lv)
        return 0;
    s_agents_free(lv);
    tb_gbxd_kill(&lv->gd);
    gbx_policy_destroy(&lv->sample);
    gbx_config_destroy(&lv->config);
    if (lv->dir && !s_env("GBX_TEST_KEEP"))
        tu_rmtree_path(lv->dir);
    tb_gbxd_free(&lv->gd);
    free(lv->policy);
    free(lv->home);
    free(lv->dir);
    free(lv);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_cases(void **state)
{
    s_lv_t *lv = *state;
    int verbose = s_env("GBX_TEST_VERBOSE");
    /* skip reasons, in the order s_skip tries them */
    const char *reasons[8] = {0};
    size_t counts[8] = {0}, nreasons = 0, ran = 0, skipped = 0;
    int fails = 0;
    for (size_t i = 0; i < tp_ncases; i++) {
        const tp_case_t *c = &tp_cases[i];
        const char *why = s_skip(lv, c, s_now_ms());
        if (why) {
            size_t k = 0;
            while (k < nreasons && strcmp(reasons[k], why) != 0)
                k++;
            if (k == nreasons) {
                assert_true(nreasons < sizeof reasons / sizeof reasons[0]);
                reasons[nreasons++] = why;
            }
            counts[k]++;
            skipped++;
            print_message("  skip %-30s %s\n", c->name, why);
            continue;
        }
        s_answer_t a;
        s_submit(lv, c, &a);
        int before = fails;
        s_check(c, &a, lv->hash, &fails);
        if (verbose || fails != before)
            print_message("  %-4s %-30s %-9s %s\n", fails != before ? "FAIL" : "ok", c->name,
                          a.ev.kind == GBX_EV_ACCEPTED ? (a.ev.held ? "HELD" : "ACCEPTED")
                                                       : gbx_err_name(a.ev.reason),
                          a.ev.kind == GBX_EV_ACCEPTED ? a.rule : a.ev.detail);
        gbx_event_clear(&a.ev);
        ran++;
    }
    s_alive(lv);
    print_message("%zu decision cases through gbxd, %zu skipped of %zu:\n", ran, skipped,
                  tp_ncases);
    for (size_t k = 0; k < nreasons; k++)
        print_message("  %zu %s\n", counts[k], reasons[k]);
    if (fails)
        fail_msg("%d differences (above)", fails);
    assert_true(ran >= S_MIN_RUN);
}

static void test_reload_rejected(void **state)
{
    s_lv_t *lv = *state;
    s_alive(lv);
    /* the first match.service of the paycert request rule, misspelt */
    char *text = strndup(gbx_policy_sample, gbx_policy_sample_len);
    assert_non_null(text);
    const char *rule = "  - id: sp-hk-gd-paycert-request\n";
    const char *svc = "      service: [GD-SI-PAYCERT]\n";
    char *r = strstr(text, rule);
    assert_non_null(r);
    char *at = strstr(r, svc);
    assert_non_null(at);
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    int col = (int)(strchr(at, '[') - at) + 2; /* the scalar after "[" */
    char *bad = strndup(text, (size_t)(at - text)), *out = NULL;
    assert_non_null(bad);
    assert_true(asprintf(&out, "%s      service: [GD-SI-PAYCRT]\n%s", bad, at + strlen(svc)) > 0);
    uint8_t bad_hash[GBX_HASH_BYTES];
    s_write_policy(lv, out, bad_hash);
    free(out);
    free(bad);
    free(text);

    int before = tb_gbxd_log_count(&lv->gd, "GBX-POLICY-REJECTED");
    int loaded = tb_gbxd_log_count(&lv->gd, "GBX-POLICY-LOADED");
    assert_int_equal(kill(lv->gd.pid, SIGHUP), 0);
    tb_gbxd_log_wait(&lv->gd, "GBX-POLICY-REJECTED", before, S_LOG_MS);
    char *got = s_log_line(lv, "GBX-POLICY-REJECTED");
    assert_non_null(got);
    char want[128];
    snprintf(want, sizeof want, "policy.yaml:%d:%d: match.service:", line, col);
    if (!strstr(got, want) || !strstr(got, "GD-SI-PAYCRT"))
        fail_msg("log line \"%s\" does not say \"%s\" ... GD-SI-PAYCRT", got, want);
    print_message("  %s\n", got);
    free(got);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, "GBX-POLICY-LOADED"), loaded);
    s_alive(lv);

    /* the sample stays in force */
    const tp_case_t *c = tp_case("sp_hk_gd_paycert_request");
    assert_non_null(c);
    assert_int_equal(c->outcome, GBX_OUTCOME_ALLOW);
    s_answer_t a;
    s_submit(lv, c, &a);
    int fails = 0;
    s_check(c, &a, lv->hash, &fails);
    gbx_event_clear(&a.ev);
    if (fails)
        fail_msg("after the rejected reload: %d differences (above)", fails);
    s_alive(lv);
}

static void test_reload_loaded(void **state)
{
    s_lv_t *lv = *state;
    s_alive(lv);
    /* the sample, the paycert request rule disabled, a new version */
    char *text = strndup(gbx_policy_sample, gbx_policy_sample_len);
    assert_non_null(text);
    tb_replace(&text, "version: \"2026-11-22.1\"\n", "version: \"2026-11-22.2-live\"\n");
    tb_replace(&text, "  - id: sp-hk-gd-paycert-request\n",
               "  - id: sp-hk-gd-paycert-request\n    enabled: false\n");
    uint8_t hash[GBX_HASH_BYTES];
    s_write_policy(lv, text, hash);
    free(text);
    assert_memory_not_equal(hash, lv->hash, GBX_HASH_BYTES);

    int read = tb_gbxd_log_count(&lv->gd, "GBX-POLICY-READ");
    int loaded = tb_gbxd_log_count(&lv->gd, "GBX-POLICY-LOADED");
    int rejected = tb_gbxd_log_count(&lv->gd, "GBX-POLICY-REJECTED");
    assert_int_equal(kill(lv->gd.pid, SIGHUP), 0);
    tb_gbxd_log_wait(&lv->gd, "GBX-POLICY-LOADED", loaded, S_LOG_MS);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, "GBX-POLICY-READ"), read + 1);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, "GBX-POLICY-REJECTED"), rejected);
    char *got = s_log_line(lv, "GBX-POLICY-READ"), hex[2 * GBX_HASH_BYTES + 1], want[160];
    assert_non_null(got);
    s_hash_hex(hash, hex);
    snprintf(want, sizeof want, "hash=%s", hex);
    if (!strstr(got, want) || !strstr(got, "version=\"2026-11-22.2-live\""))
        fail_msg("log line \"%s\" does not name the new version and %s", got, want);
    print_message("  %s\n", got);
    free(got);
    s_alive(lv);

    /* decided by the new version: the rule no longer applies ... */
    int fails = 0;
    const tp_case_t *paycert = tp_case("sp_hk_gd_paycert_request");
    assert_non_null(paycert);
    tp_case_t c = *paycert;
    c.outcome = GBX_OUTCOME_DENY;
    c.reason = GBX_E_POLICY_NO_MATCH;
    c.rule = "";
    s_answer_t a;
    s_submit(lv, &c, &a);
    s_check(&c, &a, hash, &fails);
    gbx_event_clear(&a.ev);
    /* ... and what it allows carries its hash */
    const tp_case_t *ok = tp_case("pi_gd_hk_gba_response");
    assert_non_null(ok);
    assert_int_equal(ok->outcome, GBX_OUTCOME_ALLOW);
    s_submit(lv, ok, &a);
    s_check(ok, &a, hash, &fails);
    gbx_event_clear(&a.ev);
    if (fails)
        fail_msg("after the reload: %d differences (above)", fails);
    s_alive(lv);
}

static void test_sigterm(void **state)
{
    s_lv_t *lv = *state;
    s_alive(lv);
    assert_int_equal(tb_gbxd_log_count(&lv->gd, "GBX-START"), 1); /* never restarted */
    s_agents_free(lv);
    tb_gbxd_term(&lv->gd, S_STOP_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_reload_rejected),
        cmocka_unit_test(test_reload_loaded),
        cmocka_unit_test(test_sigterm),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
