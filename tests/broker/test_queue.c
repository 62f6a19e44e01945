/*  test_queue: the durable records of delivery (broker/queue.h): the queue
    entry codec, due keys, delivery ids, and every batch operation against a
    real RocksDB in a temporary directory. Audit records are read back from
    the audit keyspace (broker/audit.h: "key=value" lines).

    Fixture: dest hk.cr, a message at seq S_SEQ with a messages[seq] value
    (what the ingress writes), a queue entry from gd.qh-amr expiring at
    S_EXP, enqueued with gbx_queue_enqueue and committed.

    Codec cases:
      qentry_roundtrip   table: typical, empty from, max-length from (64
                         bytes), all-ones numbers; encode -> decode is the
                         identity, length = 33 + strlen(from) + 16 + 8 and at
                         most GBX_QENTRY_MAX (FAILS at the time of writing:
                         GBX_QENTRY_MAX leaves out expires_at_ms, 105 < 113)
      qentry_legacy      an 8-byte value is a size alone: payload = size,
                         expires = UINT64_MAX, deliveries = attempts = 0;
                         an entry written before accepted_ms (8 bytes
                         shorter) decodes with accepted_ms 0
      qentry_malformed   table: empty, 7, 9, 32 bytes, one short, one
                         trailing, from length 65 (> GBX_ID_MAX), from length
                         larger than the value -> GBX_E_STATE
      due_order          keys of (at, seq) pairs straddling byte boundaries
                         sort by memcmp as by (at, seq); they parse back; a
                         wrong length or kind byte is GBX_E_STATE; written to
                         the expiry keyspace they iterate in time order
      delivery_id        (seq, n) -> id -> seq round trip for seq up to 2^47
                         and n in {1, 2, 65535}; distinct ids per delivery

    Operation cases (real store):
      enqueue            entry and due key (value = dest) written; no audit
      mark_ack           mark: deliveries/attempts + 1 in *e and on disk,
                         DELIVERED audit with delivery_id and attempt; second
                         mark: 2; ack with delivery number 0 or 3 (> 2):
                         GBX_E_STATE, nothing in the batch, nothing changes;
                         ack of delivery 1 (an earlier id): entry, message,
                         due key gone, ACKED audit with that delivery_id;
                         second ack: GBX_E_STATE, nothing written
      unmark             attempts - 1, deliveries kept, UNSENT audit
      expire             as ack without an id, EXPIRED audit; again: STATE
      deadletter         entry moves to dlq unchanged, message stays, due key
                         gone, DEAD_LETTERED audit; mark / ack / deadletter
                         of it: GBX_E_STATE
      replay             dlq -> queues, attempts 0, deliveries kept, due key
                         back, REPLAYED audit with by=; replay of a queued one:
                         STATE; an expired one (at = expires): GBX_E_EXPIRED,
                         nothing added, stays in dlq
      forget             due key (kind D) and dedupe record deleted, no audit
      mark_max           deliveries = GBX_DELIVERIES_MAX - 1: mark OK (id
                         names delivery 65535), then GBX_E_DEAD_LETTERED with
                         nothing added; ack of delivery 65535 works
      same_batch         mark then ack (of the id the mark gave) in one batch:
                         both OK, committed: entry gone, DELIVERED then ACKED;
                         ack twice in one batch: second GBX_E_STATE; two marks
                         in one batch: deliveries 2
      absent             every operation on a message never queued: STATE
      hold_release       hold: a held entry (deadline || queue entry) and its
                         'H' due key, nothing queued; release by an approver:
                         held entry and 'H' key gone, queued with its 'Q'
                         key, HOLD_APPROVED audit with by= and comment=;
                         release again: STATE; a release at expires_at:
                         GBX_E_EXPIRED
      hold_refuse        refuse HOLD_REJECTED: held entry, 'H' key and the
                         message gone, HOLD_REJECTED audit with by= and
                         comment=; a HOLD_TIMEOUT refusal of a message past
                         its expiry becomes EXPIRED; refuse of a queued
                         (not held) message: STATE */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "queue.h"
#include "tb_fixture.h"
#include "store.h"

#define S_DEST  "hk.cr"
#define S_FROM  "gd.qh-amr"
#define S_SEQ   7u
#define S_EXP   1790086400000ull
#define S_NOW   1790000001000ull
#define S_SIZE  1500u
#define S_UNTIL (S_NOW + 3600000ull) /* a hold's deadline */

/* ------------------------------------------------------------- fixtures */

typedef struct {
    char *dir;
    gbx_store_t *store;
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_tmpdir();
    assert_rc(gbx_store_open(fx->dir, NULL, &fx->store), GBX_OK);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    gbx_store_destroy(&fx->store);
    tu_rmtree(&fx->dir);
    free(fx);
    return 0;
}

