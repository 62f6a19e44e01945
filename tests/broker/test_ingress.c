/*  test_ingress: admission of submitted messages (broker/ingress.h) against
    a real RocksDB in a temporary directory, real keys (tu_identity_fixed),
    real signed envelopes and sealed payloads. The clock is injected.

    Registry: node hk-1 (HK, signs receipts); agencies hk.cr (HK) and
    gd.qh-amr (GD, shenzhen), both served by hk-1. Messages: the header of
    tu_header_fixture (gd.qh-amr -> hk.cr, 1024-byte payload), sealed to
    hk.cr, submitted by the session of gd.qh-amr with tag 42. Limits:
    max_payload_bytes 4096, max_ttl 7 d, clock skew 120 s; now = created + 1 s.

    Rejection cases (s_cases below): each gives its exact reason in a
    Rejected frame with the expected tag and message id, stores no message
    and no queue entry, and writes one audit record.

    Other cases:
      happy_path         Accepted; receipt verifies (gbx_receipt_verify) and
                         matches the envelope (gbx_receipt_check); store holds
                         message (envelope + payload), queue entry, dedupe
                         entry (= the receipt bytes), audit record
      duplicate          same envelope twice (and again after expiry): Accepted
                         duplicate = true, byte-identical receipt, one queue entry
      dedupe_restart     destroy ingress and store, reopen, resubmit: duplicate
                         with the same receipt; a new message gets a higher seq
      batch_signed       8 envelopes under one batch signature: all accepted,
                         one Ed25519 verification, 7 cache hits
      policy_decides     a real policy (s_limit_policy): a message its HOLD
                         rule matches is stored held (receipt status HELD,
                         entry in "held", none in "queues", audit HELD with
                         rule_id, decision and why); then three messages in
                         ONE group under a cap of 3 messages a day: two
                         accepted, the third POLICY_DENIED, because the
                         counters are read through the group's batch; the
                         stored counters say 3 (the held one counts)
      hold_limits        held messages count toward their destination's
                         queue limit (queue_max_messages 2): two held, the
                         third RETRY_LATER; after a restart (ingress
                         rebuilt from the store) the depth is still 2

    Queue limit cases (s_limit_cases, step 17; each on a fresh fixture with
    the case's queue_max_messages / queue_max_bytes): the first N messages
    to hk.cr are accepted and counted (gbx_ingress_queue_depth); message N+1
    is Rejected RETRY_LATER with the configured retry_after_ms, audited,
    nothing stored; a duplicate of an accepted message still gets its
    receipt; a message to another destination (gd.qh-amr) is accepted; after
    a restart (store and ingress reopened) the depths are the same and the
    limit still holds; gbx_ingress_dequeued frees room for exactly one.
      queue_legacy       a queue entry with an empty value (written before
                         entries held their size) is sized from messages[] */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gbx/frame.h"
#include "gbx/receipt.h"
#include "ingress.h"
#include "queue.h"
#include "registry.h"
#include "store.h"
#include "tb_fixture.h"

#define S_TAG     42u
#define S_FROM    "gd.qh-amr"
#define S_TO      "hk.cr"
#define S_NODE    "hk-1"
#define S_CREATED 1790000000000ull
#define S_DAY     (24ull * 3600 * 1000)
#define S_SKEW    120000ull
#define S_MAXPAY  4096u
#define S_BATCH_N 8

/* ------------------------------------------------------------- fixtures */

static uint64_t s_now;

static uint64_t s_clock(void *arg)
{
    (void)arg;
    return s_now;
}

/*  A policy of one rule that denies everything (its text). */
static const char s_deny_policy[] = "version: deny-test\n"
                                    "rules:\n"
                                    "  - {id: deny-test, outcome: DENY, reason: testing}\n";

typedef struct {
    char *dir;
    gbx_store_t *store;
    gbx_registry_t *reg;
    gbx_identity_t *node;
    gbx_identity_t *sender;
    gbx_ingress_t *ing;
    gbx_policy_t *policy;
    uint64_t queue_max_messages;
    uint64_t queue_max_bytes;
    uint64_t retry_after_ms;
    uint64_t dedupe_window_ms;
} s_fix_t;

static void s_fix_ingress(s_fix_t *fx)
{
    gbx_ingress_opts_t o;
    gbx_ingress_opts_init(&o);
    o.store = fx->store;
    o.registry = fx->reg;
    o.node = fx->node;
    o.node_id = S_NODE;
    o.max_payload_bytes = S_MAXPAY;
    o.max_ttl_ms = 7 * S_DAY;
    o.clock_skew_ms = S_SKEW;
    o.clock = s_clock;
    o.policy = fx->policy;
    o.queue_max_messages = fx->queue_max_messages;
    o.queue_max_bytes = fx->queue_max_bytes;
    o.retry_after_ms = fx->retry_after_ms;
    o.dedupe_window_ms = fx->dedupe_window_ms;
    assert_rc(gbx_ingress_new(&o, &fx->ing), GBX_OK);
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_tmpdir();
    assert_rc(gbx_store_open(fx->dir, NULL, &fx->store), GBX_OK);
    fx->reg = tb_registry();
    assert_non_null(fx->reg);
    fx->node = tu_identity_fixed(S_NODE, NULL);
    fx->sender = tu_identity_fixed(S_FROM, NULL);
    s_fix_ingress(fx);
    s_now = S_CREATED + 1000;
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    gbx_ingress_destroy(&fx->ing);
    gbx_policy_destroy(&fx->policy);
    gbx_store_destroy(&fx->store);
    gbx_registry_destroy(&fx->reg);
    gbx_identity_destroy(&fx->node);
    gbx_identity_destroy(&fx->sender);
    tu_rmtree(&fx->dir);
    free(fx);
    return 0;
}

/* -------------------------------------------------------------- messages */

/*  One submission: envelope, part 1 and the sealed payload. */
typedef struct {
    gbx_envelope_t *env;
    uint8_t *frame;
    size_t frame_len;
    uint8_t *sealed;
    size_t sealed_len;
    uint8_t msg_id[GBX_MSG_ID_BYTES];
} s_msg_t;

/*  Seals a payload of h->payload_length bytes for hk.cr into M and puts its
    hash into T. */
static void s_seal(tu_header_t *t, s_msg_t *m)
{
    gbx_pubid_t to = tb_pub(S_TO);
    size_t plen = (size_t)t->h.payload_length;
    uint8_t *plain = malloc(plen ? plen : 1);
    assert_non_null(plain);
    memset(plain, 0x77, plen);
    gbx_binding_t b = {t->message_id, t->h.from_agency, t->h.to_agency};
    assert_rc(
        gbx_payload_seal(to.box_pk, &b, plain, plen, &m->sealed, &m->sealed_len, t->payload_hash),
        GBX_OK);
    free(plain);
    memcpy(m->msg_id, t->message_id, GBX_MSG_ID_BYTES);
}

static void s_msg_frame(s_msg_t *m)
{
    assert_rc(gbx_frame_submit(S_TAG, m->env, &m->frame, &m->frame_len), GBX_OK);
}

/*  The fixture header (VARIANT), possibly changed by the case, signed by SIGNER. */
static void s_msg_make(s_msg_t *m, const gbx_identity_t *signer, tu_header_t *t)
{
    memset(m, 0, sizeof *m);
    s_seal(t, m);
    assert_rc(gbx_envelope_sign(signer, &t->h, &m->env), GBX_OK);
    s_msg_frame(m);
}

static void s_msg_free(s_msg_t *m)
{
    gbx_envelope_destroy(&m->env);
    free(m->frame);
    free(m->sealed);
    memset(m, 0, sizeof *m);
}

/*  Submits parts {P0, FRAME, payload}; checks that *reply is set. */
static gbx_err_t s_submit(s_fix_t *fx, const char *auth, const char *p0, const uint8_t *frame,
                          size_t flen, const uint8_t *payload, size_t plen, Gbx__V1__Frame **ans,
                          gbx_ingress_result_t *res)
{
    gbx_part_t parts[3] = {{(const uint8_t *)p0, strlen(p0)}, {frame, flen}, {payload, plen}};
    size_t n = payload ? 3 : 2;
    uint8_t *reply = NULL;
    size_t rlen = 0;
    gbx_err_t rc = gbx_ingress_submit(fx->ing, auth, parts, n, &reply, &rlen, res);
    assert_non_null(reply);
    *ans = gbx__v1__frame__unpack(NULL, rlen, reply);
    assert_non_null(*ans);
    free(reply);
    return rc;
}

static gbx_err_t s_submit_msg(s_fix_t *fx, const s_msg_t *m, Gbx__V1__Frame **ans,
                              gbx_ingress_result_t *res)
{
    return s_submit(fx, S_FROM, GBX_FRAME_PROTOCOL, m->frame, m->frame_len, m->sealed,
                    m->sealed_len, ans, res);
}

static size_t s_count(gbx_store_t *st, gbx_keyspace_t ks)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, ks, NULL, 0, &it), GBX_OK);
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it))
        n++;
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

/*  The dedupe entry of M (malloc'ed, NULL if absent). */
static uint8_t *s_dedupe(s_fix_t *fx, const s_msg_t *m, size_t *len)
{
    uint8_t key[GBX_INGRESS_DEDUPE_KEY_MAX];
    size_t klen = 0;
    assert_rc(gbx_ingress_dedupe_key(S_FROM, m->msg_id, key, &klen), GBX_OK);
    uint8_t *v = NULL;
    assert_rc(gbx_store_get(fx->store, GBX_KS_DEDUPE, key, klen, &v, len), GBX_OK);
    return v;
}

/*  Checks ANS is Accepted with DUP, and that its receipt verifies and speaks
    of M. Returns the receipt's sequence. */
static uint64_t s_expect_accepted(s_fix_t *fx, const Gbx__V1__Frame *ans, const s_msg_t *m, int dup)
{
    assert_int_equal(ans->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    assert_int_equal(ans->tag, S_TAG);
    assert_int_equal(!!ans->accepted->duplicate, dup);
    assert_non_null(ans->accepted->receipt);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify(ans->accepted->receipt, gbx_identity_public(fx->node), &r),
              GBX_OK);
    assert_rc(gbx_receipt_check(r, m->env, S_NODE), GBX_OK);
    assert_int_equal(r->status, GBX__V1__RECEIPT_STATUS__ACCEPTED);
    assert_string_equal(r->rule_id, GBX_INGRESS_ALLOW_ALL_RULE);
    assert_int_equal(r->policy_hash.len, GBX_HASH_BYTES);
    assert_true(r->accepted_at_ms > 0);
    uint64_t seq = r->sequence;
    gbx__v1__receipt__free_unpacked(r, NULL);
    /* the receipt in the answer is the one in the dedupe keyspace */
    size_t dlen = 0;
    uint8_t *d = s_dedupe(fx, m, &dlen);
    assert_non_null(d);
    size_t alen = gbx__v1__signed_receipt__get_packed_size(ans->accepted->receipt);
    uint8_t *a = malloc(alen);
    assert_non_null(a);
    gbx__v1__signed_receipt__pack(ans->accepted->receipt, a);
    assert_int_equal(alen, dlen);
    assert_memory_equal(a, d, dlen);
    free(a);
    free(d);
    return seq;
}

/* -------------------------------------------------------- rejection table */

typedef enum {
    C_SPOOF,          /* auth hk.cr, from gd.qh-amr */
    C_UNKNOWN_SENDER, /* from gd.nobody, signed by gd.nobody's keys */
    C_BAD_SIG,        /* a signature byte flipped */
    C_WRONG_KEY,      /* signed with another key of gd.qh-amr */
    C_TAMPERED,       /* a payload byte flipped */
    C_SHORT_PAYLOAD,  /* the payload's last byte missing */
    C_TOO_LARGE,      /* payload_length above max_payload_bytes */
    C_EXPIRED,        /* now = expires */
    C_NOT_YET,        /* now = created - skew - 1 */
    C_TTL,            /* expires = created + 8 d */
    C_UNKNOWN_DEST,   /* to hk.nobody */
    C_MALFORMED,      /* part 1 is not a Frame */
    C_TRUNCATED,      /* part 1 cut short */
    C_PROTOCOL,       /* part 0 "GBX2" */
    C_PING,           /* a Ping frame */
    C_CREDIT,         /* a Credit frame */
    C_POLICY_DENY,    /* the policy hook denies */
} s_kind_t;