static void s_entry(gbx_qentry_t *e, uint32_t deliveries, uint32_t attempts)
{
    memset(e, 0, sizeof *e);
    e->size = S_SIZE;
    e->payload = 1040;
    e->expires_at_ms = S_EXP;
    e->deliveries = deliveries;
    e->attempts = attempts;
    snprintf(e->from, sizeof e->from, "%s", S_FROM);
    for (unsigned i = 0; i < GBX_MSG_ID_BYTES; i++)
        e->message_id[i] = (uint8_t)(0xa0 + i);
}

static void s_entry_equal(const gbx_qentry_t *a, const gbx_qentry_t *b)
{
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->payload, b->payload);
    assert_int_equal(a->expires_at_ms, b->expires_at_ms);
    assert_int_equal(a->deliveries, b->deliveries);
    assert_int_equal(a->attempts, b->attempts);
    assert_string_equal(a->from, b->from);
    assert_memory_equal(a->message_id, b->message_id, GBX_MSG_ID_BYTES);
    assert_int_equal(a->accepted_ms, b->accepted_ms);
}

static void s_commit(s_fix_t *fx, gbx_batch_t **b)
{
    assert_rc(gbx_store_commit(fx->store, b), GBX_OK);
    assert_null(*b);
}

static gbx_batch_t *s_batch(s_fix_t *fx)
{
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    return b;
}

/*  Value of KS[key] (malloc'ed) or NULL. */
static uint8_t *s_get(s_fix_t *fx, gbx_keyspace_t ks, const void *key, size_t klen, size_t *vlen)
{
    uint8_t *v = NULL;
    size_t l = 0;
    assert_rc(gbx_store_get(fx->store, ks, key, klen, &v, &l), GBX_OK);
    if (vlen)
        *vlen = l;
    return v;
}

/*  The entry at KS[dest, seq]: 1 and *E, or 0 when absent. */
static int s_load(s_fix_t *fx, gbx_keyspace_t ks, uint64_t seq, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    assert_rc(gbx_store_queue_key(S_DEST, seq, key, sizeof key, &klen), GBX_OK);
    size_t vlen = 0;
    uint8_t *v = s_get(fx, ks, key, klen, &vlen);
    if (!v)
        return 0;
    assert_rc(gbx_qentry_decode(v, vlen, e), GBX_OK);
    free(v);
    return 1;
}

static int s_has_message(s_fix_t *fx, uint64_t seq)
{
    uint8_t k[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(seq, k);
    uint8_t *v = s_get(fx, GBX_KS_MESSAGES, k, sizeof k, NULL);
    free(v);
    return v != NULL;
}

/*  1 when the expire due key of (at, seq) holds dest. */
static int s_has_due(s_fix_t *fx, uint64_t at, uint64_t seq)
{
    uint8_t due[GBX_DUE_KEY_LEN];
    gbx_due_key(at, seq, GBX_DUE_EXPIRE, due);
    size_t vlen = 0;
    uint8_t *v = s_get(fx, GBX_KS_EXPIRY, due, sizeof due, &vlen);
    if (!v)
        return 0;
    assert_int_equal(vlen, strlen(S_DEST));
    assert_memory_equal(v, S_DEST, vlen);
    free(v);
    return 1;
}

static size_t s_count(s_fix_t *fx, gbx_keyspace_t ks)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, ks, NULL, 0, &it), GBX_OK);
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it))
        n++;
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

/*  The audit record number I (0 = oldest), NUL-terminated, malloc'ed. */
static char *s_audit(s_fix_t *fx, size_t i)
{
    size_t n = 0;
    char **recs = tb_audit_records(fx->store, &n);
    assert_true(i < n);
    char *out = recs[i];
    recs[i] = NULL;
    tb_audit_free(recs, n);
    return out;
}

/*  REC has the whole line "key=value". */
static int s_line(const char *rec, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = rec; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0)
            return 1;
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

static void s_expect_line(const char *rec, const char *key, const char *val)
{
    char line[256];
    snprintf(line, sizeof line, "%s=%s", key, val);
    if (!s_line(rec, line))
        fail_msg("audit record lacks \"%s\":\n%s", line, rec);
}

static void s_expect_u64(const char *rec, const char *key, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    s_expect_line(rec, key, num);
}

/*  The latest audit record is EVENT for S_SEQ at AT, counted N in all. */
static char *s_expect_audit(s_fix_t *fx, size_t n, const char *event, uint64_t at)
{
    assert_int_equal(tb_audit_count(fx->store), n);
    char *rec = s_audit(fx, n - 1);
    assert_true(strncmp(rec, "v=1\n", 4) == 0);
    s_expect_line(rec, "event", event);
    s_expect_u64(rec, "at_ms", at);
    s_expect_u64(rec, "seq", S_SEQ);
    s_expect_line(rec, "from", S_FROM);
    s_expect_line(rec, "to", S_DEST);
    s_expect_line(rec, "message_id", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    return rec;
}

/*  Queues S_SEQ with entry E and a messages[S_SEQ] value, committed. */
static void s_enqueue(s_fix_t *fx, const gbx_qentry_t *e)
{
    gbx_batch_t *b = s_batch(fx);
    uint8_t k[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(S_SEQ, k);
    uint8_t body[S_SIZE];
    memset(body, 0x33, sizeof body);
    assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, k, sizeof k, body, sizeof body), GBX_OK);
    assert_rc(gbx_queue_enqueue(b, S_DEST, S_SEQ, e), GBX_OK);
    s_commit(fx, &b);
}