typedef struct {
    const char *name;
    s_kind_t kind;
    gbx_err_t reason;
    uint64_t tag;   /* of the answer */
    int has_msg_id; /* the answer names the message */
} s_case_t;

static const s_case_t s_cases[] = {
    {"spoofed sender", C_SPOOF, GBX_E_SENDER_MISMATCH, S_TAG, 1},
    {"unknown sender", C_UNKNOWN_SENDER, GBX_E_UNKNOWN_AGENCY, S_TAG, 1},
    {"bad signature", C_BAD_SIG, GBX_E_BAD_SIGNATURE, S_TAG, 1},
    {"wrong key", C_WRONG_KEY, GBX_E_WRONG_KEY, S_TAG, 1},
    {"tampered payload", C_TAMPERED, GBX_E_PAYLOAD_HASH_MISMATCH, S_TAG, 1},
    {"short payload", C_SHORT_PAYLOAD, GBX_E_PAYLOAD_LENGTH_MISMATCH, S_TAG, 1},
    {"payload too large", C_TOO_LARGE, GBX_E_PAYLOAD_TOO_LARGE, S_TAG, 1},
    {"expired", C_EXPIRED, GBX_E_EXPIRED, S_TAG, 1},
    {"not yet valid", C_NOT_YET, GBX_E_NOT_YET_VALID, S_TAG, 1},
    {"ttl too long", C_TTL, GBX_E_TTL_TOO_LONG, S_TAG, 1},
    {"unknown destination", C_UNKNOWN_DEST, GBX_E_UNKNOWN_DESTINATION, S_TAG, 1},
    {"malformed part 1", C_MALFORMED, GBX_E_MALFORMED, 0, 0},
    {"truncated part 1", C_TRUNCATED, GBX_E_TRUNCATED, 0, 0},
    {"wrong protocol id", C_PROTOCOL, GBX_E_UNSUPPORTED_VERSION, 0, 0},
    {"ping is not a submit", C_PING, GBX_E_MALFORMED, 7, 0},
    {"credit is not a submit", C_CREDIT, GBX_E_MALFORMED, 0, 0},
    {"policy denies", C_POLICY_DENY, GBX_E_POLICY_DENIED, S_TAG, 1},
};

/*  Runs one case on a fresh fixture; returns the answer's reason. */
static void s_run_case(const s_case_t *k)
{
    void *state = NULL;
    s_setup(&state);
    s_fix_t *fx = state;
    if (k->kind == C_POLICY_DENY) {
        gbx_ingress_destroy(&fx->ing);
        char err[256];
        assert_rc(gbx_policy_parse("deny.yaml", s_deny_policy, strlen(s_deny_policy), fx->reg,
                                   &fx->policy, err, sizeof err),
                  GBX_OK);
        s_fix_ingress(fx);
    }
    tu_header_t t;
    tu_header_fixture(&t, 1);
    s_msg_t m;
    memset(&m, 0, sizeof m);
    const char *auth = S_FROM, *p0 = GBX_FRAME_PROTOCOL;
    gbx_identity_t *other = NULL;
    uint8_t *frame = NULL;
    size_t flen = 0;
    int with_payload = 1;

    switch (k->kind) {
    case C_SPOOF:
        auth = S_TO;
        break;
    case C_UNKNOWN_SENDER:
        t.h.from_agency = "gd.nobody";
        auth = "gd.nobody";
        other = tu_identity_fixed("gd.nobody", NULL);
        break;
    case C_WRONG_KEY:
        other = tu_identity_fixed(S_FROM, "other");
        break;
    case C_TOO_LARGE:
        t.h.payload_length = S_MAXPAY + 1;
        break;
    case C_EXPIRED:
        s_now = t.h.expires_at_ms;
        break;
    case C_NOT_YET:
        s_now = S_CREATED - S_SKEW - 1;
        break;
    case C_TTL:
        t.h.expires_at_ms = S_CREATED + 8 * S_DAY;
        break;
    case C_UNKNOWN_DEST:
        t.h.to_agency = "hk.nobody";
        break;
    case C_PROTOCOL:
        p0 = "GBX2";
        break;
    default:
        break;
    }
    s_msg_make(&m, other ? other : fx->sender, &t);
    frame = m.frame;
    flen = m.frame_len;
    uint8_t junk[] = {0x0f, 0x01};
    uint8_t *ctl = NULL;
    switch (k->kind) {
    case C_BAD_SIG: {
        /* flip a signature byte inside the Frame: rebuild it from the message */
        Gbx__V1__Frame *f = gbx__v1__frame__unpack(NULL, m.frame_len, m.frame);
        assert_non_null(f);
        f->submit->envelope->signature.data[10] ^= 1;
        free(m.frame);
        assert_rc(gbx_frame_encode(f, &m.frame, &m.frame_len), GBX_OK);
        gbx__v1__frame__free_unpacked(f, NULL);
        frame = m.frame;
        flen = m.frame_len;
        break;
    }
    case C_TAMPERED:
        m.sealed[m.sealed_len / 2] ^= 1;
        break;
    case C_SHORT_PAYLOAD:
        m.sealed_len--;
        break;
    case C_MALFORMED:
        frame = junk;
        flen = sizeof junk;
        break;
    case C_TRUNCATED:
        flen = m.frame_len - 3;
        with_payload = 0;
        break;
    case C_PING:
        assert_rc(gbx_frame_ping(7, 99, &ctl, &flen), GBX_OK);
        frame = ctl;
        with_payload = 0;
        break;
    case C_CREDIT:
        assert_rc(gbx_frame_credit(10, 1 << 20, &ctl, &flen), GBX_OK);
        frame = ctl;
        with_payload = 0;
        break;
    default:
        break;
    }

    size_t audit0 = tb_audit_count(fx->store);
    Gbx__V1__Frame *ans = NULL;
    gbx_ingress_result_t res;
    gbx_err_t rc = s_submit(fx, auth, p0, frame, flen, with_payload ? m.sealed : NULL,
                            with_payload ? m.sealed_len : 0, &ans, &res);
    assert_case_rc(k->name, rc, k->reason);
    assert_case_rc(k->name, res.reason, k->reason);
    assert_int_equal(ans->body_case, GBX__V1__FRAME__BODY_REJECTED);
    assert_case_rc(k->name, (gbx_err_t)ans->rejected->reason, k->reason);
    if (ans->tag != k->tag)
        fail_msg("case \"%s\": tag %llu, want %llu", k->name, (unsigned long long)ans->tag,
                 (unsigned long long)k->tag);
    if (k->has_msg_id) {
        assert_int_equal(ans->rejected->message_id.len, GBX_MSG_ID_BYTES);
        assert_memory_equal(ans->rejected->message_id.data, m.msg_id, GBX_MSG_ID_BYTES);
    } else {
        assert_int_equal(ans->rejected->message_id.len, 0);
    }
    assert_int_equal(ans->rejected->retry_after_ms, 0);
    gbx__v1__frame__free_unpacked(ans, NULL);
    /* nothing stored but the audit record */
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), 0);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 0);
    assert_int_equal(s_count(fx->store, GBX_KS_DEDUPE), 0);
    assert_int_equal(tb_audit_count(fx->store), audit0 + 1);
    gbx_ingress_stats_t st;
    gbx_ingress_stats(fx->ing, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.accepted, 0);
    assert_int_equal(gbx_ingress_rejections(fx->ing, k->reason), 1);

    free(ctl);
    s_msg_free(&m);
    gbx_identity_destroy(&other);
    s_teardown(&state);
}