static void s_enqueue_default(s_fix_t *fx)
{
    gbx_qentry_t e;
    s_entry(&e, 0, 0);
    s_enqueue(fx, &e);
}

/* ------------------------------------------------------------- the codec */

static void test_qentry_roundtrip(void **state)
{
    (void)state;
    char max_from[GBX_ID_MAX + 1];
    memset(max_from, 'a', GBX_ID_MAX);
    max_from[GBX_ID_MAX] = 0;
    struct {
        const char *name;
        const char *from;
        uint64_t n64;
        uint32_t n32;
    } cases[] = {
        {"typical", S_FROM, 1500, 3},
        {"empty from", "", 0, 0},
        {"max-length from", max_from, 1ull << 40, 65535},
        {"all ones", max_from, UINT64_MAX, UINT32_MAX},
    };
    int over = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gbx_qentry_t e, d;
        memset(&e, 0, sizeof e);
        e.size = cases[i].n64;
        e.payload = cases[i].n64 ^ 0x5a5a;
        e.expires_at_ms = cases[i].n64 - 1;
        e.deliveries = cases[i].n32;
        e.attempts = cases[i].n32 / 2;
        e.accepted_ms = cases[i].n64 ^ 0x1234;
        snprintf(e.from, sizeof e.from, "%s", cases[i].from);
        for (unsigned k = 0; k < GBX_MSG_ID_BYTES; k++)
            e.message_id[k] = (uint8_t)(i * 31 + k);
        /* room beyond GBX_QENTRY_MAX, so that an encoder overrunning the
           documented bound is caught by the assertion below, not by a
           corrupted stack */
        uint8_t buf[GBX_QENTRY_MAX + 64];
        size_t len = 0;
        gbx_qentry_encode(&e, buf, &len);
        if (len != 33 + strlen(cases[i].from) + GBX_MSG_ID_BYTES + 8)
            fail_msg("case \"%s\": length %zu", cases[i].name, len);
        assert_case_rc(cases[i].name, gbx_qentry_decode(buf, len, &d), GBX_OK);
        s_entry_equal(&e, &d);
        if (len > GBX_QENTRY_MAX) {
            print_error("case \"%s\": encoded %zu bytes, GBX_QENTRY_MAX is %u (the bound "
                        "callers size their buffers by)\n",
                        cases[i].name, len, (unsigned)GBX_QENTRY_MAX);
            over++;
        }
    }
    assert_int_equal(over, 0);
}

static void test_qentry_legacy(void **state)
{
    (void)state;
    uint8_t v[8] = {0, 0, 0, 0, 0, 1, 0x02, 0x03}; /* 66051 */
    gbx_qentry_t d;
    memset(&d, 0x7f, sizeof d);
    assert_rc(gbx_qentry_decode(v, sizeof v, &d), GBX_OK);
    assert_int_equal(d.size, 66051);
    assert_int_equal(d.payload, 66051);
    assert_int_equal(d.expires_at_ms, UINT64_MAX);
    assert_int_equal(d.deliveries, 0);
    assert_int_equal(d.attempts, 0);
    assert_string_equal(d.from, "");

    /* the format before accepted_ms: the same fields, 8 bytes shorter */
    gbx_qentry_t e;
    memset(&e, 0, sizeof e);
    e.size = 100;
    e.accepted_ms = 1796421974000ull;
    snprintf(e.from, sizeof e.from, "hk.kiosk");
    uint8_t buf[GBX_QENTRY_MAX];
    size_t len = 0;
    gbx_qentry_encode(&e, buf, &len);
    assert_rc(gbx_qentry_decode(buf, len - 8, &d), GBX_OK);
    assert_int_equal(d.size, 100);
    assert_string_equal(d.from, "hk.kiosk");
    assert_int_equal(d.accepted_ms, 0);
}

static void test_qentry_malformed(void **state)
{
    (void)state;
    gbx_qentry_t e, d;
    s_entry(&e, 1, 1);
    uint8_t good[GBX_QENTRY_MAX + 2];
    size_t glen = 0;
    gbx_qentry_encode(&e, good, &glen);
    good[glen] = 0;

    uint8_t long_from[33 + 65 + GBX_MSG_ID_BYTES];
    memset(long_from, 'a', sizeof long_from);
    long_from[32] = 65; /* > GBX_ID_MAX, the length matching it */
    uint8_t big_fl[64];
    memcpy(big_fl, good, 33);
    big_fl[32] = 200; /* longer than the value */
    memset(big_fl + 33, 0, sizeof big_fl - 33);

    struct {
        const char *name;
        const uint8_t *v;
        size_t len;
    } cases[] = {
        {"empty", good, 0},
        {"7 bytes", good, 7},
        {"9 bytes", good, 9},
        {"32 bytes", good, 32},
        {"one byte short", good, glen - 1},
        {"one byte trailing", good, glen + 1},
        {"from longer than GBX_ID_MAX", long_from, sizeof long_from},
        {"from length beyond the value", big_fl, sizeof big_fl},
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case_rc(fails, cases[i].name, gbx_qentry_decode(cases[i].v, cases[i].len, &d),
                      GBX_E_STATE);
    assert_int_equal(fails, 0);
}

static int s_cmp_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    if (x[1] != y[1])
        return x[1] < y[1] ? -1 : 1;
    return 0;
}