static void test_rejections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++)
        s_run_case(&s_cases[i]);
}

/* ------------------------------------------------------------ other cases */

static void test_happy_path(void **state)
{
    s_fix_t *fx = *state;
    tu_header_t t;
    tu_header_fixture(&t, 1);
    s_msg_t m;
    s_msg_make(&m, fx->sender, &t);
    Gbx__V1__Frame *ans = NULL;
    gbx_ingress_result_t res;
    assert_rc(s_submit_msg(fx, &m, &ans, &res), GBX_OK);
    uint64_t seq = s_expect_accepted(fx, ans, &m, 0);
    gbx__v1__frame__free_unpacked(ans, NULL);
    assert_int_equal(res.seq, seq);
    assert_string_equal(res.dest, S_TO);
    assert_false(res.duplicate);

    /* message: be32(envelope len) || envelope || payload */
    uint8_t skey[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(seq, skey);
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(fx->store, GBX_KS_MESSAGES, skey, sizeof skey, &v, &vlen), GBX_OK);
    assert_non_null(v);
    size_t elen = ((size_t)v[0] << 24) | ((size_t)v[1] << 16) | ((size_t)v[2] << 8) | v[3];
    assert_int_equal(vlen, 4 + elen + m.sealed_len);
    size_t plen = 0;
    uint8_t *packed = tu_pack(m.env, &plen);
    assert_int_equal(plen, elen);
    assert_memory_equal(v + 4, packed, elen);
    assert_memory_equal(v + 4 + elen, m.sealed, m.sealed_len);
    free(packed);
    free(v);
    /* queue entry */
    uint8_t qkey[300];
    size_t qlen = 0;
    assert_rc(gbx_store_queue_key(S_TO, seq, qkey, sizeof qkey, &qlen), GBX_OK);
    assert_rc(gbx_store_get(fx->store, GBX_KS_QUEUES, qkey, qlen, &v, &vlen), GBX_OK);
    assert_non_null(v);
    gbx_qentry_t qe;
    assert_rc(gbx_qentry_decode(v, vlen, &qe), GBX_OK);
    uint64_t qbytes = qe.size;
    assert_int_equal(qbytes, 4 + elen + m.sealed_len);
    assert_string_equal(qe.from, S_FROM);
    assert_int_equal(qe.deliveries, 0);
    assert_int_equal(qe.attempts, 0);
    free(v);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 1);
    uint64_t dm = 0, db = 0;
    gbx_ingress_queue_depth(fx->ing, S_TO, &dm, &db);
    assert_int_equal(dm, 1);
    assert_int_equal(db, qbytes);
    gbx_ingress_queue_depth(fx->ing, S_FROM, &dm, &db);
    assert_int_equal(dm, 0);
    assert_int_equal(db, 0);
    /* audit record: metadata, no payload; the only record so far */
    assert_int_equal(tb_audit_count(fx->store), 1);
    size_t nrec = 0;
    char **recs = tb_audit_records(fx->store, &nrec);
    assert_int_equal(nrec, 1);
    char *text = recs[0];
    vlen = strlen(text);
    assert_non_null(strstr(text, "event=ACCEPTED\n"));
    assert_non_null(strstr(text, "from=" S_FROM "\n"));
    assert_non_null(strstr(text, "to=" S_TO "\n"));
    assert_non_null(strstr(text, "service=HK-CR-COEXTRACT\n"));
    assert_non_null(strstr(text, "class=PERSONAL\n"));
    assert_non_null(strstr(text, "rule_id=allow-all\n"));
    assert_true(vlen < 1024); /* far below the payload */
    tb_audit_free(recs, nrec);
    assert_int_equal(tb_audit_count(fx->store), 1);
    gbx_ingress_stats_t st;
    gbx_ingress_stats(fx->ing, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.sig_verified, 0); /* the vcache counts batch roots only */
    s_msg_free(&m);
}

static void test_duplicate(void **state)
{
    s_fix_t *fx = *state;
    tu_header_t t;
    tu_header_fixture(&t, 2);
    s_msg_t m;
    s_msg_make(&m, fx->sender, &t);
    Gbx__V1__Frame *ans = NULL;
    assert_rc(s_submit_msg(fx, &m, &ans, NULL), GBX_OK);
    uint64_t seq = s_expect_accepted(fx, ans, &m, 0);
    gbx__v1__frame__free_unpacked(ans, NULL);
    size_t r1len = 0;
    uint8_t *r1 = s_dedupe(fx, &m, &r1len);

    gbx_ingress_result_t res;
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            s_now = t.h.expires_at_ms + 5; /* a late retry still gets its receipt */
        assert_rc(s_submit_msg(fx, &m, &ans, &res), GBX_OK);
        assert_int_equal(s_expect_accepted(fx, ans, &m, 1), seq);
        assert_true(res.duplicate);
        size_t alen = gbx__v1__signed_receipt__get_packed_size(ans->accepted->receipt);
        uint8_t *a = malloc(alen);
        gbx__v1__signed_receipt__pack(ans->accepted->receipt, a);
        assert_int_equal(alen, r1len);
        assert_memory_equal(a, r1, r1len);
        free(a);
        gbx__v1__frame__free_unpacked(ans, NULL);
    }
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 1);
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), 1);
    assert_int_equal(tb_audit_count(fx->store), 3); /* accepted + 2 duplicates */
    gbx_ingress_stats_t st;
    gbx_ingress_stats(fx->ing, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.duplicates, 2);
    free(r1);
    s_msg_free(&m);
}