static void test_due_order(void **state)
{
    s_fix_t *fx = *state;
    /* (at, seq), listed out of order, across byte boundaries */
    uint64_t pairs[][2] = {
        {256, 1},
        {255, 2},
        {1ull << 32, 0},
        {(1ull << 32) - 1, 9},
        {S_EXP, 255},
        {S_EXP, 256},
        {S_EXP, 1u << 16},
        {S_EXP, 1},
        {0, UINT64_MAX},
        {UINT64_MAX, 0},
        {1, 0},
        {S_EXP + 1, 0},
        {1ull << 56, 3},
        {(1ull << 56) - 1, 1ull << 47},
    };
    size_t n = sizeof pairs / sizeof pairs[0];
    /* parse back, and the store's byte order */
    gbx_batch_t *b = s_batch(fx);
    for (size_t i = 0; i < n; i++) {
        uint8_t k[GBX_DUE_KEY_LEN];
        gbx_due_kind_t kind = i % 2 ? GBX_DUE_DEDUPE : GBX_DUE_EXPIRE;
        gbx_due_key(pairs[i][0], pairs[i][1], kind, k);
        uint64_t at = 0, seq = 0;
        gbx_due_kind_t kk;
        assert_rc(gbx_due_parse(k, sizeof k, &at, &seq, &kk), GBX_OK);
        assert_int_equal(at, pairs[i][0]);
        assert_int_equal(seq, pairs[i][1]);
        assert_int_equal(kk, kind);
        assert_rc(gbx_batch_put(b, GBX_KS_EXPIRY, k, sizeof k, "x", 1), GBX_OK);
    }
    s_commit(fx, &b);
    qsort(pairs, n, sizeof pairs[0], s_cmp_pair);
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_EXPIRY, NULL, 0, &it), GBX_OK);
    size_t i = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it), i++) {
        size_t klen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        uint64_t at = 0, seq = 0;
        gbx_due_kind_t kk;
        assert_rc(gbx_due_parse(k, klen, &at, &seq, &kk), GBX_OK);
        assert_true(i < n);
        if (at != pairs[i][0] || seq != pairs[i][1])
            fail_msg("key %zu: (%llu, %llu), want (%llu, %llu)", i, (unsigned long long)at,
                     (unsigned long long)seq, (unsigned long long)pairs[i][0],
                     (unsigned long long)pairs[i][1]);
    }
    gbx_store_iter_destroy(&it);
    assert_int_equal(i, n);

    /* not due keys */
    uint8_t k[GBX_DUE_KEY_LEN + 1];
    gbx_due_key(5, 6, GBX_DUE_EXPIRE, k);
    uint64_t at, seq;
    gbx_due_kind_t kk;
    assert_rc(gbx_due_parse(k, GBX_DUE_KEY_LEN - 1, &at, &seq, &kk), GBX_E_STATE);
    assert_rc(gbx_due_parse(k, GBX_DUE_KEY_LEN + 1, &at, &seq, &kk), GBX_E_STATE);
    k[16] = 'X';
    assert_rc(gbx_due_parse(k, GBX_DUE_KEY_LEN, &at, &seq, &kk), GBX_E_STATE);
}

static void test_delivery_id(void **state)
{
    (void)state;
    const uint64_t seqs[] = {1, 2, 65535, 65536, (1ull << 32) + 5, (1ull << 47) - 1, 1ull << 47};
    const uint32_t ns[] = {1, 2, GBX_DELIVERIES_MAX};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        uint64_t prev = 0;
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            uint64_t id = gbx_delivery_id(seqs[i], ns[j]);
            if (gbx_delivery_seq(id) != seqs[i])
                fail_msg("seq %llu, n %u: id %llu gives seq %llu", (unsigned long long)seqs[i],
                         ns[j], (unsigned long long)id, (unsigned long long)gbx_delivery_seq(id));
            assert_int_equal(id & GBX_DELIVERIES_MAX, ns[j]);
            assert_true(id > prev); /* later deliveries, larger ids */
            prev = id;
        }
    }
    assert_int_equal(gbx_delivery_id(1ull << 47, 1), (1ull << 63) | 1);
}

/* ------------------------------------------------------------ operations */

static void test_enqueue(void **state)
{
    s_fix_t *fx = *state;
    s_enqueue_default(fx);
    gbx_qentry_t want, got;
    s_entry(&want, 0, 0);
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    s_entry_equal(&want, &got);
    assert_true(s_has_due(fx, S_EXP, S_SEQ));
    assert_true(s_has_message(fx, S_SEQ));
    assert_int_equal(tb_audit_count(fx->store), 0);
    assert_int_equal(s_count(fx, GBX_KS_DLQ), 0);
}

static void test_mark_ack(void **state)
{
    s_fix_t *fx = *state;
    s_enqueue_default(fx);
    gbx_qentry_t e, got;

    /* mark twice */
    for (uint32_t d = 1; d <= 2; d++) {
        gbx_batch_t *b = s_batch(fx);
        memset(&e, 0, sizeof e);
        assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW + d, &e), GBX_OK);
        assert_int_equal(e.deliveries, d);
        assert_int_equal(e.attempts, d);
        s_commit(fx, &b);
        assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
        assert_int_equal(got.deliveries, d);
        assert_int_equal(got.attempts, d);
        assert_int_equal(got.size, S_SIZE);
        char *rec = s_expect_audit(fx, d, "DELIVERED", S_NOW + d);
        s_expect_u64(rec, "delivery_id", gbx_delivery_id(S_SEQ, d));
        s_expect_u64(rec, "attempt", d);
        free(rec);
    }

    /* ids never issued: delivery number 0, and 3 > deliveries */
    const uint64_t bad[] = {gbx_delivery_id(S_SEQ, 0), gbx_delivery_id(S_SEQ, 3),
                            gbx_delivery_id(S_SEQ, GBX_DELIVERIES_MAX)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gbx_batch_t *b = s_batch(fx);
        assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, bad[i], S_NOW + 10, &e), GBX_E_STATE);
        assert_int_equal(gbx_batch_count(b), 0);
        gbx_batch_destroy(&b);
    }
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_int_equal(tb_audit_count(fx->store), 2);

    /* ack of the first delivery's id: an earlier id still names it */
    uint64_t id = gbx_delivery_id(S_SEQ, 1);
    gbx_batch_t *b = s_batch(fx);
    memset(&e, 0, sizeof e);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 20, &e), GBX_OK);
    assert_int_equal(e.deliveries, 2); /* the entry as it was */
    assert_int_equal(e.size, S_SIZE);
    s_commit(fx, &b);
    assert_false(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_false(s_has_message(fx, S_SEQ));
    assert_false(s_has_due(fx, S_EXP, S_SEQ));
    assert_int_equal(s_count(fx, GBX_KS_EXPIRY), 0);
    char *rec = s_expect_audit(fx, 3, "ACKED", S_NOW + 20);
    s_expect_u64(rec, "delivery_id", id);
    s_expect_u64(rec, "deliveries", 2);
    free(rec);

    /* second ack: not in that state, nothing written */
    b = s_batch(fx);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 30, &e), GBX_E_STATE);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
    assert_int_equal(tb_audit_count(fx->store), 3);
}

static void test_unmark(void **state)
{
    s_fix_t *fx = *state;
    s_enqueue_default(fx);
    gbx_qentry_t e, got;
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_OK);
    s_commit(fx, &b);
    uint64_t id = gbx_delivery_id(S_SEQ, e.deliveries);

    b = s_batch(fx);
    memset(&e, 0, sizeof e);
    assert_rc(gbx_queue_unmark(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 5, &e), GBX_OK);
    assert_int_equal(e.attempts, 0);
    assert_int_equal(e.deliveries, 1);
    s_commit(fx, &b);
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.deliveries, 1); /* the id is spent */
    assert_true(s_has_due(fx, S_EXP, S_SEQ));
    char *rec = s_expect_audit(fx, 2, "UNSENT", S_NOW + 5);
    s_expect_u64(rec, "delivery_id", id);
    free(rec);

    /* the next mark gives a new id */
    b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW + 6, &e), GBX_OK);
    assert_int_equal(e.deliveries, 2);
    assert_int_equal(e.attempts, 1);
    gbx_batch_destroy(&b);
}

static void test_expire(void **state)
{
    s_fix_t *fx = *state;
    s_enqueue_default(fx);
    gbx_qentry_t e, got;
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_expire(fx->store, b, S_DEST, S_SEQ, S_EXP, &e), GBX_OK);
    assert_int_equal(e.size, S_SIZE);
    s_commit(fx, &b);
    assert_false(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_false(s_has_message(fx, S_SEQ));
    assert_int_equal(s_count(fx, GBX_KS_EXPIRY), 0);
    assert_int_equal(s_count(fx, GBX_KS_DLQ), 0);
    char *rec = s_expect_audit(fx, 1, "EXPIRED", S_EXP);
    s_expect_u64(rec, "deliveries", 0);
    free(rec);

    b = s_batch(fx);
    assert_rc(gbx_queue_expire(fx->store, b, S_DEST, S_SEQ, S_EXP, &e), GBX_E_STATE);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
}