/*  The due keys of an accepted message (broker/queue.h): its expiry at
    expires_at_ms (value: the destination) and its dedupe record's at
    max(expires + skew, now + dedupe window) (value: the dedupe key). */
static void s_due_keys(s_fix_t *fx, uint64_t window, uint32_t variant)
{
    fx->dedupe_window_ms = window;
    gbx_ingress_destroy(&fx->ing);
    s_fix_ingress(fx);
    tu_header_t t;
    tu_header_fixture(&t, variant);
    uint64_t want_dedupe_at = t.h.expires_at_ms + S_SKEW;
    if (s_now + window > want_dedupe_at)
        want_dedupe_at = s_now + window;
    s_msg_t m;
    s_msg_make(&m, fx->sender, &t);
    Gbx__V1__Frame *ans = NULL;
    gbx_ingress_result_t res;
    assert_rc(s_submit_msg(fx, &m, &ans, &res), GBX_OK);
    gbx__v1__frame__free_unpacked(ans, NULL);
    int seen_q = 0, seen_d = 0;
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_EXPIRY, NULL, 0, &it), GBX_OK);
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *v = gbx_store_iter_value(it, &vl);
        uint64_t at = 0, seq = 0;
        gbx_due_kind_t kind;
        assert_rc(gbx_due_parse(k, kl, &at, &seq, &kind), GBX_OK);
        if (seq != res.seq)
            continue;
        if (kind == GBX_DUE_EXPIRE) {
            seen_q++;
            assert_int_equal(at, t.h.expires_at_ms);
            assert_int_equal(vl, strlen(S_TO));
            assert_memory_equal(v, S_TO, vl);
        } else {
            seen_d++;
            assert_int_equal(at, want_dedupe_at);
            uint8_t dk[GBX_INGRESS_DEDUPE_KEY_MAX];
            size_t dkl = 0;
            assert_rc(gbx_ingress_dedupe_key(S_FROM, m.msg_id, dk, &dkl), GBX_OK);
            assert_int_equal(vl, dkl);
            assert_memory_equal(v, dk, dkl);
        }
    }
    gbx_store_iter_destroy(&it);
    assert_int_equal(seen_q, 1);
    assert_int_equal(seen_d, 1);
    s_msg_free(&m);
}

static void test_due_keys(void **state)
{
    s_fix_t *fx = *state;
    s_due_keys(fx, 0, 7);          /* no window: the spec's minimum, expires + skew */
    s_due_keys(fx, 30 * S_DAY, 8); /* a window longer than that: now + window */
}

static void test_dedupe_restart(void **state)
{
    s_fix_t *fx = *state;
    tu_header_t t;
    tu_header_fixture(&t, 3);
    s_msg_t m;
    s_msg_make(&m, fx->sender, &t);
    Gbx__V1__Frame *ans = NULL;
    assert_rc(s_submit_msg(fx, &m, &ans, NULL), GBX_OK);
    uint64_t seq = s_expect_accepted(fx, ans, &m, 0);
    gbx__v1__frame__free_unpacked(ans, NULL);
    size_t r1len = 0;
    uint8_t *r1 = s_dedupe(fx, &m, &r1len);

    gbx_ingress_destroy(&fx->ing);
    gbx_store_destroy(&fx->store);
    assert_rc(gbx_store_open(fx->dir, NULL, &fx->store), GBX_OK);
    s_fix_ingress(fx);

    assert_rc(s_submit_msg(fx, &m, &ans, NULL), GBX_OK);
    assert_int_equal(s_expect_accepted(fx, ans, &m, 1), seq);
    size_t alen = gbx__v1__signed_receipt__get_packed_size(ans->accepted->receipt);
    uint8_t *a = malloc(alen);
    gbx__v1__signed_receipt__pack(ans->accepted->receipt, a);
    assert_int_equal(alen, r1len);
    assert_memory_equal(a, r1, r1len);
    free(a);
    gbx__v1__frame__free_unpacked(ans, NULL);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 1);

    /* a new message after the restart gets a higher sequence */
    tu_header_t t2;
    tu_header_fixture(&t2, 4);
    s_msg_t m2;
    s_msg_make(&m2, fx->sender, &t2);
    assert_rc(s_submit_msg(fx, &m2, &ans, NULL), GBX_OK);
    assert_true(s_expect_accepted(fx, ans, &m2, 0) > seq);
    gbx__v1__frame__free_unpacked(ans, NULL);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 2);
    free(r1);
    s_msg_free(&m);
    s_msg_free(&m2);
}

static void test_batch_signed(void **state)
{
    s_fix_t *fx = *state;
    tu_header_t t[S_BATCH_N];
    s_msg_t m[S_BATCH_N];
    const gbx_header_t *hs[S_BATCH_N];
    gbx_envelope_t *envs[S_BATCH_N];
    for (int i = 0; i < S_BATCH_N; i++) {
        tu_header_fixture(&t[i], 100 + (uint32_t)i);
        memset(&m[i], 0, sizeof m[i]);
        s_seal(&t[i], &m[i]);
        hs[i] = &t[i].h;
    }
    assert_rc(gbx_envelope_sign_batch(fx->sender, hs, S_BATCH_N, envs), GBX_OK);
    for (int i = 0; i < S_BATCH_N; i++) {
        m[i].env = envs[i];
        assert_true(gbx_envelope_is_batch(envs[i]));
        s_msg_frame(&m[i]);
        Gbx__V1__Frame *ans = NULL;
        assert_rc(s_submit_msg(fx, &m[i], &ans, NULL), GBX_OK);
        s_expect_accepted(fx, ans, &m[i], 0);
        gbx__v1__frame__free_unpacked(ans, NULL);
    }
    gbx_ingress_stats_t st;
    gbx_ingress_stats(fx->ing, &st);
    assert_int_equal(st.accepted, S_BATCH_N);
    assert_int_equal(st.sig_verified, 1);
    assert_int_equal(st.sig_cache_hits, S_BATCH_N - 1);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), S_BATCH_N);
    for (int i = 0; i < S_BATCH_N; i++)
        s_msg_free(&m[i]);
}

/* ------------------------------------------------------- queue limits */

typedef struct {
    const char *name;
    uint64_t max_messages;
    uint64_t max_bytes_halves; /* queue_max_bytes in halves of one message's size; 0 = none */
    uint64_t retry_after_ms;   /* opts value (0 = the default) */
    uint64_t want_retry_ms;    /* in the RETRY_LATER answer */
    uint64_t n_accepted;       /* messages to hk.cr that fit */
} s_limit_t;

static const s_limit_t s_limit_cases[] = {
    {"limit by messages", 3, 0, 0, GBX_INGRESS_RETRY_AFTER_DEFAULT_MS, 3},
    {"limit by bytes", 0, 5, 2500, 2500, 2},
    {"both limits, messages first", 2, 9, 700, 700, 2},
    {"both limits, bytes first", 10, 3, 0, GBX_INGRESS_RETRY_AFTER_DEFAULT_MS, 1},
};

/*  The stored size of M: the value of its messages entry. */
static uint64_t s_stored_size(const s_msg_t *m)
{
    return 4u + gbx_envelope_size(m->env) + m->sealed_len;
}

static void s_expect_depth(s_fix_t *fx, const char *dest, uint64_t msgs, uint64_t bytes)
{
    uint64_t dm = 99, db = 99;
    gbx_ingress_queue_depth(fx->ing, dest, &dm, &db);
    assert_int_equal(dm, msgs);
    assert_int_equal(db, bytes);
}

/*  Submits M, expects Rejected RETRY_LATER with WANT_RETRY and nothing stored. */
static void s_expect_retry_later(s_fix_t *fx, const s_limit_t *k, const s_msg_t *m)
{
    size_t msgs0 = s_count(fx->store, GBX_KS_MESSAGES);
    size_t queues0 = s_count(fx->store, GBX_KS_QUEUES);
    size_t dedupe0 = s_count(fx->store, GBX_KS_DEDUPE);
    size_t audit0 = tb_audit_count(fx->store);
    uint64_t rej0 = gbx_ingress_rejections(fx->ing, GBX_E_RETRY_LATER);
    Gbx__V1__Frame *ans = NULL;
    gbx_ingress_result_t res;
    gbx_err_t rc = s_submit_msg(fx, m, &ans, &res);
    assert_case_rc(k->name, rc, GBX_E_RETRY_LATER);
    assert_case_rc(k->name, res.reason, GBX_E_RETRY_LATER);
    assert_int_equal(ans->body_case, GBX__V1__FRAME__BODY_REJECTED);
    assert_int_equal(ans->tag, S_TAG);
    assert_case_rc(k->name, (gbx_err_t)ans->rejected->reason, GBX_E_RETRY_LATER);
    assert_int_equal(ans->rejected->message_id.len, GBX_MSG_ID_BYTES);
    assert_memory_equal(ans->rejected->message_id.data, m->msg_id, GBX_MSG_ID_BYTES);
    assert_true(ans->rejected->retry_after_ms > 0);
    assert_int_equal(ans->rejected->retry_after_ms, k->want_retry_ms);
    gbx__v1__frame__free_unpacked(ans, NULL);
    size_t dlen = 0;
    assert_null(s_dedupe(fx, m, &dlen));
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), msgs0);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), queues0);
    assert_int_equal(s_count(fx->store, GBX_KS_DEDUPE), dedupe0);
    assert_int_equal(tb_audit_count(fx->store), audit0 + 1);
    assert_int_equal(gbx_ingress_rejections(fx->ing, GBX_E_RETRY_LATER), rej0 + 1);
    /* the audit record: the last key of the keyspace (the newest sequence) */
    size_t nrec = 0;
    char **recs = tb_audit_records(fx->store, &nrec);
    assert_true(nrec > 0);
    char *text = strdup(recs[nrec - 1]);
    tb_audit_free(recs, nrec);
    assert_non_null(text);
    assert_non_null(strstr(text, "event=REJECTED\n"));
    assert_non_null(strstr(text, "reason=RETRY_LATER\n"));
    assert_non_null(strstr(text, "to=" S_TO "\n"));
    free(text);
}

static void s_accept(s_fix_t *fx, const s_msg_t *m, int dup)
{
    Gbx__V1__Frame *ans = NULL;
    assert_rc(s_submit_msg(fx, m, &ans, NULL), GBX_OK);
    s_expect_accepted(fx, ans, m, dup);
    gbx__v1__frame__free_unpacked(ans, NULL);
}