/*  Dead-letters the default message (marked 3 times), committed. */
static void s_deadletter(s_fix_t *fx)
{
    gbx_qentry_t e;
    s_entry(&e, 3, 3);
    s_enqueue(fx, &e);
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_deadletter(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_OK);
    s_commit(fx, &b);
}

static void test_deadletter(void **state)
{
    s_fix_t *fx = *state;
    s_deadletter(fx);
    gbx_qentry_t want, got, e;
    s_entry(&want, 3, 3);
    assert_false(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_true(s_load(fx, GBX_KS_DLQ, S_SEQ, &got));
    s_entry_equal(&want, &got);
    assert_true(s_has_message(fx, S_SEQ));
    assert_int_equal(s_count(fx, GBX_KS_EXPIRY), 0);
    char *rec = s_expect_audit(fx, 1, "DEAD_LETTERED", S_NOW);
    s_expect_u64(rec, "attempts", 3);
    free(rec);

    /* no longer queued: mark, ack, expire, deadletter refuse */
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, gbx_delivery_id(S_SEQ, 3), S_NOW, &e),
              GBX_E_STATE);
    assert_rc(gbx_queue_expire(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_deadletter(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_E_STATE);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
}

static void test_replay(void **state)
{
    s_fix_t *fx = *state;
    s_deadletter(fx);
    gbx_qentry_t e, got;

    /* expired: refused, nothing added, still dead-lettered */
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_replay(fx->store, b, S_DEST, S_SEQ, S_EXP, "ops", &e), GBX_E_EXPIRED);
    assert_rc(gbx_queue_replay(fx->store, b, S_DEST, S_SEQ, S_EXP + 1, "ops", &e), GBX_E_EXPIRED);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
    assert_true(s_load(fx, GBX_KS_DLQ, S_SEQ, &got));

    b = s_batch(fx);
    memset(&e, 0, sizeof e);
    assert_rc(gbx_queue_replay(fx->store, b, S_DEST, S_SEQ, S_NOW + 1, "ops", &e), GBX_OK);
    assert_int_equal(e.attempts, 0);
    s_commit(fx, &b);
    assert_false(s_load(fx, GBX_KS_DLQ, S_SEQ, &got));
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.deliveries, 3); /* ids are never reused */
    assert_int_equal(got.size, S_SIZE);
    assert_true(s_has_due(fx, S_EXP, S_SEQ));
    assert_true(s_has_message(fx, S_SEQ));
    char *rec = s_expect_audit(fx, 2, "REPLAYED", S_NOW + 1);
    s_expect_line(rec, "by", "ops");
    free(rec);

    /* queued again: a replay is not in its state; a mark gives delivery 4 */
    b = s_batch(fx);
    assert_rc(gbx_queue_replay(fx->store, b, S_DEST, S_SEQ, S_NOW + 2, "ops", &e), GBX_E_STATE);
    assert_int_equal(gbx_batch_count(b), 0);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW + 2, &e), GBX_OK);
    assert_int_equal(e.deliveries, 4);
    assert_int_equal(e.attempts, 1);
    gbx_batch_destroy(&b);
}

static void test_forget(void **state)
{
    s_fix_t *fx = *state;
    uint8_t dkey[] = "gd.qh-amr\0ABCDEFGHIJKLMNOP";
    size_t dklen = sizeof dkey - 1;
    uint8_t due[GBX_DUE_KEY_LEN], other[GBX_DUE_KEY_LEN];
    gbx_due_key(S_EXP + 120000, S_SEQ, GBX_DUE_DEDUPE, due);
    gbx_due_key(S_EXP + 120000, S_SEQ + 1, GBX_DUE_DEDUPE, other);
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_batch_put(b, GBX_KS_DEDUPE, dkey, dklen, "receipt", 7), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_EXPIRY, due, sizeof due, dkey, dklen), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_EXPIRY, other, sizeof other, "x", 1), GBX_OK);
    s_commit(fx, &b);

    b = s_batch(fx);
    assert_rc(gbx_queue_forget(b, due, dkey, dklen), GBX_OK);
    s_commit(fx, &b);
    uint8_t *v = s_get(fx, GBX_KS_DEDUPE, dkey, dklen, NULL);
    assert_null(v);
    v = s_get(fx, GBX_KS_EXPIRY, due, sizeof due, NULL);
    assert_null(v);
    v = s_get(fx, GBX_KS_EXPIRY, other, sizeof other, NULL);
    assert_non_null(v); /* only that key */
    free(v);
    assert_int_equal(tb_audit_count(fx->store), 0);
}