static void s_run_limit(const s_limit_t *k)
{
    void *state = NULL;
    s_setup(&state);
    s_fix_t *fx = state;
    enum { MAXN = 8 };
    tu_header_t t[MAXN + 1];
    s_msg_t m[MAXN + 1];
    assert_true(k->n_accepted < MAXN);
    size_t n = (size_t)k->n_accepted;
    for (size_t i = 0; i <= n; i++) {
        tu_header_fixture(&t[i], 300 + (uint32_t)i);
        s_msg_make(&m[i], fx->sender, &t[i]);
    }
    uint64_t size = s_stored_size(&m[0]);
    for (size_t i = 1; i <= n; i++)
        assert_int_equal(s_stored_size(&m[i]), size);
    gbx_ingress_destroy(&fx->ing);
    fx->queue_max_messages = k->max_messages;
    fx->queue_max_bytes = k->max_bytes_halves * size / 2;
    fx->retry_after_ms = k->retry_after_ms;
    s_fix_ingress(fx);

    for (size_t i = 0; i < n; i++) {
        s_accept(fx, &m[i], 0);
        s_expect_depth(fx, S_TO, i + 1, (i + 1) * size);
    }
    /* N+1: RETRY_LATER, nothing stored, depth unchanged */
    s_expect_retry_later(fx, k, &m[n]);
    s_expect_depth(fx, S_TO, n, n * size);
    /* dedupe (13) comes before capacity (17): the receipt, queue full or not */
    s_accept(fx, &m[0], 1);
    s_expect_depth(fx, S_TO, n, n * size);
    /* another destination has its own queue */
    tu_header_t to;
    tu_header_fixture(&to, 399);
    to.h.to_agency = S_FROM;
    s_msg_t mo;
    s_msg_make(&mo, fx->sender, &to);
    s_accept(fx, &mo, 0);
    uint64_t osize = s_stored_size(&mo);
    s_expect_depth(fx, S_FROM, 1, osize);
    s_expect_depth(fx, S_TO, n, n * size);

    /* restart: counters rebuilt from the queues keyspace, limit still held */
    gbx_ingress_destroy(&fx->ing);
    gbx_store_destroy(&fx->store);
    assert_rc(gbx_store_open(fx->dir, NULL, &fx->store), GBX_OK);
    s_fix_ingress(fx);
    s_expect_depth(fx, S_TO, n, n * size);
    s_expect_depth(fx, S_FROM, 1, osize);
    s_expect_retry_later(fx, k, &m[n]);

    /* the delivery path took one out of hk.cr (after its own commit) */
    assert_rc(gbx_ingress_dequeued(fx->ing, S_TO, size), GBX_OK);
    s_expect_depth(fx, S_TO, n - 1, (n - 1) * size);
    s_accept(fx, &m[n], 0); /* admitted afresh: it was never stored */
    s_expect_depth(fx, S_TO, n, n * size);
    tu_header_t tx;
    tu_header_fixture(&tx, 398);
    s_msg_t mx;
    s_msg_make(&mx, fx->sender, &tx);
    s_expect_retry_later(fx, k, &mx); /* room for exactly one */
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), n + 2);

    s_msg_free(&mx);
    s_msg_free(&mo);
    for (size_t i = 0; i <= n; i++)
        s_msg_free(&m[i]);
    s_teardown(&state);
}

/*  Against tb_registry: gd.qh-amr -> hk.cr, HK-CR-COEXTRACT, is GD_TO_HK. */
static const char s_limit_policy[] =
    "version: ingress-test\n"
    "rules:\n"
    "  - {id: hold-me, match: {purpose: [HOLD-ME]}, outcome: HOLD}\n"
    "  - id: capped\n"
    "    match: {direction: GD_TO_HK, service: HK-CR-COEXTRACT}\n"
    "    volume: {messages_per_day: 3, at_cap: DENY}\n"
    "    outcome: ALLOW\n";

/*  The store's value of counter KEY, as a number. */
static uint64_t s_counter_value(s_fix_t *fx, const char *key)
{
    uint8_t *v = NULL;
    size_t len = 0;
    assert_rc(gbx_store_get(fx->store, GBX_KS_COUNTERS, key, strlen(key), &v, &len), GBX_OK);
    assert_non_null(v);
    assert_int_equal(len, 8);
    uint64_t n = 0;
    for (size_t i = 0; i < 8; i++)
        n = n << 8 | v[i];
    free(v);
    return n;
}

static void test_policy_decides(void **state)
{
    s_fix_t *fx = *state;
    char err[256];
    assert_rc(gbx_policy_parse("limit.yaml", s_limit_policy, strlen(s_limit_policy), fx->reg,
                               &fx->policy, err, sizeof err),
              GBX_OK);
    assert_null(gbx_ingress_set_policy(fx->ing, fx->policy));

    /* held */
    tu_header_t t;
    tu_header_fixture(&t, 30);
    t.h.purpose_code = "HOLD-ME";
    s_msg_t m;
    s_msg_make(&m, fx->sender, &t);
    Gbx__V1__Frame *ans = NULL;
    gbx_ingress_result_t res;
    assert_rc(s_submit_msg(fx, &m, &ans, &res), GBX_OK);
    assert_int_equal(ans->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify(ans->accepted->receipt, gbx_identity_public(fx->node), &r),
              GBX_OK);
    assert_int_equal(r->status, GBX__V1__RECEIPT_STATUS__HELD);
    assert_string_equal(r->rule_id, "hold-me");
    assert_memory_equal(r->policy_hash.data, gbx_policy_hash(fx->policy), GBX_HASH_BYTES);
    gbx__v1__receipt__free_unpacked(r, NULL);
    gbx__v1__frame__free_unpacked(ans, NULL);
    assert_true(res.held);
    assert_int_equal(s_count(fx->store, GBX_KS_HELD), 1);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 0);
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), 1);
    s_msg_free(&m);
    size_t nrec = 0;
    char **recs = tb_audit_records(fx->store, &nrec);
    int held_records = 0;
    for (size_t k = 0; k < nrec; k++) {
        const char *text = recs[k];
        if (strstr(text, "event=HELD\n")) {
            held_records++;
            assert_non_null(strstr(text, "rule_id=hold-me\n"));
            assert_non_null(strstr(text, "decision=HOLD\n"));
            assert_non_null(strstr(text, "why=rule hold-me holds for approval\n"));
        }
    }
    tb_audit_free(recs, nrec);
    assert_int_equal(held_records, 1);

    /* one group of three under the cap of 3 a day (one taken by the hold) */
    gbx_checker_t *ck = NULL;
    gbx_ingress_opts_t o;
    gbx_ingress_opts_init(&o);
    o.store = fx->store, o.registry = fx->reg, o.node = fx->node, o.node_id = S_NODE;
    o.max_payload_bytes = S_MAXPAY, o.max_ttl_ms = 7 * S_DAY, o.clock_skew_ms = S_SKEW;
    o.clock = s_clock;
    assert_rc(gbx_checker_new(&o, &ck), GBX_OK);
    s_msg_t ms[3];
    gbx_submission_t subs[3];
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    for (int i = 0; i < 3; i++) {
        tu_header_fixture(&t, 31 + (uint32_t)i);
        s_msg_make(&ms[i], fx->sender, &t);
        gbx_part_t parts[3] = {{(const uint8_t *)GBX_FRAME_PROTOCOL, strlen(GBX_FRAME_PROTOCOL)},
                               {ms[i].frame, ms[i].frame_len},
                               {ms[i].sealed, ms[i].sealed_len}};
        gbx_submission_init(&subs[i]);
        gbx_checker_run(ck, S_FROM, parts, 3, &subs[i]);
        assert_rc(subs[i].reason, GBX_OK);
        gbx_ingress_admit(fx->ing, &subs[i], b);
    }
    assert_rc(gbx_ingress_seal(fx->ing, b), GBX_OK);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    const gbx_err_t want[3] = {GBX_OK, GBX_OK, GBX_E_POLICY_DENIED};
    for (int i = 0; i < 3; i++) {
        uint8_t *reply = NULL;
        size_t rlen = 0;
        assert_rc(gbx_ingress_finish(fx->ing, &subs[i], GBX_OK, &reply, &rlen), want[i]);
        free(reply);
        gbx_submission_clear(&subs[i]);
        s_msg_free(&ms[i]);
    }
    gbx_ingress_group_end(fx->ing);
    gbx_checker_destroy(&ck);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 2);
    /* "m/<day in UTC+8>/<exporter>/<route>" and the same per class */
    char day[16], key[128];
    time_t secs = (time_t)((s_now + 8 * 3600 * 1000ull) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    snprintf(key, sizeof key, "m/%s/%s/GBA_STANDARD_CONTRACT", day, S_FROM);
    assert_int_equal(s_counter_value(fx, key), 3);
    snprintf(key, sizeof key, "m/%s/%s/GBA_STANDARD_CONTRACT/PERSONAL", day, S_FROM);
    assert_int_equal(s_counter_value(fx, key), 3);
}

static void test_hold_limits(void **state)
{
    s_fix_t *fx = *state;
    gbx_ingress_destroy(&fx->ing);
    fx->queue_max_messages = 2;
    s_fix_ingress(fx);
    static const char hold_all[] = "version: hold-all\n"
                                   "rules:\n"
                                   "  - {id: hold-all, outcome: HOLD}\n";
    char err[256];
    assert_rc(gbx_policy_parse("hold.yaml", hold_all, strlen(hold_all), fx->reg, &fx->policy, err,
                               sizeof err),
              GBX_OK);
    gbx_ingress_set_policy(fx->ing, fx->policy);
    for (uint32_t i = 0; i < 3; i++) {
        tu_header_t t;
        tu_header_fixture(&t, 40 + i);
        s_msg_t m;
        s_msg_make(&m, fx->sender, &t);
        Gbx__V1__Frame *ans = NULL;
        gbx_ingress_result_t res;
        assert_rc(s_submit_msg(fx, &m, &ans, &res), i < 2 ? GBX_OK : GBX_E_RETRY_LATER);
        if (i < 2)
            assert_true(res.held);
        gbx__v1__frame__free_unpacked(ans, NULL);
        s_msg_free(&m);
    }
    assert_int_equal(s_count(fx->store, GBX_KS_HELD), 2);
    uint64_t depth = 0;
    gbx_ingress_queue_depth(fx->ing, S_TO, &depth, NULL);
    assert_int_equal(depth, 2);
    gbx_ingress_destroy(&fx->ing); /* a restart: depths from the store */
    s_fix_ingress(fx);
    gbx_ingress_queue_depth(fx->ing, S_TO, &depth, NULL);
    assert_int_equal(depth, 2);
}

static void test_queue_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_limit_cases / sizeof s_limit_cases[0]; i++)
        s_run_limit(&s_limit_cases[i]);
}

static void test_queue_legacy(void **state)
{
    s_fix_t *fx = *state;
    /* an entry of hk.cr with an empty value, its message 37 bytes */
    uint8_t skey[GBX_STORE_SEQ_KEY_BYTES], qkey[300], body[37];
    size_t qlen = 0;
    memset(body, 0x33, sizeof body);
    uint64_t seq = gbx_store_next_seq(fx->store);
    gbx_store_seq_key(seq, skey);
    assert_rc(gbx_store_queue_key(S_TO, seq, qkey, sizeof qkey, &qlen), GBX_OK);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, skey, sizeof skey, body, sizeof body), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, qkey, qlen, "", 0), GBX_OK);
    gbx_batch_put_seq(b, seq);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    gbx_ingress_destroy(&fx->ing);
    s_fix_ingress(fx);
    s_expect_depth(fx, S_TO, 1, sizeof body);
    /* dequeued: to 0, never below */
    assert_rc(gbx_ingress_dequeued(fx->ing, S_TO, 1000), GBX_OK);
    s_expect_depth(fx, S_TO, 0, 0);
    assert_rc(gbx_ingress_dequeued(fx->ing, S_TO, 1), GBX_E_STATE);
    assert_rc(gbx_ingress_dequeued(fx->ing, "hk.nobody", 1), GBX_E_STATE);
    assert_rc(gbx_ingress_dequeued(fx->ing, NULL, 1), GBX_E_ARG);
    assert_rc(gbx_ingress_dequeued(NULL, S_TO, 1), GBX_E_ARG);
    s_expect_depth(fx, "hk.nobody", 0, 0);
}

static void test_args(void **state)
{
    s_fix_t *fx = *state;
    gbx_ingress_opts_t o;
    gbx_ingress_opts_init(&o);
    gbx_ingress_t *ing = NULL;
    assert_rc(gbx_ingress_new(&o, &ing), GBX_E_ARG);
    assert_null(ing);
    uint8_t *reply = NULL;
    size_t rlen = 0;
    assert_rc(gbx_ingress_submit(fx->ing, NULL, NULL, 0, &reply, &rlen, NULL), GBX_E_ARG);
    /* no parts at all: a Rejected UNSUPPORTED_VERSION still comes back */
    assert_rc(gbx_ingress_submit(fx->ing, S_FROM, NULL, 0, &reply, &rlen, NULL),
              GBX_E_UNSUPPORTED_VERSION);
    assert_non_null(reply);
    free(reply);
    gbx_ingress_destroy(&ing);
    gbx_ingress_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_happy_path, s_setup, s_teardown),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test_setup_teardown(test_duplicate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_due_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_signed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_policy_decides, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hold_limits, s_setup, s_teardown),
        cmocka_unit_test(test_queue_limits),
        cmocka_unit_test_setup_teardown(test_queue_legacy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_args, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