static void test_mark_max(void **state)
{
    s_fix_t *fx = *state;
    gbx_qentry_t e, got;
    s_entry(&e, GBX_DELIVERIES_MAX - 1, 5);
    s_enqueue(fx, &e);

    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_OK);
    assert_int_equal(e.deliveries, GBX_DELIVERIES_MAX);
    s_commit(fx, &b);
    uint64_t id = gbx_delivery_id(S_SEQ, e.deliveries);
    assert_int_equal(gbx_delivery_seq(id), S_SEQ);
    assert_int_equal(id & GBX_DELIVERIES_MAX, GBX_DELIVERIES_MAX);

    b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW + 1, &e), GBX_E_DEAD_LETTERED);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_int_equal(got.deliveries, GBX_DELIVERIES_MAX);
    assert_int_equal(got.attempts, 6);
    assert_int_equal(tb_audit_count(fx->store), 1);

    b = s_batch(fx);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 2, &e), GBX_OK);
    s_commit(fx, &b);
    assert_false(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
}

static void test_same_batch(void **state)
{
    s_fix_t *fx = *state;
    s_enqueue_default(fx);
    gbx_qentry_t e, got;

    /* two marks in one batch: the second sees the first */
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_OK);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_OK);
    assert_int_equal(e.deliveries, 2);
    gbx_batch_destroy(&b);
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_int_equal(got.deliveries, 0); /* never committed */

    /* mark then ack of that id in one batch */
    b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_OK);
    uint64_t id = gbx_delivery_id(S_SEQ, e.deliveries);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 1, &e), GBX_OK);
    assert_int_equal(e.deliveries, 1);
    s_commit(fx, &b);
    assert_false(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    assert_false(s_has_message(fx, S_SEQ));
    assert_int_equal(s_count(fx, GBX_KS_EXPIRY), 0);
    assert_int_equal(tb_audit_count(fx->store), 2);
    char *rec = s_audit(fx, 0);
    s_expect_line(rec, "event", "DELIVERED");
    free(rec);
    rec = s_audit(fx, 1);
    s_expect_line(rec, "event", "ACKED");
    s_expect_u64(rec, "delivery_id", id);
    free(rec);

    /* ack twice in one batch: the second finds nothing and adds nothing */
    gbx_qentry_t q;
    s_entry(&q, 1, 1);
    s_enqueue(fx, &q);
    id = gbx_delivery_id(S_SEQ, 1);
    b = s_batch(fx);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 2, &e), GBX_OK);
    size_t n = gbx_batch_count(b);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW + 2, &e), GBX_E_STATE);
    assert_int_equal(gbx_batch_count(b), n);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW + 2, &e), GBX_E_STATE);
    s_commit(fx, &b);
    assert_int_equal(tb_audit_count(fx->store), 3);
    assert_int_equal(s_count(fx, GBX_KS_QUEUES), 0);
}

static void test_absent(void **state)
{
    s_fix_t *fx = *state;
    gbx_qentry_t e;
    uint64_t id = gbx_delivery_id(S_SEQ, 1);
    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_mark(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_unmark(fx->store, b, S_DEST, S_SEQ, id, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_ack(fx->store, b, S_DEST, S_SEQ, id, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_expire(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_deadletter(fx->store, b, S_DEST, S_SEQ, S_NOW, &e), GBX_E_STATE);
    assert_rc(gbx_queue_replay(fx->store, b, S_DEST, S_SEQ, S_NOW, "ops", &e), GBX_E_STATE);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
}

/*  Holds S_SEQ (entry of s_entry, a messages[S_SEQ] value) until S_UNTIL,
    committed. */
static void s_hold(s_fix_t *fx)
{
    gbx_qentry_t e;
    s_entry(&e, 0, 0);
    gbx_batch_t *b = s_batch(fx);
    uint8_t k[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(S_SEQ, k);
    uint8_t body[S_SIZE];
    memset(body, 0x33, sizeof body);
    assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, k, sizeof k, body, sizeof body), GBX_OK);
    assert_rc(gbx_queue_hold(b, S_DEST, S_SEQ, &e, S_UNTIL), GBX_OK);
    s_commit(fx, &b);
}

/*  The one due key in the store is of KIND at AT for S_SEQ. */
static void s_expect_one_due(s_fix_t *fx, gbx_due_kind_t kind, uint64_t at)
{
    assert_int_equal(s_count(fx, GBX_KS_EXPIRY), 1);
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_EXPIRY, NULL, 0, &it), GBX_OK);
    size_t kl = 0;
    const uint8_t *k = gbx_store_iter_key(it, &kl);
    uint64_t got_at = 0, seq = 0;
    gbx_due_kind_t got_kind;
    assert_rc(gbx_due_parse(k, kl, &got_at, &seq, &got_kind), GBX_OK);
    assert_int_equal(got_kind, kind);
    assert_int_equal(got_at, at);
    assert_int_equal(seq, S_SEQ);
    gbx_store_iter_destroy(&it);
}

static void test_hold_release(void **state)
{
    s_fix_t *fx = *state;
    s_hold(fx);
    assert_int_equal(s_count(fx, GBX_KS_HELD), 1);
    assert_int_equal(s_count(fx, GBX_KS_QUEUES), 0);
    s_expect_one_due(fx, GBX_DUE_HOLD, S_UNTIL);
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0, vlen = 0;
    assert_rc(gbx_store_queue_key(S_DEST, S_SEQ, key, sizeof key, &klen), GBX_OK);
    uint8_t *v = s_get(fx, GBX_KS_HELD, key, klen, &vlen);
    uint64_t until = 0;
    gbx_qentry_t e, want;
    s_entry(&want, 0, 0);
    assert_rc(gbx_held_decode(v, vlen, &until, &e), GBX_OK);
    assert_int_equal(until, S_UNTIL);
    s_entry_equal(&e, &want);
    free(v);

    gbx_batch_t *b = s_batch(fx);
    assert_rc(gbx_queue_release(fx->store, b, S_DEST, S_SEQ, S_NOW, "op.approver", "checked", &e),
              GBX_OK);
    s_entry_equal(&e, &want);
    s_commit(fx, &b);
    assert_int_equal(s_count(fx, GBX_KS_HELD), 0);
    gbx_qentry_t got;
    assert_true(s_load(fx, GBX_KS_QUEUES, S_SEQ, &got));
    s_expect_one_due(fx, GBX_DUE_EXPIRE, S_EXP);
    assert_true(s_has_message(fx, S_SEQ));
    char *rec = s_expect_audit(fx, 1, "HOLD_APPROVED", S_NOW);
    s_expect_line(rec, "by", "op.approver");
    s_expect_line(rec, "comment", "checked");
    free(rec);

    b = s_batch(fx);
    assert_rc(gbx_queue_release(fx->store, b, S_DEST, S_SEQ, S_NOW, "op.approver", NULL, &e),
              GBX_E_STATE);
    gbx_batch_destroy(&b);
}

static void test_hold_release_expired(void **state)
{
    s_fix_t *fx = *state;
    s_hold(fx);
    gbx_batch_t *b = s_batch(fx);
    gbx_qentry_t e;
    gbx_batch_mark(b);
    assert_rc(gbx_queue_release(fx->store, b, S_DEST, S_SEQ, S_EXP, "op.approver", NULL, &e),
              GBX_E_EXPIRED);
    assert_rc(gbx_batch_rollback(b), GBX_OK);
    assert_int_equal(gbx_batch_count(b), 0);
    gbx_batch_destroy(&b);
    assert_int_equal(s_count(fx, GBX_KS_HELD), 1);
}

static void test_hold_refuse(void **state)
{
    s_fix_t *fx = *state;
    s_hold(fx);
    gbx_batch_t *b = s_batch(fx);
    gbx_qentry_t e;
    gbx_err_t reason = GBX_E_HOLD_REJECTED;
    assert_rc(gbx_queue_refuse(fx->store, b, S_DEST, S_SEQ, S_NOW, &reason, "op.approver",
                               "no consent on file", &e),
              GBX_OK);
    assert_rc(reason, GBX_E_HOLD_REJECTED);
    s_commit(fx, &b);
    assert_int_equal(s_count(fx, GBX_KS_HELD), 0);
    assert_int_equal(s_count(fx, GBX_KS_EXPIRY), 0);
    assert_false(s_has_message(fx, S_SEQ));
    char *rec = s_expect_audit(fx, 1, "HOLD_REJECTED", S_NOW);
    s_expect_line(rec, "reason", "HOLD_REJECTED");
    s_expect_line(rec, "by", "op.approver");
    s_expect_line(rec, "comment", "no consent on file");
    free(rec);

    /* the node's timeout of a message that has expired meanwhile */
    s_hold(fx);
    b = s_batch(fx);
    reason = GBX_E_HOLD_TIMEOUT;
    assert_rc(gbx_queue_refuse(fx->store, b, S_DEST, S_SEQ, S_EXP, &reason, "gbxd", NULL, &e),
              GBX_OK);
    assert_rc(reason, GBX_E_EXPIRED);
    s_commit(fx, &b);
    rec = s_expect_audit(fx, 2, "EXPIRED", S_EXP);
    s_expect_line(rec, "by", "gbxd");
    free(rec);

    /* a queued message is not held */
    s_enqueue_default(fx);
    b = s_batch(fx);
    reason = GBX_E_HOLD_REJECTED;
    assert_rc(gbx_queue_refuse(fx->store, b, S_DEST, S_SEQ, S_NOW, &reason, "op", NULL, &e),
              GBX_E_STATE);
    gbx_batch_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qentry_roundtrip),
        cmocka_unit_test(test_qentry_legacy),
        cmocka_unit_test(test_qentry_malformed),
        cmocka_unit_test_setup_teardown(test_due_order, s_setup, s_teardown),
        cmocka_unit_test(test_delivery_id),
        cmocka_unit_test_setup_teardown(test_enqueue, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hold_release, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hold_release_expired, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hold_refuse, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_mark_ack, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unmark, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_expire, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_deadletter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_forget, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_mark_max, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_same_batch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_absent, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
